"""`scratchllm generate` and `scratchllm chat` (alias `sample`): text from a trained run, streamed.

    scratchllm generate --run runs/speedrun --prompt "def fibonacci(n):" --max-new-tokens 100
    scratchllm generate --run runs/speedrun --prompt "Once" --temperature 0 --stop "\\n\\n"
    scratchllm chat --run runs/speedrun          # each line you type is continued by the model
"""

from __future__ import annotations

import sys
from pathlib import Path

from scratchllm.errors import UserError


def _add_sampling_args(p) -> None:
    p.add_argument("--run", required=True, help="run directory (from training, speedrun or import)")
    p.add_argument("--step", type=int, default=None, help="checkpoint step (default: the newest)")
    p.add_argument("--max-new-tokens", type=int, default=200, help="most tokens to generate (default 200)")
    p.add_argument("--temperature", type=float, default=0.8, help="0 = greedy; <1 sharper, >1 more random (default 0.8)")
    p.add_argument("--top-k", type=int, default=200, help="sample among the k most likely tokens; 0 = off (default 200)")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass; 1 = off (default 1.0)")
    p.add_argument("--seed", type=int, default=None, help="seed for reproducible samples")
    p.add_argument("--stop", action="append", default=[], metavar="TEXT",
                   help="stop when this text appears (repeatable; end-of-text always stops)")
    p.add_argument("--device", default="auto", help="cpu, cuda, mps or auto (default)")


def register(subparsers) -> None:
    g = subparsers.add_parser("generate", help="continue a prompt with a trained model, streaming to stdout")
    _add_sampling_args(g)
    g.add_argument("--prompt", default="", help="text to continue (default: empty = a new document)")
    g.add_argument("--prompt-file", default=None, help="read the prompt from this file instead")
    g.add_argument("--no-echo", action="store_true", help="print only the continuation, not the prompt")
    g.set_defaults(func=cmd_generate)

    c = subparsers.add_parser("chat", aliases=["sample"],
                              help="interactive prompt loop for a base model: each line is continued")
    _add_sampling_args(c)
    c.set_defaults(func=cmd_chat)


def _load(args):
    import scratchllm
    from scratchllm.utils.device import resolve_device

    run = scratchllm.load(args.run, step=args.step, device=resolve_device(args.device))
    if run.tokenizer is None:
        raise UserError(f"run '{args.run}' has no tokenizer.json, so text cannot be encoded; copy the "
                        "tokenizer the model was trained with into the run directory")
    return run


def _unescape(text: str) -> str:
    # A shell passes "\\n" as two characters; stop strings usually mean a newline.
    return text.replace("\\n", "\n").replace("\\t", "\t")


def _stream(run, args, prompt: str, echo: str) -> None:
    """Print `echo` and then the continuation of `prompt`, piece by piece as it is generated."""
    from scratchllm.inference.engine import generate_text

    pieces = generate_text(run.model, run.tokenizer, prompt, max_new_tokens=args.max_new_tokens,
                           temperature=args.temperature, top_k=args.top_k or None, top_p=args.top_p,
                           stop=[_unescape(s) for s in args.stop], seed=args.seed)
    # The first piece runs the prefill, so a bad prompt fails before anything is printed.
    sys.stdout.write(echo + next(pieces, ""))
    sys.stdout.flush()
    for piece in pieces:
        sys.stdout.write(piece)
        sys.stdout.flush()


def cmd_generate(args) -> int:
    prompt = args.prompt
    if args.prompt_file:
        path = Path(args.prompt_file)
        if not path.is_file():
            raise UserError(f"prompt file '{path}' does not exist; check the path")
        prompt = path.read_text(encoding="utf-8")
    run = _load(args)
    _stream(run, args, prompt, echo="" if args.no_echo else prompt)
    sys.stdout.write("\n")
    return 0


def cmd_chat(args) -> int:
    run = _load(args)
    print(f"{args.run}: {run.model.num_params():,} parameters, context {run.model.config.block_size} tokens. "
          "A base model continues each line you type; Ctrl-C stops a reply, Ctrl-D quits.")
    while True:
        try:
            line = input("> ")
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        if not line.strip():
            continue
        try:
            _stream(run, args, line, echo=line)
        except UserError as e:          # e.g. a prompt longer than the context: say so, keep the session
            print(f"error: {e}", file=sys.stderr)
            continue
        except KeyboardInterrupt:
            sys.stdout.write(" [stopped]")
        print()
