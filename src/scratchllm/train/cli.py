"""`scratchllm train`: pretrain a model from a preset, on raw text or a token directory;
`scratchllm memory`: what training it takes per GPU, for each parallel layout;
`scratchllm consolidate`: a sharded (DCP) checkpoint rewritten as the usual safetensors files.

    scratchllm train --preset tiny-cpu --out runs/tiny                       # built-in corpus
    scratchllm train --preset small --data books.jsonl.xz --out runs/books train.max_steps=2000
    scratchllm train --out runs/books --resume                               # continue exactly
    torchrun --nproc-per-node 8 -m scratchllm train --preset gpt2-124m parallel.dp=fsdp
    scratchllm memory --preset gpt2-124m --gpus 8 --gpu-mem 80 train.batch_size=64
    scratchllm consolidate --run runs/big                                    # after parallel.checkpoint=sharded
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="pretrain a transformer (preset + key=value overrides)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default=None, help="preset name or .toml path (default tiny-cpu; with --resume: the run's config)")
    p.add_argument("--data", default=None, help="raw text (.txt, dir, .jsonl[.gz|.xz]) or a token directory; default: built-in corpus")
    p.add_argument("--encoding", default=None, help="text encoding of --data .txt files (= data.encoding; default utf-8)")
    p.add_argument("--out", default=None, help="run directory (default runs/PRESET)")
    p.add_argument("--resume", action="store_true",
                   help="continue the newest checkpoint in --out (a run with no checkpoint yet starts)")
    p.add_argument("--force", action="store_true", help="write into --out even if it holds files that are not a run's")
    p.add_argument("--verbose", action="store_true", help="print the resolved config (always saved to config.toml)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. train.max_steps=500")
    p.set_defaults(func=cmd_train)
    _register_memory(subparsers)
    p = subparsers.add_parser("consolidate", help="rewrite a sharded (DCP) checkpoint as model.safetensors + optimizer.pt",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="run directory trained with parallel.checkpoint=sharded")
    p.add_argument("--step", type=int, default=None, help="which checkpoint (default: the newest)")
    p.set_defaults(func=cmd_consolidate)


def _register_memory(subparsers) -> None:
    p = subparsers.add_parser("memory", help="plan training memory per GPU: params, grads, optimizer, activations",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="tiny-cpu", help="preset name or .toml path (default tiny-cpu)")
    p.add_argument("--gpus", type=int, default=1, help="ranks the global batch and (FSDP) the state are split over")
    p.add_argument("--gpu-mem", type=float, default=80.0, help="memory of one GPU in GiB (default 80)")
    p.add_argument("--fp32", action="store_true", help="activations in fp32 (CPU) instead of bf16 autocast (CUDA)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. train.batch_size=32")
    p.set_defaults(func=cmd_memory)


def _config(args):
    import os

    from scratchllm.config import apply_overrides
    from scratchllm.errors import UserError
    from scratchllm.train.config import load_run_config, resolve_run_config

    if args.resume and args.preset is None:
        if args.out is None:
            raise UserError("--resume needs --out DIR, the run directory to continue")
        if not any(os.path.exists(os.path.join(args.out, name)) for name in ("config.toml", "checkpoints")):
            cfg = resolve_run_config("tiny-cpu", args.overrides)  # killed before config.toml: start as new
        else:
            cfg = apply_overrides(load_run_config(args.out), args.overrides)
    else:
        cfg = resolve_run_config(args.preset or "tiny-cpu", args.overrides)
    if args.data is not None:
        cfg.data.path = args.data
    if args.encoding is not None:
        cfg.data.encoding = args.encoding
    return cfg


def sample_text(model, tokenizer, prompt: str = "The ", max_new_tokens: int = 48) -> str:
    """A fixed-seed continuation through the inference engine (the loop's periodic samples)."""
    from scratchllm.inference.engine import generate_text

    return prompt + "".join(generate_text(model, tokenizer, prompt, max_new_tokens, temperature=0.8, top_k=50, seed=0))


def cmd_train(args) -> int:
    import os

    from scratchllm.train import distributed
    from scratchllm.train.pretrain import pretrain

    cfg = _config(args)
    out = args.out or f"runs/{(args.preset or 'tiny-cpu').rsplit('/', 1)[-1].removesuffix('.toml')}"
    try:
        result, _, _, _ = pretrain(cfg, out, resume=args.resume, progress=cfg.train.progress, force=args.force,
                                   verbose=args.verbose, sample=sample_text)
    finally:
        distributed.shutdown()
    if os.environ.get("RANK", "0") != "0":
        return 0  # under torchrun rank 0 reports
    final = result.final
    if result.interrupted:
        print(f"saved {out} at step {result.step}; continue with: scratchllm train --out {out} --resume")
        return 130
    figures = ", ".join(f"{k} {final[k]:.4f}" for k in ("loss", "val_loss", "val_bpb") if k in final)
    print(f"done: {result.step} steps, {result.tokens:,} tokens in {result.wall_s:.0f}s; {figures}")
    prompt = "The " if cfg.data.path else "def "  # the built-in corpus is Python source
    print(f'generate with: scratchllm generate --run {out} --prompt "{prompt}"')
    return 0


def cmd_memory(args) -> int:
    from scratchllm.errors import UserError
    from scratchllm.train.config import resolve_run_config
    from scratchllm.train.memory import format_plan, plan_memory

    if args.gpus < 1 or args.gpu_mem <= 0:
        raise UserError(f"--gpus must be at least 1 and --gpu-mem positive (got {args.gpus} and {args.gpu_mem:g})")
    cfg = resolve_run_config(args.preset, args.overrides)
    if cfg.train.batch_size % args.gpus:
        raise UserError(f"train.batch_size={cfg.train.batch_size} does not divide over {args.gpus} GPUs; "
                        f"pass a multiple of {args.gpus} (the global batch is split evenly)")
    pc = cfg.parallel  # parallel.tp / parallel.pp pick the degrees planned (default: all --gpus, where they fit)
    plan = plan_memory(cfg.model, cfg.train.batch_size, args.gpus, dtype_bytes=4 if args.fp32 else 2,
                       tp=pc.tp if pc.tp > 1 else 0, pp=pc.pp if pc.pp > 1 else 0, grad_accum=cfg.train.grad_accum,
                       pp_schedule=pc.pp_schedule, sequence_parallel=pc.sequence_parallel,
                       optimizer=cfg.train.optimizer)
    m = cfg.model
    print(f"{args.preset}: {m.n_layer} layers, n_embd {m.n_embd}, vocab {m.vocab_size}, context {m.block_size}; "
          f"micro-batch {cfg.train.batch_size} rows over {args.gpus} GPU(s); GiB per rank")
    print(format_plan(plan, args.gpu_mem))
    print(f"params/grads/optimizer are exact ({cfg.train.optimizer}); activations are estimates; "
          "allow ~10% for the CUDA context")
    return 0


def cmd_consolidate(args) -> int:
    from scratchllm.train.sharded_checkpoint import consolidate

    print(f"wrote {consolidate(args.run, args.step)} (model.safetensors + optimizer.pt)")
    return 0
