"""`scratchllm tokenizer ...`: train, encode, decode, show, stats, import, export.

    scratchllm tokenizer train --input data/*.jsonl.xz --vocab-size 32768 --pattern gpt4 --out tok.json
    echo "Hello world" | scratchllm tokenizer encode --tokenizer tok.json
    echo "[15496, 995]" | scratchllm tokenizer decode --tokenizer tok.json
    scratchllm tokenizer show --tokenizer tok.json --text "Hello world" --html tokens.html
    scratchllm tokenizer stats --tokenizer tok.json held_out.txt
    scratchllm tokenizer import --gpt2 encoder.json vocab.bpe --out gpt2.json
    scratchllm tokenizer import --tiktoken cl100k_base.tiktoken --pattern cl100k --out cl100k.json
    scratchllm tokenizer export --tokenizer tok.json --hf tokenizer.json --tiktoken tok.tiktoken
"""

from __future__ import annotations

import json
import sys

from scratchllm.errors import UserError


def register(subparsers) -> None:
    p = subparsers.add_parser("tokenizer", help="train, inspect and convert byte-level BPE tokenizers")
    sub = p.add_subparsers(dest="tokenizer_command", metavar="ACTION", required=True)

    t = sub.add_parser("train", help="learn a BPE vocabulary from text files")
    t.add_argument("--input", nargs="+", required=True, metavar="PATH",
                   help=".txt files, directories, globs or .jsonl(.gz/.xz) with a 'text' field")
    t.add_argument("--vocab-size", type=int, default=32768, help="ids in total, special tokens included")
    t.add_argument("--pattern", default="gpt4", help="split regex: gpt2, gpt4 (= cl100k), o200k or a regex")
    t.add_argument("--max-bytes", type=int, default=None, help="train on at most this much text (UTF-8 bytes)")
    t.add_argument("--text-field", default="text", help="JSONL field holding the text")
    t.add_argument("--encoding", default="utf-8", help="text encoding of .txt inputs (default utf-8)")
    t.add_argument("--workers", type=int, default=None, help="processes for counting (default: all cores)")
    t.add_argument("--out", required=True, help="tokenizer JSON to write")
    t.add_argument("--verbose", action="store_true", help="print the settings before training")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("encode", help="UTF-8 text on stdin -> one JSON list of ids on stdout")
    e.add_argument("--tokenizer", required=True)
    e.add_argument("--allow-special", action="store_true", help="turn special-token strings into their ids")
    e.set_defaults(func=cmd_encode)

    d = sub.add_parser("decode", help="a JSON list of ids on stdin -> text on stdout")
    d.add_argument("--tokenizer", required=True)
    d.set_defaults(func=cmd_decode)

    s = sub.add_parser("show", help="text with its token boundaries coloured")
    s.add_argument("--tokenizer", required=True)
    s.add_argument("--text", default=None, help="text to show (default: stdin)")
    s.add_argument("--html", default=None, metavar="FILE", help="also write an HTML page")
    s.set_defaults(func=cmd_show)

    st = sub.add_parser("stats", help="bytes per token on files, and how much of the vocabulary they use")
    st.add_argument("--tokenizer", required=True)
    st.add_argument("paths", nargs="+", help="text files (or .jsonl(.gz/.xz))")
    st.add_argument("--max-bytes", type=int, default=50_000_000)
    st.set_defaults(func=cmd_stats)

    i = sub.add_parser("import", help="convert GPT-2, tiktoken or HF tokenizer files to our JSON")
    src = i.add_mutually_exclusive_group(required=True)
    src.add_argument("--gpt2", nargs=2, metavar=("ENCODER_JSON", "VOCAB_BPE"))
    src.add_argument("--tiktoken", metavar="FILE")
    src.add_argument("--hf", metavar="TOKENIZER_JSON", help="a byte-level BPE tokenizer.json")
    i.add_argument("--pattern", default=None, help="split pattern for --tiktoken: gpt2, cl100k or o200k")
    i.add_argument("--out", required=True)
    i.set_defaults(func=cmd_import)

    x = sub.add_parser("export", help="write a tokenizer as HF tokenizer.json and/or .tiktoken")
    x.add_argument("--tokenizer", required=True)
    x.add_argument("--hf", metavar="FILE", default=None)
    x.add_argument("--tiktoken", metavar="FILE", default=None)
    x.set_defaults(func=cmd_export)


def _load(path):
    from scratchllm.tokenizer import load_tokenizer

    return load_tokenizer(path)


def cmd_train(args) -> int:
    from scratchllm.tokenizer.bpe import Tokenizer
    from scratchllm.data.sources import expand_paths, read_texts

    expand_paths(args.input)  # a missing input fails now, before any output
    if args.verbose:
        print(f"tokenizer train: vocab_size={args.vocab_size} pattern={args.pattern} max_bytes={args.max_bytes} "
              f"workers={args.workers or 'all'} input={args.input}", file=sys.stderr)
    texts = read_texts(args.input, args.text_field, args.max_bytes, args.encoding)
    tok = Tokenizer.train(texts, args.vocab_size, args.pattern, num_workers=args.workers)
    tok.save(args.out)
    print(f"wrote {args.out}: {tok.vocab_size} ids, special tokens {tok.special_tokens}", file=sys.stderr)
    return 0


def cmd_encode(args) -> int:
    tok = _load(args.tokenizer)
    text = sys.stdin.read()
    if args.allow_special:
        ids = tok.encode(text, allowed_special="all")
    else:
        try:
            ids = tok.encode(text)
        except UserError as e:
            raise UserError(f"{e} (on the command line: --allow-special)") from None
    print(json.dumps(ids))
    return 0


def cmd_decode(args) -> int:
    tok = _load(args.tokenizer)
    try:
        ids = json.loads(sys.stdin.read())
    except json.JSONDecodeError:
        raise UserError("stdin is not a JSON list of ids; pipe in e.g. [15496, 995]") from None
    if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
        raise UserError("stdin must be one JSON list of integer ids, e.g. [15496, 995]")
    sys.stdout.write(tok.decode(ids))
    return 0


def cmd_show(args) -> int:
    from scratchllm.tokenizer.show import terminal_view, html_view
    from scratchllm.utils.atomic import atomic_write_text

    tok = _load(args.tokenizer)
    text = args.text if args.text is not None else sys.stdin.read()
    ids = tok.encode(text, allowed_special="all")
    print(terminal_view(tok, ids))
    print(f"{len(ids)} tokens, {len(text.encode('utf-8'))} bytes", file=sys.stderr)
    if args.html:
        atomic_write_text(args.html, html_view(tok, ids))
        print(f"wrote {args.html}", file=sys.stderr)
    return 0


def cmd_stats(args) -> int:
    from scratchllm.data.sources import read_texts

    tok = _load(args.tokenizer)
    n_bytes = n_tokens = 0
    used: set[int] = set()
    for text in read_texts(args.paths, "text", args.max_bytes):
        ids = tok.encode(text, disallowed_special=())
        n_bytes += len(text.encode("utf-8"))
        n_tokens += len(ids)
        used.update(ids)
    if not n_tokens:
        raise UserError("the files hold no text; pass non-empty text files")
    print(json.dumps({"bytes": n_bytes, "tokens": n_tokens, "bytes_per_token": round(n_bytes / n_tokens, 4),
                      "vocab_used": len(used), "vocab_size": tok.vocab_size,
                      "vocab_coverage": round(len(used) / tok.vocab_size, 4)}, indent=1))
    return 0


def cmd_import(args) -> int:
    from scratchllm.tokenizer import formats

    if args.gpt2:
        tok = formats.import_gpt2(*args.gpt2)
    elif args.tiktoken:
        if not args.pattern:
            raise UserError("--tiktoken needs --pattern (gpt2, cl100k or o200k): the file holds no split regex")
        tok = formats.import_tiktoken(args.tiktoken, args.pattern)
    else:
        tok = formats.import_hf(args.hf)
    tok.save(args.out)
    print(f"wrote {args.out}: {tok.vocab_size} ids, special tokens {tok.special_tokens}", file=sys.stderr)
    return 0


def cmd_export(args) -> int:
    from scratchllm.tokenizer import formats

    if not (args.hf or args.tiktoken):
        raise UserError("nothing to export; pass --hf FILE and/or --tiktoken FILE")
    tok = _load(args.tokenizer)
    if args.hf:
        formats.export_hf(tok, args.hf)
        print(f"wrote {args.hf}", file=sys.stderr)
    if args.tiktoken:
        formats.write_tiktoken(tok, args.tiktoken)
        print(f"wrote {args.tiktoken} (special tokens are not stored in .tiktoken files: {tok.special_tokens})",
              file=sys.stderr)
    return 0
