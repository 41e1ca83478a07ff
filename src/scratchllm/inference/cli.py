"""`scratchllm generate` and `scratchllm chat` (alias `sample`): text from a trained run, streamed.

    scratchllm generate --run runs/speedrun --prompt "def fibonacci(n):" --max-new-tokens 100
    scratchllm generate --run runs/speedrun --prompt "Once" --temperature 0 --stop "\\n\\n"
    scratchllm generate --run runs/speedrun --prompts-file prompts.jsonl --out-file out.jsonl   # one batch
    scratchllm generate --run runs/big --draft-run runs/small --prompt "Once" --temperature 0   # speculative
    scratchllm generate --run runs/speedrun --draft ngram --prompt "$(cat code.py)"           # prompt lookup
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
    g.add_argument("--prompts-file", default=None, metavar="F.jsonl",
                   help='one {"prompt": ...} a line (optional max_new_tokens, temperature, top_k, top_p, seed, '
                        'stop per line): all in one batch, one JSON line per prompt in input order')
    g.add_argument("--out-file", default=None, help="with --prompts-file: write the JSON lines here, not to stdout")
    g.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                   help="weights' dtype (default auto: bfloat16 on CUDA, float32 elsewhere)")
    g.add_argument("--sliding-window", action="store_true",
                   help="when the context is full, recompute the cache from its last 3/4 and go on")
    g.add_argument("--draft-run", default=None, help="speculative decoding: a smaller run with the same tokenizer")
    g.add_argument("--draft", default=None, choices=["ngram"], help="speculative decoding by prompt lookup")
    g.add_argument("--draft-k", type=int, default=4, help="draft tokens per speculative round (default 4)")
    g.set_defaults(func=cmd_generate)

    c = subparsers.add_parser("chat", aliases=["sample"],
                              help="multi-turn chat with a fine-tuned run; on a base run each line is continued")
    _add_sampling_args(c)
    c.add_argument("--system", default=None, help="system message of a chat (fine-tuned runs only)")
    c.set_defaults(func=cmd_chat)


def _load(args, draft: bool = False):
    """The run of --run (or of --draft-run, newest step), in --dtype where the command has one."""
    import scratchllm
    import torch
    from scratchllm.utils.device import resolve_device

    run_dir = args.draft_run if draft else args.run
    device = resolve_device(args.device)
    run = scratchllm.load(run_dir, step=None if draft else args.step, device=device)
    if run.tokenizer is None:
        raise UserError(f"run '{run_dir}' has no tokenizer.json, so text cannot be encoded; copy the "
                        "tokenizer the model was trained with into the run directory")
    dtype = getattr(args, "dtype", None)          # generate has --dtype; chat keeps the checkpoint's
    if dtype == "auto":
        dtype = "bfloat16" if device.type == "cuda" else "float32"
    if dtype is not None:
        run.model.to(getattr(torch, dtype))
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


_REASONS = {"stop": "end-of-text or a stop string", "length": "--max-new-tokens reached",
            "context": "the model's context is full; --sliding-window goes on past it"}


def _speculative_pieces(run, args, prompt: str):
    """Text pieces of a speculative generation, and the stream (for its stats and finish reason)."""
    from scratchllm.inference.speculative import speculative_generate
    from scratchllm.inference.text import TextDecoder, encode_prompt

    draft = "ngram"
    if args.draft_run:
        draft_run = _load(args, draft=True)
        if draft_run.tokenizer.ranks != run.tokenizer.ranks or draft_run.tokenizer.special_tokens != run.tokenizer.special_tokens:
            raise UserError(f"the draft run '{args.draft_run}' has another tokenizer than '{args.run}'; "
                            "use a draft trained with the target's tokenizer.json (or --draft ngram)")
        draft = draft_run.model
    tok = run.tokenizer
    stream = speculative_generate(run.model, encode_prompt(tok, prompt), draft=draft, k=args.draft_k,
                                  max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                                  top_k=args.top_k or None, top_p=args.top_p, seed=args.seed,
                                  stop_ids=[tok.eot_id] if tok.eot_id is not None else [], vocab_size=tok.vocab_size)
    decoder = TextDecoder(tok, [_unescape(s) for s in args.stop])

    def pieces():
        for token in stream:
            yield decoder.feed(token)
            if decoder.stopped:
                stream.finish_reason = "stop"
                return
        yield decoder.finish()
    return pieces(), stream


def _generate_one(run, args, prompt: str) -> None:
    """Stream one continuation to stdout; say on stderr why it stopped (and how well drafts did)."""
    from scratchllm.inference.engine import generate_text

    if args.draft or args.draft_run:
        pieces, stream = _speculative_pieces(run, args, prompt)
    else:
        pieces = stream = generate_text(run.model, run.tokenizer, prompt, max_new_tokens=args.max_new_tokens,
                                        temperature=args.temperature, top_k=args.top_k or None, top_p=args.top_p,
                                        stop=[_unescape(s) for s in args.stop], seed=args.seed,
                                        sliding_window=args.sliding_window,
                                        cuda_graph=run.model.tok_emb.weight.is_cuda)
    sys.stdout.write(("" if args.no_echo else prompt) + next(pieces, ""))    # the prefill fails before any echo
    sys.stdout.flush()
    for piece in pieces:
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")
    note = f"finish_reason: {stream.finish_reason} ({_REASONS.get(stream.finish_reason, 'stopped')})"
    if hasattr(stream, "stats"):
        s = stream.stats
        note += f"; drafts kept {s.accepted}/{s.proposed} ({s.acceptance_rate:.0%}) in {s.rounds} target forwards"
    print(note, file=sys.stderr)


def _generate_file(args) -> None:
    """Every prompt of --prompts-file in one batch; one JSON line per prompt, in input order."""
    import json

    from scratchllm.inference.engine import generate_texts
    from scratchllm.inference.prompts_file import read_prompts_file
    from scratchllm.utils.atomic import atomic_write_text

    if args.draft or args.draft_run:
        raise UserError("speculative decoding (--draft, --draft-run) runs one --prompt at a time; "
                        "drop it to generate a --prompts-file in one batch")
    if args.prompt or args.prompt_file:
        raise UserError("give either --prompts-file or --prompt/--prompt-file, not both")
    if args.out_file and Path(args.out_file).is_dir():
        raise UserError(f"--out-file '{args.out_file}' is a directory; give a file path")
    defaults = dict(max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_k=args.top_k or None,
                    top_p=args.top_p, seed=args.seed, stop=[_unescape(s) for s in args.stop])
    prompts, settings = read_prompts_file(args.prompts_file, defaults)     # a bad file fails before the load
    run = _load(args)
    rows = generate_texts(run.model, run.tokenizer, prompts, settings, sliding_window=args.sliding_window,
                          cuda_graph=run.model.tok_emb.weight.is_cuda)
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    if args.out_file:
        atomic_write_text(args.out_file, text)
    else:
        sys.stdout.write(text)


def cmd_generate(args) -> int:
    if args.draft and args.draft_run:
        raise UserError("give either --draft ngram or --draft-run DRAFT, not both")
    if args.prompts_file:
        _generate_file(args)
        return 0
    prompt = args.prompt
    if args.prompt_file:
        path = Path(args.prompt_file)
        if not path.is_file():
            raise UserError(f"prompt file '{path}' does not exist; check the path")
        prompt = path.read_text(encoding="utf-8")
    _generate_one(_load(args), args, prompt)
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
