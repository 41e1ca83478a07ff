"""`scratchllm speedrun`: the whole pipeline in one command (see scratchllm.pipelines.speedrun).

    scratchllm speedrun                                  # built-in corpus -> runs/speedrun/report.md
    scratchllm speedrun --data books.txt --out runs/books --preset small train.max_steps=300
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("speedrun", help="tokenizer -> tokens -> pretrain -> evaluate -> report, in one command",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/speedrun", help="run directory (default runs/speedrun)")
    p.add_argument("--data", default=None, help="raw text (.txt, dir, .jsonl[.gz|.xz]) or a token directory; default: built-in corpus")
    p.add_argument("--preset", default=None, help="preset (default: tiny-cpu on CPU, small on CUDA)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--force", action="store_true", help="write into --out even if it holds files that are not a run's")
    p.add_argument("--verbose", action="store_true", help="print the resolved config (always saved to config.toml)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. train.max_steps=200")
    p.set_defaults(func=cmd_speedrun)


def cmd_speedrun(args) -> int:
    from scratchllm.pipelines.speedrun import speedrun

    overrides = list(args.overrides) + (["train.progress=false"] if args.no_progress else [])
    report = speedrun(args.out, data=args.data, preset=args.preset, overrides=overrides, progress=not args.no_progress,
                      force=args.force, verbose=args.verbose)
    print(f"report: {report}")
    prompt = "The " if args.data else "def "  # the built-in corpus is Python source
    print(f'generate with: scratchllm generate --run {args.out} --prompt "{prompt}"')
    return 0
