"""Multi-turn chat: the template and history, --system, stopping on <|assistant_end|>, base runs stay a REPL."""

from __future__ import annotations

import torch
from ft_helpers import byte_tokenizer, make_base_run, tiny_config, tiny_model

from scratchllm import cli
from scratchllm.inference.chat import ChatSession
from scratchllm.tokenizer.special import render_conversation

TOK = byte_tokenizer()
END = TOK.special_tokens["<|assistant_end|>"]


class Scripted(torch.nn.Module):
    """A tiny model whose logits are overridden to emit `script` in order; records every input."""

    def __init__(self, script):
        super().__init__()
        self.inner = tiny_model(tiny_config(block_size=128))
        self.config, self.tok_emb = self.inner.config, self.inner.tok_emb
        self.script, self.step, self.seen = list(script), 0, []

    def make_kv_cache(self, **kw):
        return self.inner.make_kv_cache(**kw)

    def forward(self, idx, kv_cache=None):
        self.seen.append(idx[0].tolist())
        logits = torch.full((*idx.shape, self.config.vocab_size), -1e9)
        logits[:, -1, self.script[self.step % len(self.script)]] = 0.0
        self.step += 1
        self.inner(idx, kv_cache=kv_cache)     # keep the cache's bookkeeping real
        return logits


def test_replies_stop_at_assistant_end_and_history_is_rendered():
    model = Scripted([ord("h"), ord("i"), END, ord("x")])
    chat = ChatSession(model, TOK, system="Be brief.", max_new_tokens=10, temperature=0)
    assert "".join(chat.send("hello")) == "hi"
    assert chat.messages == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"},
                             {"role": "assistant", "content": "hi"}]
    model.script, model.step = [ord("o"), ord("k"), END], 0
    assert "".join(chat.send("again")) == "ok"
    want, _ = render_conversation(TOK, chat.messages[:-1], for_completion=True)
    assert model.seen[-3] == want          # the second prefill: system, first exchange, new message


def test_old_turns_are_dropped_to_fit_the_context():
    model = Scripted([ord("y")] * 30 + [END])
    chat = ChatSession(model, TOK, system="S", max_new_tokens=40, temperature=0)
    for _ in range(3):
        "".join(chat.send("question " * 3))
    ids = chat.prompt_ids("last")
    assert len(ids) + 40 <= 128 and ids[:4] == render_conversation(TOK, chat.system)[0][:4]   # the system stays


def _run_chat(monkeypatch, capsys, run, lines, *extra):
    feed = iter(lines)

    def fake_input(prompt=""):
        try:
            return next(feed)
        except StopIteration:
            raise EOFError from None

    monkeypatch.setattr("builtins.input", fake_input)
    assert cli.main(["chat", "--run", str(run), "--max-new-tokens", "4", "--temperature", "0", *extra]) == 0
    return capsys.readouterr()


def test_cli_chat_on_fine_tuned_and_base_runs(tmp_path, monkeypatch, capsys):
    base = make_base_run(tmp_path / "base", tiny_config(block_size=128))
    out = _run_chat(monkeypatch, capsys, base, ["hello"], "--system", "x")
    assert "not fine-tuned for chat" in out.out and "--system is ignored" in out.err
    tuned = make_base_run(tmp_path / "tuned", tiny_config(block_size=128))
    with open(tuned / "config.toml", "a") as f:
        f.write('\n[finetune]\nmethod = "full"\n')
    out = _run_chat(monkeypatch, capsys, tuned, ["hello", "/reset", "bye"], "--system", "Be brief.")
    assert "a fine-tuned chat model" in out.out and out.out.count("assistant> ") == 2
