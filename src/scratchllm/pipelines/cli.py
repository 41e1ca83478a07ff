"""`scratchllm speedrun`: the whole pipeline in one command (see scratchllm.pipelines.speedrun).

    scratchllm speedrun                                  # built-in corpus -> runs/speedrun/report.md
    scratchllm speedrun --data books.txt --out runs/books --preset small train.max_steps=300
    scratchllm speedrun --preset capstone --out runs/capstone --serve      # raw Gutenberg -> a served chat model
    scratchllm speedrun --preset capstone --data DIR --sft FILE --dpo PAIRS --eval-data DIR \\
        train.max_steps=200 sft.train.max_steps=100 eval.limit=500 prepare.tokens=50000000

Run the same command again to continue: complete stages are skipped, a cut-off training resumes.
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("speedrun", help="raw text -> tokenizer -> pretrain -> evaluate -> SFT -> report, "
                                               "in one resumable command",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/speedrun", help="run directory (default runs/speedrun)")
    p.add_argument("--data", default=None, help="raw text (.txt, dir, .jsonl[.gz|.xz]) or a token directory; default: "
                                                "built-in corpus (capstone: ../shared/data/pretrain/gutenberg)")
    p.add_argument("--preset", default=None, help="capstone, or a training preset (default: tiny-cpu on CPU, "
                                                  "capstone on CUDA)")
    p.add_argument("--sft", default=None, help="SFT conversations: a .json/.jsonl file or a directory with "
                                               "alpaca_en_demo.json/identity.json (default: standard-library "
                                               "docstring -> function pairs; capstone: ../shared/data/sft)")
    p.add_argument("--dpo", default=None, metavar="PAIRS", help="preference pairs: run DPO after SFT (default: no DPO)")
    p.add_argument("--eval-data", default=None, help="directory of benchmark files (capstone default: "
                                                     "../shared/data/eval)")
    p.add_argument("--until", default=None, metavar="STAGE", help="stop once this stage is complete (e.g. data, "
                                                                  "pretrain: a run split across time-limited calls)")
    p.add_argument("--serve", action="store_true", help="then serve the result (scratchllm serve) once /health answers")
    p.add_argument("--port", type=int, default=8000, help="port for --serve (default 8000)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--force", action="store_true", help="write into --out even if it holds files that are not a run's")
    p.add_argument("--verbose", action="store_true", help="print the resolved config (always saved to config.toml)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="overrides: train.max_steps=200 (pretraining), sft.train.max_steps=50, dpo.*, eval.limit=100, "
                        "prepare.tokens=N")
    p.set_defaults(func=cmd_speedrun)


def cmd_speedrun(args) -> int:
    # CLI speed: the pipeline pulls in torch and every stage; only a speedrun pays for them.
    from scratchllm.errors import UserError
    from scratchllm.pipelines.serving import serve_until_stopped
    from scratchllm.pipelines.speedrun import speedrun

    if args.serve and not 0 < args.port < 65536:
        raise UserError(f"--port {args.port} is not a TCP port; give one in 1..65535")
    overrides = list(args.overrides) + (["train.progress=false"] if args.no_progress else [])
    report = speedrun(args.out, data=args.data, preset=args.preset, overrides=overrides, progress=not args.no_progress,
                      force=args.force, verbose=args.verbose, sft=args.sft, dpo_pairs=args.dpo,
                      eval_data=args.eval_data, until=args.until)
    if report is None:
        print(f"stopped after stage {args.until}; run the same command without --until to carry on")
        return 0
    print(f"report: {report}")
    final = report.parent / ("dpo" if args.dpo else "sft")
    print(f"chat with: scratchllm chat --run {final}\ngenerate with: scratchllm generate --run {args.out} "
          f"--prompt \"The \"")
    if args.serve:
        return serve_until_stopped(final, args.port)
    return 0
