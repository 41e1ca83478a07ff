"""`scratchllm align ...`: preference optimisation of a fine-tuned run.

    scratchllm align dpo --run runs/sft --data pairs.jsonl --out runs/dpo [--beta 0.1] [--loss sigmoid|ipo|hinge]
                         [--label-smoothing 0] [train.max_steps=200 dpo.method=lora ...]
    scratchllm align dpo --out runs/dpo --resume                    # continue exactly
    scratchllm align reward --run runs/sft --data pairs.jsonl [--val-data held.jsonl] --out runs/rm
    scratchllm align pairs --run runs/sft --prompts prompts.jsonl --out pairs.jsonl [--k 4]
                           (--reward runs/rm | --judge-endpoint URL [--judge-model M] | --rules rules.toml)
    scratchllm align constitution --run runs/sft --prompts prompts.jsonl [--constitution C.toml] --out cai/
    scratchllm align grpo --run runs/sft --data gsm8k_train.jsonl --reward gsm8k --out runs/grpo [--group-size 8]
    scratchllm align ppo --run runs/sft --reward runs/rm --prompts prompts.jsonl --out runs/ppo

Pairs: {prompt, chosen, rejected} JSONL (prompt as text or messages), HH-RLHF transcripts,
LLaMA-Factory {conversations, chosen, rejected}, OpenAI/Orca {input, preferred_output, non_preferred_output}.
"""

from __future__ import annotations

import argparse

from scratchllm.align.build_cli import register_builders
from scratchllm.align.rl_cli import register_rl
from scratchllm.align.run_cli import add_run_arguments, interrupted


def register(subparsers) -> None:
    p = subparsers.add_parser("align", help="align a fine-tuned run (DPO, reward model, pairs, constitution, GRPO, PPO)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="align_command", metavar="STAGE", required=True)
    d = sub.add_parser("dpo", help="Direct Preference Optimization (sigmoid, conservative, IPO, hinge)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    d.add_argument("--run", default=None, help="the SFT run: the policy's start and the reference")
    d.add_argument("--data", default=None, help="preference pairs: .json or .jsonl[.gz]")
    d.add_argument("--val-data", default=None, help="held-out pairs (default: a dpo.val_fraction split of --data)")
    d.add_argument("--format", default=None, choices=["auto", "pairs", "hh", "llamafactory", "openai"],
                   help="the pairs' layout (default: detected from the first record)")
    d.add_argument("--beta", type=float, default=None, help="strength of the KL leash to the reference (0.1)")
    d.add_argument("--loss", choices=["sigmoid", "ipo", "hinge"], default=None, help="DPO variant (sigmoid)")
    d.add_argument("--label-smoothing", type=float, default=None,
                   help="conservative DPO: share of labels assumed flipped (0; sigmoid only)")
    add_run_arguments(d, "train.max_steps=100 dpo.method=lora dpo.lora.r=8")
    d.set_defaults(func=cmd_dpo)

    r = sub.add_parser("reward", help="train a reward model (scalar head, Bradley–Terry) on preference pairs",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("--run", default=None, help="the run the reward model starts from (usually the SFT run)")
    r.add_argument("--data", default=None, help="preference pairs: .json or .jsonl[.gz]")
    r.add_argument("--val-data", default=None, help="held-out pairs (default: a reward.val_fraction split of --data)")
    r.add_argument("--format", default=None, choices=["auto", "pairs", "hh", "llamafactory", "openai"],
                   help="the pairs' layout (default: detected from the first record)")
    add_run_arguments(r, "train.max_steps=100 reward.val_fraction=0.1")
    r.set_defaults(func=cmd_reward)

    register_builders(sub)   # pairs, constitution: align/build_cli.py
    register_rl(sub)         # grpo, ppo: align/rl_cli.py


def cmd_dpo(args) -> int:
    from scratchllm.align.dpo_run import dpo   # CLI speed: torch loads only when the command runs

    flags = {"format": args.format, "beta": args.beta, "loss": args.loss, "label_smoothing": args.label_smoothing,
             "val_data": args.val_data}
    overrides = list(args.overrides) + [f"dpo.{k}={v}" for k, v in flags.items() if v is not None]
    result = dpo(args.run, args.data, args.out, overrides, resume=args.resume, force=args.force,
                 verbose=args.verbose)
    if interrupted(result, "dpo", args.out):
        return 130
    final = result.final
    acc = final.get("val_rewards/accuracies")
    margin = final.get("val_rewards/margins")
    held = f"held-out reward accuracy {acc:.3f}, margin {margin:.3f}" if acc is not None else "no held-out pairs"
    print(f"done: {result.step} steps, {result.tokens:,} reply tokens in {result.wall_s:.0f}s; {held}")
    return 0


def cmd_reward(args) -> int:
    from scratchllm.align.reward import reward   # CLI speed: torch loads only when the command runs

    flags = {"format": args.format, "val_data": args.val_data}
    overrides = list(args.overrides) + [f"reward.{k}={v}" for k, v in flags.items() if v is not None]
    result = reward(args.run, args.data, args.out, overrides, resume=args.resume, force=args.force,
                    verbose=args.verbose)
    if interrupted(result, "reward", args.out):
        return 130
    acc = result.final.get("val_accuracy")
    held = f"held-out pair accuracy {acc:.3f}" if acc is not None else "no held-out pairs"
    print(f"done: {result.step} steps in {result.wall_s:.0f}s; {held}")
    print(f"score with: scratchllm.load('{args.out}').model.score(tokenizer, prompt, reply)")
    return 0

