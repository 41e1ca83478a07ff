"""Shared bits of the eval tests: a tiny random run of ours (and its Hugging Face export), synthetic
task files. (A uniquely named module, not conftest: several test directories have one.)"""

from __future__ import annotations

import json
import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import torch

from scratchllm.model.config import ModelConfig
from scratchllm.model.transformer import Transformer
from scratchllm.tokenizer.bpe import Tokenizer
from scratchllm.train.checkpoint import save_run_weights

WORDS = ("the a cat dog sat ran over under quickly slowly red blue green house tree river café naïve "
         "über 3.14 42 -7 1,000 — “quoted” it's DON'T 日本 🙂 def return x**2").split()
CORPUS = [" ".join(WORDS[i:] + WORDS[:i]) for i in range(len(WORDS))]


def tiny_tokenizer() -> Tokenizer:
    return Tokenizer.train(CORPUS * 3, vocab_size=300, pattern="gpt4", special_tokens=["<|endoftext|>"],
                           progress=False)


def tiny_model(block_size: int = 64, seed: int = 0, vocab: int = 320) -> Transformer:
    """Random weights large enough that log-likelihoods differ clearly between options."""
    torch.manual_seed(seed)
    model = Transformer(ModelConfig(n_layer=2, n_head=2, n_embd=32, vocab_size=vocab, block_size=block_size))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim > 1:
                p.copy_(0.3 * torch.randn(p.shape, generator=gen))
    return model.eval()


def make_run(path: Path, block_size: int = 64, seed: int = 0) -> Path:
    save_run_weights(path, tiny_model(block_size, seed), tiny_tokenizer())
    return path


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def mc_rows(n: int, n_choices: int, seed: int) -> list[dict]:
    """`{query, choices, gold}` items with choices of different lengths (acc_norm differs from acc)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        query = sentence(rng, rng.randint(3, 12)) + ("?" if i % 3 else " ")   # some trailing spaces
        choices = [sentence(rng, rng.randint(1, 6)) for _ in range(n_choices)]
        rows.append({"query": query, "choices": choices, "gold": rng.randrange(n_choices)})
    return rows


def text_rows(n: int, seed: int) -> list[dict]:
    """Documents long enough (hundreds of tokens) to need several rolling windows of 64."""
    rng = random.Random(seed)
    return [{"text": "\n".join(sentence(rng, rng.randint(5, 15)) for _ in range(rng.randint(1, 25)))}
            for _ in range(n)]


def serve_chat(behaviour):
    """A chat-completions server whose reply is behaviour(user message, call number); `calls` counts
    the requests ("n") and keeps their bodies ("bodies")."""
    calls = {"n": 0, "bodies": []}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            calls["n"] += 1
            calls["bodies"].append(body)
            text = behaviour(body["messages"][-1]["content"], calls["n"])
            data = json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}", calls
