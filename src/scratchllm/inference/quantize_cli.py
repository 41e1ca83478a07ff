"""`scratchllm quantize`: weight-only int8 / int4 quantization of a run, by round-to-nearest or GPTQ.

    scratchllm quantize --run runs/tiny --bits 8 --out runs/tiny-int8
    scratchllm quantize --run runs/tiny --bits 4 --group-size 128 --out runs/tiny-int4
    scratchllm quantize --run runs/tiny --bits 4 --method gptq --calib calib.txt --eval-text held_out.txt --out runs/tiny-gptq
    scratchllm generate --run runs/tiny-gptq --prompt "def "      # a quantized run loads like any other
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("quantize", help="int8 / int4 weight-only quantization of a run (RTN or GPTQ)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="run directory to quantize (full precision)")
    p.add_argument("--out", required=True, help="quantized run directory to write")
    p.add_argument("--bits", type=int, required=True, help="8 (int8 per output channel) or 4 (int4 group-wise)")
    p.add_argument("--group-size", type=int, default=None, help="inputs per int4 scale/zero point: 32, 64 or 128 (default 128)")
    p.add_argument("--method", default="rtn", help="rtn (round-to-nearest, default) or gptq (needs --calib)")
    p.add_argument("--calib", default=None, help="calibration text for GPTQ (.txt, .jsonl, ...)")
    p.add_argument("--eval-text", default=None,
                   help="text to measure perplexity before/after on (default: the run's held-out split, else --calib)")
    p.add_argument("--step", type=int, default=None, help="checkpoint step (default: the newest)")
    p.add_argument("--device", default="cpu", help="where GPTQ and the perplexity run: cpu (default), cuda, mps or auto")
    p.set_defaults(func=cmd_quantize)


def cmd_quantize(args) -> int:
    from scratchllm.inference.quantize_run import quantize_run
    from scratchllm.model.quant import QuantSpec
    from scratchllm.utils.device import resolve_device

    spec = QuantSpec(bits=args.bits, group_size=args.group_size, method=args.method)
    report = quantize_run(args.run, args.out, spec, calib=args.calib, eval_text=args.eval_text, step=args.step,
                          device=str(resolve_device(args.device)))
    print("\n".join(report.lines()))
    return 0
