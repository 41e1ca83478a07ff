"""Weight-only quantization: size and perplexity per format on a trained run, and decode tokens/s.

Quality (CPU is fine): every format quantized from the same run, perplexity on the run's own
held-out split and on the text files given with --eval (e.g. WikiText-2), GPTQ calibrated on
--calib (default: the first 256 KB of the run's training tokens, decoded back to text).

    python bench/quant_bench.py quality --run runs/tiny --eval ../shared/data/eval/wikitext2_valid.txt

Speed (a GPU): greedy decode tokens/s of a random-init model of a preset's shape through the one
engine, at batch 1, for fp32, bf16, int8 and int4 (speed does not depend on the weights' values).

    python bench/quant_bench.py speed --preset gpt2-124m --device cuda --new-tokens 256
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import scratchllm  # noqa: E402
from scratchllm.data.shards import read_shard  # noqa: E402
from scratchllm.inference.engine import generate  # noqa: E402
from scratchllm.inference.quantize import quantize_rtn  # noqa: E402
from scratchllm.inference.quantize_run import held_out_windows, text_windows, perplexity, quantize_run  # noqa: E402
from scratchllm.model.quant import QuantSpec  # noqa: E402
from scratchllm.model.transformer import Transformer  # noqa: E402
from scratchllm.train.config import resolve_run_config  # noqa: E402

FORMATS = {"int8": QuantSpec(8), "int4-rtn g128": QuantSpec(4, 128), "int4-gptq g128": QuantSpec(4, 128, "gptq"),
           "int4-rtn g32": QuantSpec(4, 32), "int4-gptq g32": QuantSpec(4, 32, "gptq")}


def _calib_text(run_dir: Path, tokenizer, max_tokens: int = 80_000) -> str:
    cfg = scratchllm.load(run_dir).config
    token_dir = Path(cfg.data.path) if cfg.data.path and (Path(cfg.data.path) / "meta.json").is_file() else run_dir / "tokens"
    ids = read_shard(next(token_dir.glob("train*.bin")))[:max_tokens]
    return tokenizer.decode(np.asarray(ids).tolist())


def quality(args) -> None:
    run_dir = Path(args.run)
    base = scratchllm.load(run_dir)
    tmp = Path(tempfile.mkdtemp())
    calib = args.calib
    if calib is None:
        calib = str(tmp / "calib.txt")
        Path(calib).write_text(_calib_text(run_dir, base.tokenizer), encoding="utf-8")
    block = base.config.model.block_size
    texts = {"held-out": held_out_windows(run_dir, base.config, args.windows)}
    for path in args.eval:
        texts[Path(path).name] = text_windows(path, base.tokenizer, block, args.windows, "--eval")
    cpu = torch.device("cpu")
    size = next((run_dir / "checkpoints").iterdir()).joinpath("model.safetensors").stat().st_size
    rows = [("fp32", size, {k: perplexity(base.model, w, cpu) for k, w in texts.items()}, 0.0)]
    bf16 = scratchllm.load(run_dir).model.to(torch.bfloat16)
    rows.append(("bf16 (weights cast)", size // 2, {k: perplexity(bf16, w, cpu) for k, w in texts.items()}, 0.0))
    for name, spec in FORMATS.items():
        t0 = time.perf_counter()
        report = quantize_run(run_dir, tmp / name.replace(" ", "-"), spec, calib=calib)
        took = time.perf_counter() - t0
        q = scratchllm.load(report.out).model
        rows.append((name, report.size_after, {k: perplexity(q, w, cpu) for k, w in texts.items()}, took))
    print(f"run {run_dir}: {base.model.num_params():,} parameters; calibration {calib}")
    print("| format | model.safetensors | " + " | ".join(f"ppl {k}" for k in texts) + " | quantize time |")
    print("|---|---|" + "---|" * len(texts) + "---|")
    ref = rows[0][2]
    for name, nbytes, ppl, took in rows:
        cells = " | ".join(f"{ppl[k]:.3f} ({ppl[k] / ref[k] - 1:+.2%})" for k in texts)
        print(f"| {name} | {nbytes / 1e6:.2f} MB | {cells} | {took:.1f} s |")


def speed(args) -> None:
    device = torch.device(args.device)
    cfg = resolve_run_config(args.preset)
    torch.manual_seed(0)
    variants = {"fp32": (None, torch.float32), "bf16": (None, torch.bfloat16),
                "int8": (QuantSpec(8), torch.bfloat16), "int4 g128": (QuantSpec(4, 128), torch.bfloat16)}
    prompt = list(range(1, args.prompt_tokens + 1))
    print(f"{args.preset} shape, {device}, batch 1, greedy, {args.prompt_tokens}-token prompt, {args.new_tokens} new tokens")
    print("| weights | tokens/s | weight bytes |")
    print("|---|---|---|")
    for name, (spec, dtype) in variants.items():
        model = Transformer(cfg.model).eval()
        if spec is not None:
            quantize_rtn(model, spec)
        model = model.to(device)
        if dtype != torch.float32:     # the floating tensors (embeddings, norms, scales) in bf16; codes stay ints
            model = model.to(dtype)
        nbytes = sum(t.numel() * t.element_size() for t in {**dict(model.named_parameters()), **dict(model.named_buffers())}.values())
        best = 0.0
        for _ in range(args.repeats):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            n = sum(1 for _ in generate(model, prompt, max_new_tokens=args.new_tokens, temperature=0))
            if device.type == "cuda":
                torch.cuda.synchronize()
            best = max(best, n / (time.perf_counter() - t0))
        print(f"| {name} | {best:,.0f} | {nbytes / 1e6:.1f} MB |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="mode", required=True)
    q = sub.add_parser("quality")
    q.add_argument("--run", required=True)
    q.add_argument("--calib", default=None)
    q.add_argument("--eval", action="append", default=[])
    q.add_argument("--windows", type=int, default=64)
    q.set_defaults(func=quality)
    s = sub.add_parser("speed")
    s.add_argument("--preset", default="gpt2-124m")
    s.add_argument("--device", default="cuda")
    s.add_argument("--prompt-tokens", type=int, default=32)
    s.add_argument("--new-tokens", type=int, default=256)
    s.add_argument("--repeats", type=int, default=3)
    s.set_defaults(func=speed)
    args = p.parse_args()
    torch.set_grad_enabled(False)
    args.func(args)


if __name__ == "__main__":
    main()
