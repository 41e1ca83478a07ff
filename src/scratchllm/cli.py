"""The `scratchllm` command: parse arguments, hand them to one stage function. No logic here.

Each stage keeps its own arguments in `scratchllm/<stage>/cli.py`, which has a
`register(subparsers)` that adds its sub-commands and sets `func` (the handler taking the
parsed arguments). Those modules import torch lazily so `scratchllm --help` stays instant.

    scratchllm --help
    scratchllm speedrun --out runs/speedrun
"""

from __future__ import annotations

import argparse
import importlib
import sys

from scratchllm import __version__
from scratchllm.errors import UserError, os_error_sentence
from scratchllm.utils.console import close_progress_bars, warnings_as_lines

# One line a stage; the order is the order of the help listing (the pipeline's order).
COMMAND_MODULES = [
    "scratchllm.pipelines.cli",
    "scratchllm.data.cli",
    "scratchllm.tokenizer.cli",
    "scratchllm.train.cli",
    "scratchllm.train.finetune_cli",
    "scratchllm.charlm.cli",
    "scratchllm.interop.cli",
    "scratchllm.inference.cli",
    "scratchllm.scaling.cli",
    "scratchllm.inference.quantize_cli",
    "scratchllm.eval.cli",
    "scratchllm.align.cli",
    "scratchllm.viz.cli",
    "scratchllm.serve.cli",
    "scratchllm.runs.cli",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scratchllm",
        description="Build a GPT-style language model from scratch.",
    )
    parser.add_argument("--version", action="version", version=f"scratchllm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        with warnings_as_lines():
            return args.func(args) or 0
    except UserError as e:
        close_progress_bars()
        print(f"error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except OSError as e:  # a full or read-only disk: one line naming the path, as for a UserError
        if (sentence := os_error_sentence(e)) is None:
            raise
        close_progress_bars()
        print(f"error: {sentence}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
