"""`scratchllm align pairs` and `scratchllm align constitution`: the commands that build alignment data.

    scratchllm align pairs --run runs/sft --prompts prompts.jsonl --out pairs.jsonl [--k 4]
                           (--reward runs/rm | --judge-endpoint URL [--judge-model M] | --rules rules.toml)
    scratchllm align constitution --run runs/sft --prompts prompts.jsonl [--constitution C.toml] --out cai/
                                  [--rounds 1] [--endpoint URL [--model M] instead of --run]

`pairs` samples k replies per prompt from the run and keeps the best and the worst of one
ranker as {prompt, chosen, rejected}; `constitution` writes cai/sft.jsonl (for scratchllm
finetune), cai/pairs.jsonl (for scratchllm align dpo) and cai/transcript.jsonl, and resumes
where it stopped when run again.
"""

from __future__ import annotations

import argparse


def register_builders(sub) -> None:
    """Add `pairs` and `constitution` to the `align` sub-commands `sub`."""
    b = sub.add_parser("pairs", help="build preference pairs: k sampled replies per prompt, ranked by a reward "
                       "model, a judge endpoint or a rule file", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    b.add_argument("--run", required=True, help="the run that writes the replies")
    b.add_argument("--prompts", required=True, help='prompts file: one {"prompt": ...} JSON object a line')
    b.add_argument("--out", required=True, help="the pairs file to write (.jsonl)")
    b.add_argument("--reward", default=None, help="rank by this reward model run (scratchllm align reward)")
    b.add_argument("--judge-endpoint", default=None, metavar="URL",
                   help="rank by an LLM judge's 1-10 grades from this OpenAI-compatible chat endpoint")
    b.add_argument("--judge-model", default=None, help="the model name sent to the judge endpoint (judge)")
    b.add_argument("--rules", default=None, help="rank by a rule file (TOML; see docs/alignment.md)")
    b.add_argument("--k", type=int, default=4, help="replies sampled per prompt (4)")
    b.add_argument("--max-new-tokens", type=int, default=64, help="longest reply (64)")
    b.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (1.0: varied replies)")
    b.add_argument("--seed", type=int, default=0)
    b.set_defaults(func=cmd_pairs)

    c = sub.add_parser("constitution", help="constitutional AI: reply, critique against a principle, revise; "
                       "writes SFT data and preference pairs", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("--run", default=None, help="the run that replies, critiques and revises")
    c.add_argument("--endpoint", default=None, metavar="URL", help="an OpenAI-compatible chat endpoint instead of --run")
    c.add_argument("--model", default="default", help="the model name sent to --endpoint (default)")
    c.add_argument("--prompts", required=True, help='red-team or user prompts: JSONL with a "prompt" string a line')
    c.add_argument("--constitution", default=None, help="TOML file of [[principle]] tables (default: the built-in one)")
    c.add_argument("--out", required=True, help="directory for sft.jsonl, pairs.jsonl, transcript.jsonl")
    c.add_argument("--rounds", type=int, default=1, help="critique-and-revise rounds per prompt (1)")
    c.add_argument("--max-new-tokens", type=int, default=128, help="longest reply, critique or revision (128)")
    c.add_argument("--temperature", type=float, default=0.7, help="sampling temperature (0.7)")
    c.add_argument("--seed", type=int, default=0, help="seeds the principle draws and the sampling (0)")
    c.add_argument("--batch-size", type=int, default=16, help="prompts generated together and saved together (16)")
    c.add_argument("--force", action="store_true", help="write into an --out holding files this command did not write")
    c.set_defaults(func=cmd_constitution)


def cmd_pairs(args) -> int:
    from scratchllm.align.pairs import build_pairs   # CLI speed: torch loads only when the command runs
    from scratchllm.errors import UserError
    from scratchllm.eval.judge import Judge

    if args.judge_model is not None and args.judge_endpoint is None:
        raise UserError("--judge-model names the judge of --judge-endpoint; pass --judge-endpoint URL as well")
    judge = Judge(args.judge_endpoint, args.judge_model or "judge") if args.judge_endpoint else None
    stats = build_pairs(args.run, args.prompts, args.out, reward=args.reward, judge=judge, rules=args.rules, k=args.k,
                        max_new_tokens=args.max_new_tokens, temperature=args.temperature, seed=args.seed)
    print(f"prompts {stats['prompts']}, pairs {stats['pairs']}, skipped {stats['skipped']} ({stats['ties']} ties "
          f"or all-equal, {stats['unscored']} with fewer than two scored replies); wrote {args.out}")
    return 0


def cmd_constitution(args) -> int:
    # CLI speed: torch loads only when the command runs
    from scratchllm.align.constitution_run import EndpointChat, RunChat, run_constitution
    from scratchllm.errors import UserError
    from scratchllm.train.checkpoint import load_run

    if (args.run is None) == (args.endpoint is None):
        raise UserError("give exactly one model: --run RUN or --endpoint URL")
    if args.endpoint:
        chat = EndpointChat(args.endpoint, args.model, args.max_new_tokens, args.temperature)
    else:
        chat = RunChat(load_run(args.run), args.max_new_tokens, args.temperature)
    s = run_constitution(chat, args.prompts, args.out, args.constitution, rounds=args.rounds, seed=args.seed,
                         batch_size=args.batch_size, force=args.force)
    print(f"prompts {s['prompts']}: {s['revised']} revised now, {s['resumed']} already done (skipped), "
          f"{s['too_long']} too long for the context; {args.out}/sft.jsonl: {s['sft']} conversations, "
          f"{args.out}/pairs.jsonl: {s['pairs']} pairs ({s['unchanged']} revisions unchanged or empty "
          "give no pair)")
    return 0
