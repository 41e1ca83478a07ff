"""An OpenAI-compatible server as the harness's language model (`--endpoint URL --model NAME`), and
one chat turn from such a server (`chat_completion`, for the judge and constitutional AI).

The same three calls as `lm.LocalLM`, over `POST URL/v1/completions`:

- `generate`: an ordinary completion (temperature, max_tokens, up to 4 stop strings), cut at the
  first stop string here as well, since servers differ in how they apply them;
- `loglikelihood`: the prompt context + continuation with `echo: true, max_tokens: 0, logprobs: 1`;
  the continuation's tokens are those whose `text_offset` lies at or after the end of the context
  (after moving the context's trailing spaces into the continuation, as lm-eval does), so no local
  tokenizer is needed; greedy means each of those tokens is its position's top-1;
- `loglikelihood_rolling`: the whole text echoed and summed; the server gives its first token no
  log-prob, so that one token goes unscored (a local run conditions it on end-of-text), and a
  text must fit the server's context.

Requests are retried a bounded number of times with growing waits; a server that stays
unreachable, or that answers without the fields above, is one clear `UserError`.

>>> lm = EndpointLM("http://127.0.0.1:9", "m", retries=1, timeout=0.5)   # nothing listens on port 9
>>> lm.generate(["hi"], stop=[])                                          # doctest: +ELLIPSIS
Traceback (most recent call last):
...
scratchllm.errors.UserError: cannot reach http://127.0.0.1:9/v1/completions after 1 attempt(s) (...); start the server or check --endpoint
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any, Callable, Sequence

from scratchllm.errors import UserError
from scratchllm.eval.lm import cut_at_stop

Progress = Callable[[int], None] | None


def post_json(url: str, body: dict[str, Any], retries: int = 3, timeout: float = 60.0,
              backoff: float = 0.5) -> dict[str, Any]:
    """POST `body` as JSON and return the JSON reply; connection failures and 5xx answers are retried
    `retries` times in all (waits backoff, 2·backoff, ...), a 4xx answer is an error at once."""
    data = json.dumps(body).encode()
    reason = ""
    for attempt in range(max(1, retries)):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as e:
            if e.code < 500:   # the request itself is wrong: retrying cannot help
                detail = e.read()[:300].decode("utf-8", "replace")
                raise UserError(f"{url} refused the request (HTTP {e.code}: {detail}); check --model "
                                "and that the server supports this request") from None
            reason = f"HTTP {e.code}"
        except (urllib.error.URLError, OSError, json.JSONDecodeError) as e:
            reason = str(getattr(e, "reason", e))
    raise UserError(f"cannot reach {url} after {max(1, retries)} attempt(s) ({reason}); "
                    "start the server or check --endpoint")


def chat_completion(url: str, model: str, messages: list[dict], temperature: float = 0.0, max_tokens: int = 512,
                    seed: int | None = None, retries: int = 3, timeout: float = 120.0, backoff: float = 0.5) -> str:
    """The reply text of `POST URL/v1/chat/completions` to `messages` ("" when the answer holds none).

    `url` may be the server's root or the full route; `seed` is sent only when given (servers
    that sample use it to repeat a reply).
    """
    url = url.rstrip("/")
    url = url if url.endswith("/v1/chat/completions") else url + "/v1/chat/completions"
    body = {"model": model, "temperature": temperature, "max_tokens": max_tokens, "messages": messages,
            **({} if seed is None else {"seed": seed})}
    reply = post_json(url, body, retries, timeout, backoff)
    try:
        return str(reply["choices"][0]["message"]["content"])
    except (KeyError, IndexError, TypeError):
        return ""


class EndpointLM:
    def __init__(self, url: str, model: str, retries: int = 3, timeout: float = 60.0, backoff: float = 0.5):
        self.url = url.rstrip("/") + ("" if url.rstrip("/").endswith("/v1/completions") else "/v1/completions")
        self.model, self.retries, self.timeout, self.backoff = model, max(1, retries), timeout, backoff
        self.name = f"{model} @ {url}"

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        return post_json(self.url, {"model": self.model, **body}, self.retries, self.timeout, self.backoff)

    def _echo(self, prompt: str) -> dict[str, list]:
        reply = self._post({"prompt": prompt, "max_tokens": 0, "echo": True, "logprobs": 1, "temperature": 0})
        try:
            lp = reply["choices"][0]["logprobs"]
            return {k: lp[k] for k in ("tokens", "token_logprobs", "text_offset", "top_logprobs")}
        except (KeyError, IndexError, TypeError):
            raise UserError(f"{self.url} returned no prompt log-probs (echo + logprobs); log-likelihood tasks need "
                            "a server that supports them, or evaluate generative tasks only") from None

    def loglikelihood(self, pairs: Sequence[tuple[str, str]], progress: Progress = None) -> list[tuple[float, bool]]:
        out = []
        for context, continuation in pairs:
            spaces = len(context) - len(context.rstrip())
            boundary = len(context) - spaces
            lp = self._echo(context + continuation)
            picked = [i for i, off in enumerate(lp["text_offset"]) if off >= boundary and i > 0]
            ll = sum(lp["token_logprobs"][i] for i in picked)
            greedy = all(max(lp["top_logprobs"][i], key=lp["top_logprobs"][i].get) == lp["tokens"][i] for i in picked)
            out.append((ll, greedy))
            if progress:
                progress(1)
        return out

    def loglikelihood_rolling(self, texts: Sequence[str], progress: Progress = None) -> list[float]:
        out = []
        for text in texts:
            lp = self._echo(text)
            out.append(sum(v for v in lp["token_logprobs"][1:]))
            if progress:
                progress(1)
        return out

    def generate(self, prompts: Sequence[str], stop: Sequence[str], max_new_tokens: int = 256,
                 temperature: float = 0.0, seed: int = 0, progress: Progress = None) -> list[str]:
        outs = []
        for i, prompt in enumerate(prompts):
            reply = self._post({"prompt": prompt, "max_tokens": max_new_tokens, "temperature": temperature,
                                "seed": seed + i, **({"stop": list(stop)[:4]} if stop else {})})
            try:
                text = reply["choices"][0]["text"]
            except (KeyError, IndexError, TypeError):
                raise UserError(f"{self.url} answered without choices[0].text; is it an OpenAI-compatible "
                                "/v1/completions endpoint?") from None
            outs.append(cut_at_stop(text, stop))
            if progress:
                progress(1)
        return outs
