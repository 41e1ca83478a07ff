"""`scratchllm align grpo` and `scratchllm align ppo`: on-policy RL of a fine-tuned run.

    scratchllm align grpo --run runs/sft --data gsm8k_train.jsonl --reward gsm8k --out runs/grpo [--group-size 8]
                          [grpo.beta=0.04 grpo.max_new_tokens=256 train.max_steps=100 grpo.method=lora ...]
    scratchllm align ppo  --run runs/sft --reward runs/rm --prompts prompts.jsonl --out runs/ppo
                          [ppo.kl_coef=0.05 ppo.kl_target=6 train.max_steps=100 ...]
    scratchllm align grpo --out runs/grpo --resume                  # continue exactly (also ppo)

GRPO data: {"question", "answer"} GSM8K lines or {"prompt", "answer"} lines (code: {"prompt", "test"});
rewards: gsm8k, number, format, exact, code, or sums such as gsm8k+format. PPO prompts: {"prompt": ...} lines.
"""

from __future__ import annotations

import argparse

from scratchllm.align.run_cli import add_run_arguments, interrupted


def register_rl(sub) -> None:
    """Add `grpo` and `ppo` to the `align` sub-commands."""
    g = sub.add_parser("grpo", help="GRPO: G sampled replies per prompt scored by a rule, group-normalised advantages",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g.add_argument("--run", default=None, help="the SFT run: the policy's start and the KL reference")
    g.add_argument("--data", default=None, help="prompts with answers: .json or .jsonl")
    g.add_argument("--reward", default=None, help="the verifiable reward: gsm8k, number, format, exact, code (gsm8k)")
    g.add_argument("--group-size", type=int, default=None, help="replies sampled per prompt (8)")
    add_run_arguments(g, "train.max_steps=100 grpo.beta=0.02")
    g.set_defaults(func=cmd_grpo)

    p = sub.add_parser("ppo", help="PPO for RLHF: a reward model's score minus a KL penalty, GAE, clipped losses",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", default=None, help="the SFT run: the policy's start and the KL reference")
    p.add_argument("--reward", default=None, help="the reward model run (scratchllm align reward)")
    p.add_argument("--prompts", default=None, help='prompts: one {"prompt": ...} JSON object a line')
    add_run_arguments(p, "train.max_steps=100 ppo.kl_coef=0.05")
    p.set_defaults(func=cmd_ppo)


def _report(result, name: str, out: str) -> int:
    if interrupted(result, name, out):
        return 130
    final = result.final
    reward = final.get("reward_mean", final.get("score_mean"))
    said = f"last rollout's mean reward {reward:.3f}, KL {final.get('kl', 0.0):.4f}" if reward is not None else ""
    print(f"done: {result.step} steps, {result.tokens:,} reply tokens in {result.wall_s:.0f}s; {said}")
    return 0


def cmd_grpo(args) -> int:
    from scratchllm.align.grpo import grpo   # CLI speed: torch loads only when the command runs

    flags = {"reward": args.reward, "group_size": args.group_size}
    overrides = list(args.overrides) + [f"grpo.{k}={v}" for k, v in flags.items() if v is not None]
    result = grpo(args.run, args.data, args.out, overrides, resume=args.resume, force=args.force, verbose=args.verbose)
    return _report(result, "grpo", args.out)


def cmd_ppo(args) -> int:
    from scratchllm.align.ppo import ppo   # CLI speed: torch loads only when the command runs

    result = ppo(args.run, args.reward, args.prompts, args.out, list(args.overrides), resume=args.resume,
                 force=args.force, verbose=args.verbose)
    return _report(result, "ppo", args.out)
