"""`scratchllm generate` and `scratchllm chat` (alias `sample`): text from a trained run, streamed.

    scratchllm generate --run runs/speedrun --prompt "def fibonacci(n):" --max-new-tokens 100
    scratchllm generate --run runs/speedrun --prompt "Once" --temperature 0 --stop "\\n\\n"
    scratchllm chat --run runs/speedrun          # a base run: each line you type is continued
    scratchllm chat --run runs/sft --system "Be brief."   # a fine-tuned run: a multi-turn chat
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
                              help="multi-turn chat with a fine-tuned run; on a base run each line is continued")
    _add_sampling_args(c)
    c.add_argument("--system", default=None, help="system message of a chat (fine-tuned runs only)")
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


def _chat_loop(run, args) -> int:
    """A fine-tuned run: each line is a user turn, the reply streams, the history is kept."""
    from scratchllm.inference.chat import ChatSession

    session = ChatSession(run.model, run.tokenizer, system=args.system, max_new_tokens=args.max_new_tokens,
                          temperature=args.temperature, top_k=args.top_k or None, top_p=args.top_p, seed=args.seed)
    print(f"{args.run}: a fine-tuned chat model, context {run.model.config.block_size} tokens. "
          "Type a message; /reset clears the history; Ctrl-C stops a reply, Ctrl-D quits.")
    while True:
        try:
            line = input("you> ")
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        if line.strip() == "/reset":
            session.reset()
            continue
        if not line.strip():
            continue
        sys.stdout.write("assistant> ")
        try:
            for piece in session.send(line):
                sys.stdout.write(piece)
                sys.stdout.flush()
        except UserError as e:          # e.g. a message longer than the context
            print(f"error: {e}", file=sys.stderr)
        except KeyboardInterrupt:
            sys.stdout.write(" [stopped]")
        print()


def cmd_chat(args) -> int:
    from scratchllm.train.finetune import is_chat_run

    run = _load(args)
    if is_chat_run(args.run):
        return _chat_loop(run, args)
    if args.system:
        print("note: --system is ignored: this is a base run, not a fine-tuned chat model", file=sys.stderr)
    print(f"{args.run}: {run.model.num_params():,} parameters, context {run.model.config.block_size} tokens. "
          "A base model (not fine-tuned for chat: see scratchllm finetune) continues each line you type; "
          "Ctrl-C stops a reply, Ctrl-D quits.")
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
