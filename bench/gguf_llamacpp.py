"""GGUF export against llama.cpp itself (node-llama-cpp's prebuilt CPU binaries, tests/inference/llama_logits.mjs).

logits: a trained run exported as f16, q8_0 and q4_0; llama.cpp's logits on text windows against ours
(fp32; the same file weights in our forward, `as_exported`; our own int8 / int4 g32 RTN), as the largest
logit difference and the perplexity of each.

    python bench/gguf_llamacpp.py logits --run runs/tiny --eval ../shared/data/eval/wikitext2_valid.txt

tokenizers: OpenAI's real tokenizers (GPT-2, cl100k, o200k from ../shared/data/tokenizer) exported in a
one-layer model (SCRATCHLLM_DATA points elsewhere than ../shared/data); llama.cpp splits a text file into ids that must be ours, id for id.

    python bench/gguf_llamacpp.py tokenizers --text ../shared/data/eval/wikitext2_valid.txt --chars 200000

Needs the npm install that .ci/run does (node-llama-cpp 3.22.1 in .cache/node-llama-cpp).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import scratchllm  # noqa: E402
from scratchllm.inference.gguf import as_exported, export_gguf  # noqa: E402
from scratchllm.inference.quantize import quantize_rtn  # noqa: E402
from scratchllm.inference.quantize_run import _text_windows  # noqa: E402
from scratchllm.model.config import ModelConfig  # noqa: E402
from scratchllm.model.quant import QuantSpec  # noqa: E402
from scratchllm.model.transformer import Transformer  # noqa: E402
from scratchllm.tokenizer import formats  # noqa: E402
from scratchllm.train.checkpoint import save_run_weights  # noqa: E402

SCRIPT = ROOT / "tests" / "inference" / "llama_logits.mjs"
INSTALL = ROOT / ".cache" / "node-llama-cpp"
TOKDIR = Path(os.environ.get("SCRATCHLLM_DATA", ROOT.parent / "shared" / "data")) / "tokenizer"  # as tests/shared_data.py


def llama_cpp(requests: list[dict]) -> tuple[list[dict], float]:
    start = time.perf_counter()
    done = subprocess.run(["node", str(SCRIPT), str(INSTALL)], input=json.dumps(requests), capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout), time.perf_counter() - start


def nll(logits: np.ndarray, targets: np.ndarray) -> float:
    """Mean next-token loss of [n, T, V] logits on [n, T] targets."""
    flat = torch.as_tensor(np.asarray(logits, dtype=np.float32)).flatten(0, 1)
    return F.cross_entropy(flat, torch.as_tensor(targets).flatten()).item()


@torch.no_grad()
def our_logits(model, inputs: np.ndarray) -> np.ndarray:
    return model(torch.as_tensor(inputs)).numpy()


def logits(args) -> None:
    run = scratchllm.load(args.run)
    model, cfg = run.model.eval(), run.config.model
    windows = _text_windows(args.eval, run.tokenizer, cfg.block_size, args.windows, "--eval").numpy()
    inputs, targets = windows[:, :-1], windows[:, 1:]
    tmp = Path(tempfile.mkdtemp())
    requests = []
    for gguf_type in ("f16", "q8_0", "q4_0"):
        export_gguf(args.run, tmp / f"{gguf_type}.gguf", gguf_type)
        requests.append({"model": str(tmp / f"{gguf_type}.gguf"), "ids": inputs.tolist()})
    answers, seconds = llama_cpp(requests)
    fp32 = our_logits(model, inputs)
    print(f"run {args.run}: {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters, "
          f"{cfg.norm}/{cfg.position}/{cfg.mlp}; {len(inputs)} windows of {inputs.shape[1]} tokens of {args.eval}; "
          f"llama.cpp (one node call, 3 files): {seconds:.1f} s")
    print(f"fp32 ours: ppl {math.exp(nll(fp32, targets)):.3f}")
    ours_q = {"q8_0": QuantSpec(8), "q4_0": QuantSpec(4, 32)}
    print("| file | llama.cpp ppl | ours, same weights (as_exported) | max abs logit diff vs same weights | "
          "vs fp32 | our RTN of the same width |")
    print("|---|---|---|---|---|---|")
    for gguf_type, answer in zip(("f16", "q8_0", "q4_0"), answers):
        theirs = np.array(answer["logits"], dtype=np.float32)
        same = our_logits(as_exported(model, gguf_type), inputs)
        rtn = "—" if gguf_type == "f16" else (
            f"{math.exp(nll(our_logits(quantize_rtn(copy.deepcopy(model), ours_q[gguf_type]), inputs), targets)):.3f}"
            f" ({ours_q[gguf_type].bits}-bit{'' if gguf_type == 'q8_0' else ' g32'})")
        print(f"| {gguf_type} | {math.exp(nll(theirs, targets)):.3f} | {math.exp(nll(same, targets)):.3f} | "
              f"{np.abs(theirs - same).max():.4f} | {np.abs(theirs - fp32).max():.4f} | {rtn} |")


def tokenizers(args) -> None:
    text = Path(args.text).read_text(encoding="utf-8")[: args.chars]
    tmp = Path(tempfile.mkdtemp())
    print(f"{len(text.encode())} bytes of {args.text}")
    print("| tokenizer | vocab | our ids | llama.cpp ids | identical | first difference | export s | llama.cpp s |")
    print("|---|---|---|---|---|---|---|---|")
    for name in ("gpt2", "cl100k_base", "o200k_base"):
        tok = (formats.import_gpt2(TOKDIR / "gpt2" / "encoder.json", TOKDIR / "gpt2" / "vocab.bpe") if name == "gpt2"
               else formats.import_tiktoken(TOKDIR / f"{name}.tiktoken", name))
        vocab = max([*tok.ranks.values(), *tok.special_tokens.values()]) + 1
        torch.manual_seed(0)
        save_run_weights(tmp / name, Transformer(ModelConfig(vocab_size=vocab, n_layer=1, n_head=1, n_embd=32,
                                                             block_size=32)), tok)
        start = time.perf_counter()
        export_gguf(tmp / name, tmp / f"{name}.gguf")
        export_s = time.perf_counter() - start
        answers, seconds = llama_cpp([{"model": str(tmp / f"{name}.gguf"), "texts": [text]}])
        ours, theirs = tok.encode_ordinary(text), answers[0]["tokens"][0]
        first = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b),
                     None if len(ours) == len(theirs) else min(len(ours), len(theirs)))
        print(f"| {name} | {vocab} | {len(ours)} | {len(theirs)} | {ours == theirs} | "
              f"{'—' if first is None else first} | {export_s:.1f} | {seconds:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("logits")
    p.add_argument("--run", required=True)
    p.add_argument("--eval", required=True, help="text file whose windows both sides score")
    p.add_argument("--windows", type=int, default=4)
    p = sub.add_parser("tokenizers")
    p.add_argument("--text", required=True)
    p.add_argument("--chars", type=int, default=200_000, help="the first N characters of --text")
    args = parser.parse_args()
    torch.set_num_threads(1)
    (logits if args.what == "logits" else tokenizers)(args)


if __name__ == "__main__":
    main()
