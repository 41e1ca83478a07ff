// The chat page: streams replies from /v1/chat/completions (a fine-tuned run) or continues text
// through /v1/completions (a base run), reading the server's SSE stream with fetch.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { chat: true, history: [], controller: null };

function addMessage(role, text) {
  const div = document.createElement("div");
  div.className = `msg ${role}`;
  const label = document.createElement("span");
  label.className = "role";
  label.textContent = role;
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text;
  div.append(label, body);
  $("log").append(div);
  $("log").scrollTop = $("log").scrollHeight;
  return body;
}

function headers() {
  const h = { "Content-Type": "application/json" };
  if ($("api_key").value) h.Authorization = `Bearer ${$("api_key").value}`;
  return h;
}

function settings() {
  return { temperature: Number($("temperature").value), top_p: Number($("top_p").value),
           max_tokens: Number($("max_tokens").value), stream: true };
}

// Yields each parsed `data:` event of an SSE response until [DONE].
async function* events(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const line = buffer.slice(0, cut).trim();
      buffer = buffer.slice(cut + 2);
      if (!line.startsWith("data:")) continue;
      const data = line.slice(5).trim();
      if (data === "[DONE]") return;
      yield JSON.parse(data);
    }
  }
}

async function send(text) {
  const body = settings();
  let url = "/v1/completions";
  if (state.chat) {
    state.history.push({ role: "user", content: text });
    const system = $("system").value.trim();
    body.messages = (system ? [{ role: "system", content: system }] : []).concat(state.history);
    url = "/v1/chat/completions";
  } else {
    body.prompt = text;
  }
  addMessage("user", text);
  const out = addMessage("assistant", "");
  state.controller = new AbortController();
  $("send").disabled = true;
  $("stop").disabled = false;
  const started = performance.now();
  let tokens = 0, reply = "";
  try {
    const response = await fetch(url, { method: "POST", headers: headers(), body: JSON.stringify(body),
                                        signal: state.controller.signal });
    if (!response.ok) {
      const err = await response.json().catch(() => ({}));
      throw new Error((err.error && err.error.message) || `HTTP ${response.status}`);
    }
    for await (const event of events(response)) {
      const choice = event.choices[0];
      const piece = state.chat ? (choice.delta.content || "") : choice.text;
      if (piece) {
        tokens += 1;         // one streamed piece is one generated token (or a few held-back ones)
        reply += piece;
        out.textContent = reply;
        const seconds = (performance.now() - started) / 1000;
        $("stats").textContent = `tokens: ${tokens} · speed: ${(tokens / seconds).toFixed(1)} tok/s`;
      }
    }
  } catch (e) {
    if (e.name !== "AbortError") {
      out.parentElement.className = "msg error";
      out.textContent = e.message;
      if (state.chat) state.history.pop();
      return finish();
    }
  }
  if (state.chat) state.history.push({ role: "assistant", content: reply });
  finish();
}

function finish() {
  state.controller = null;
  $("send").disabled = false;
  $("stop").disabled = true;
}

async function init() {
  const info = await (await fetch("/page-info")).json();
  state.chat = info.chat;
  $("model").textContent = `${info.model} · context ${info.context}`;
  $("mode").textContent = info.chat ? "chat" : "base model: each message is continued";
  $("system-row").hidden = !info.chat;
  $("key-row").hidden = !info.auth;
  $("form").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("input").value;
    if (!text.trim() || state.controller) return;
    $("input").value = "";
    send(text);
  });
  $("input").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("form").requestSubmit(); }
  });
  $("stop").addEventListener("click", () => state.controller && state.controller.abort());
  $("reset").addEventListener("click", () => { state.history = []; $("log").replaceChildren(); });
  // ?q=TEXT sends TEXT at once: a link that opens the page on a question.
  const q = new URLSearchParams(location.search).get("q");
  if (q) send(q);
}

init();
