"""What every `scratchllm align` command that trains a run shares: its run arguments and its
"interrupted: resume with ..." message (dpo, reward in align/cli.py; grpo, ppo in align/rl_cli.py)."""

from __future__ import annotations


def add_run_arguments(p, example: str) -> None:
    """--out, --resume, --verbose, --force and the KEY=VALUE overrides (`example` shows some)."""
    p.add_argument("--out", required=True, help="run directory to write")
    p.add_argument("--resume", action="store_true", help="continue the newest checkpoint in --out")
    p.add_argument("--verbose", action="store_true", help="print the resolved config (always saved to config.toml)")
    p.add_argument("--force", action="store_true", help="write into an --out holding files this command did not write")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=f"config overrides, e.g. {example}")


def interrupted(result, command: str, out: str) -> bool:
    """True (after saying how to continue) when the run stopped early on Ctrl-C or SIGTERM."""
    if result.interrupted:
        print(f"saved {out} at step {result.step}; continue with: scratchllm align {command} --out {out} --resume")
    return result.interrupted
