"""`scratchllm finetune` (SFT: full, LoRA, QLoRA) and `scratchllm merge` (a LoRA run -> a plain run).

    scratchllm finetune --run runs/base --data alpaca.json --method lora --out runs/sft finetune.lora.r=8
    scratchllm finetune --out runs/sft --resume                     # continue exactly
    scratchllm merge --run runs/sft --out runs/sft-merged           # adapters folded into the weights
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("finetune", help="fine-tune a run on conversations (full, LoRA or QLoRA)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", default=None, help="the base run directory (from train, speedrun or import)")
    p.add_argument("--data", default=None, help="conversations: .json or .jsonl[.gz] (Alpaca, GPTeacher, ShareGPT, OpenAI)")
    p.add_argument("--method", choices=["full", "lora", "qlora"], default=None, help="what trains (default lora)")
    p.add_argument("--format", default=None, choices=["auto", "alpaca", "gpteacher", "sharegpt", "openai"],
                   help="the data's layout (default: detected from the first record)")
    p.add_argument("--out", required=True, help="run directory to write")
    p.add_argument("--resume", action="store_true", help="continue the newest checkpoint in --out")
    p.add_argument("--verbose", action="store_true", help="print the resolved config (always saved to config.toml)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="config overrides, e.g. train.max_steps=200 finetune.lora.r=8 finetune.lora.targets=['q','v']")
    p.set_defaults(func=cmd_finetune)

    m = subparsers.add_parser("merge", help="fold a LoRA run's adapters into its base: a plain run")
    m.add_argument("--run", required=True, help="LoRA or QLoRA run directory")
    m.add_argument("--out", required=True, help="run directory to write")
    m.set_defaults(func=cmd_merge)


def cmd_finetune(args) -> int:
    from scratchllm.train.finetune import finetune

    overrides = list(args.overrides) + ([f"finetune.format={args.format}"] if args.format else [])
    result, figures = finetune(args.run, args.data, args.method, args.out, overrides, resume=args.resume,
                               verbose=args.verbose)
    if result.interrupted:
        print(f"saved {args.out} at step {result.step}; continue with: scratchllm finetune --out {args.out} --resume")
        return 130
    final = result.final
    before = f"base {figures['base_val_loss']:.4f} -> " if "base_val_loss" in figures else ""
    after = f"{final['val_loss']:.4f}" if "val_loss" in final else "n/a"
    print(f"done: {result.step} steps, {result.tokens:,} assistant tokens in {result.wall_s:.0f}s; "
          f"held-out assistant-token loss {before}{after}")
    print(f"chat with: scratchllm chat --run {args.out}")
    return 0


def cmd_merge(args) -> int:
    from scratchllm.train.finetune import merge_run

    out = merge_run(args.run, args.out)
    print(f"merged {args.run} -> {out} (a plain run: scratchllm.load('{out}'))")
    return 0
