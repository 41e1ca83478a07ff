"""Serving benchmark: throughput, p50/p99 latency and time to first token at 1/8/32/64 concurrent clients.

Starts `scratchllm serve` on a run (a tiny one trained here when --run is not given) in a
subprocess, then for each concurrency level runs that many clients, each sending --requests
streaming completions one after another (the same prompts and max_tokens at every level).
Tokens are the stream's content events (one a generated token; a held-back UTF-8 piece may join two).

    PYTHONPATH=src OMP_NUM_THREADS=1 python bench/serve_bench.py --max-batch 32
    PYTHONPATH=src python bench/serve_bench.py --url http://127.0.0.1:8000 --model M   # a server already up (a peer)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

PROMPTS = ["import os", "def main(", "The path", "class A:", "return the", "# Copyright", "if not", "x = "]


def _tiny_run(root: Path) -> Path:
    docs = root / "corpus"
    docs.mkdir()
    source = Path(os.__file__).read_text(encoding="utf-8")
    for i in range(4):
        (docs / f"doc{i}.txt").write_text(source[i * 4000:(i + 1) * 4000], encoding="utf-8")
    subprocess.run([sys.executable, "-m", "scratchllm", "train", "--data", str(docs), "--out", str(root / "run"),
                    "model.block_size=128", "model.n_layer=2", "model.n_head=2", "model.n_embd=64",
                    "train.max_steps=30", "train.eval_every=0", "train.progress=false", "train.device=cpu",
                    "train.checkpoint_every=0", "data.vocab_size=300", "data.workers=1"], check=True,
                   stdout=subprocess.DEVNULL)
    return root / "run"


async def _one(http: httpx.AsyncClient, prompt: str, max_tokens: int, model: str) -> tuple[float, float, int]:
    started, first, tokens = time.perf_counter(), None, 0
    body = {"model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0.8, "seed": 0, "stream": True}
    async with http.stream("POST", "/v1/completions", json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            choices = json.loads(line[6:]).get("choices") or [{}]
            if choices[0].get("text"):
                tokens += 1
                first = first if first is not None else time.perf_counter() - started
    return first or 0.0, time.perf_counter() - started, tokens


async def _level(url: str, clients: int, requests: int, max_tokens: int, model: str) -> dict:
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=httpx.Limits(max_connections=clients)) as http:
        async def client(c: int):
            return [await _one(http, PROMPTS[(c + r) % len(PROMPTS)], max_tokens, model) for r in range(requests)]
        started = time.perf_counter()
        results = [x for xs in await asyncio.gather(*(client(c) for c in range(clients))) for x in xs]
        wall = time.perf_counter() - started
    ttft, latency = sorted(r[0] for r in results), sorted(r[1] for r in results)

    def pct(xs, q):
        return xs[min(int(q * len(xs)), len(xs) - 1)]
    return {"clients": clients, "requests": len(results), "tokens_per_s": sum(r[2] for r in results) / wall,
            "p50_latency_s": statistics.median(latency), "p99_latency_s": pct(latency, 0.99),
            "p50_ttft_s": statistics.median(ttft), "p99_ttft_s": pct(ttft, 0.99)}


def _start(run: Path, max_batch: int) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "scratchllm", "serve", "--run", str(run), "--port", str(port),
                             "--device", "cpu", "--max-batch", str(max_batch), "--max-queue", "256"],
                            stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(url + "/ready").status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.terminate()
    raise SystemExit("the server did not become ready in 120 s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default=None, help="run directory (default: train a tiny one)")
    ap.add_argument("--url", default=None, help="benchmark a server already running here instead of starting one")
    ap.add_argument("--levels", default="1,8,32,64", help="concurrent clients, comma-separated")
    ap.add_argument("--requests", type=int, default=4, help="requests per client per level")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--max-batch", type=int, default=32)
    ap.add_argument("--model", default="scratchllm", help="the requests' model field (a peer server may need it)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc = None
        url = args.url
        if url is None:
            run = Path(args.run) if args.run else _tiny_run(Path(tmp))
            proc, url = _start(run, args.max_batch)
        try:
            print("| clients | requests | tokens/s | p50 latency (s) | p99 latency (s) | p50 TTFT (s) | p99 TTFT (s) |")
            print("|---|---|---|---|---|---|---|")
            for n in (int(x) for x in args.levels.split(",")):
                r = asyncio.run(_level(url, n, args.requests, args.max_tokens, args.model))
                print(f"| {r['clients']} | {r['requests']} | {r['tokens_per_s']:.0f} | {r['p50_latency_s']:.3f} | "
                      f"{r['p99_latency_s']:.3f} | {r['p50_ttft_s']:.3f} | {r['p99_ttft_s']:.3f} |", flush=True)
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(30)


if __name__ == "__main__":
    main()
