"""`scratchllm data ...`: prepare a corpus end to end, or run one stage alone.

    scratchllm data prepare --recipe gutenberg --tokenizer tok.json --out data/gut
    scratchllm data prepare --input notes/*.txt --tokenizer tok.json --out data/notes
    scratchllm data clean  --input raw.jsonl.xz --out clean.jsonl
    scratchllm data clean  --input pages.warc.gz --pii email,ip --out cleaned.jsonl
    scratchllm data filter --input clean.jsonl --out filtered/
    scratchllm data filter --input cleaned.jsonl --rules gopher,c4,fineweb,quality --quality-model q.safetensors --out f/
    scratchllm data quality-train --reference books.jsonl --web cleaned.jsonl --out q.safetensors
    scratchllm data dedup  --input clean.jsonl --threshold 0.8 --out dedup/
    scratchllm data mix    --input a.jsonl b.jsonl --weights 0.7 0.3 --out mixed.jsonl
    scratchllm data download tiny-shakespeare
"""

from __future__ import annotations

import json
from pathlib import Path


def _inputs(p) -> None:
    p.add_argument("--input", nargs="+", required=True, metavar="PATH",
                   help=".txt/.jsonl(.gz/.xz/.zst)/.parquet files, directories, globs, or hf:NAME")
    p.add_argument("--field", default="text", help="JSONL/parquet field holding the text")
    p.add_argument("--id-field", default="id", help="field holding the document id (else path:line)")
    p.add_argument("--limit", type=int, default=0, help="read at most this many documents")
    p.add_argument("--workers", type=int, default=2, help="worker processes")


def register(subparsers) -> None:
    from scratchllm.data.download import describe

    p = subparsers.add_parser("data", help="prepare training data: clean, filter, dedup, mix, tokenize")
    sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    pr = sub.add_parser("prepare", help="raw documents -> token shards, manifest.json and report.md")
    pr.add_argument("--recipe", default=None, help="recipe TOML file or packaged name (e.g. gutenberg)")
    pr.add_argument("--input", nargs="+", default=None, metavar="PATH", help="sources (replace the recipe's)")
    pr.add_argument("--field", default=None, help="JSONL/parquet text field for --input")
    pr.add_argument("--encoding", default=None, help="text encoding of .txt inputs (default utf-8)")
    pr.add_argument("--html-field", default=None, help="--input is JSONL of web pages with their HTML in this field")
    pr.add_argument("--tokenizer", default=None, help="tokenizer JSON, or a run directory holding one")
    pr.add_argument("--out", required=True, help="output directory")
    pr.add_argument("--workers", type=int, default=None)
    pr.add_argument("--force", action="store_true", help="replace --out even if it holds files this command did not write")
    pr.add_argument("--verbose", action="store_true", help="print the resolved recipe (it is saved in manifest.json)")
    pr.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="recipe overrides, e.g. dedup.threshold=0.7 filter.max_words=0")
    pr.set_defaults(func=_prepare)

    c = sub.add_parser("clean", help="clean documents (NFC, line endings, controls, whitespace, Gutenberg boilerplate)")
    _inputs(c)
    c.add_argument("--no-gutenberg", action="store_true", help="keep Project Gutenberg headers/footers")
    c.add_argument("--html-field", default=None,
                   help="JSONL inputs hold web pages' HTML in this field (WARC and HTML files are detected by content)")
    c.add_argument("--pii", default="email,ip", help="PII to replace: comma list of email, ip, phone; or none")
    c.add_argument("--out", required=True, help="output JSONL file")
    c.set_defaults(func=_clean)

    f = sub.add_parser("filter", help="Gopher quality/repetition filters and language id")
    _inputs(f)
    f.add_argument("--languages", nargs="*", default=["en"], help="languages to keep (none: no language filter)")
    f.add_argument("--max-words", type=int, default=100_000, help="upper word bound (0: none; books need 0)")
    f.add_argument("--rules", default="gopher", help="comma list of gopher, c4, fineweb, quality, urls")
    f.add_argument("--quality-model", default="", help="model file for the quality rule (data quality-train)")
    f.add_argument("--quality-threshold", type=float, default=0.5, help="keep a page if its score is at least this")
    f.add_argument("--block-domains", nargs="*", default=[], help="drop pages of these domains and their subdomains")
    f.add_argument("--blocklist", default="", help="file: a domain a line, or re:PATTERN")
    f.add_argument("--out", required=True, help="output directory: kept.jsonl, dropped.jsonl")
    f.set_defaults(func=_filter)

    d = sub.add_parser("dedup", help="exact + MinHash/LSH near-duplicate removal")
    _inputs(d)
    d.add_argument("--threshold", type=float, default=0.8, help="Jaccard similarity of word 5-gram sets")
    d.add_argument("--shingle", type=int, default=5, help="words per shingle")
    d.add_argument("--num-perm", type=int, default=128, help="MinHash signature length")
    d.add_argument("--out", required=True, help="output directory: documents.jsonl, clusters.jsonl")
    d.add_argument("--lines", choices=["off", "line", "paragraph"], default="off",
                   help="also cut every line (paragraph) an earlier document had, as C4 does for web pages")
    d.add_argument("--lines-min-words", type=int, default=50, help="drop documents left shorter than this by --lines")
    d.set_defaults(func=_dedup)

    m = sub.add_parser("mix", help="sample several inputs to target shares (of UTF-8 bytes)")
    _inputs(m)
    m.add_argument("--weights", nargs="+", type=float, required=True, help="one target share per input")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--max-epochs", type=float, default=1.0, help="most repeats of any input")
    m.add_argument("--out", required=True, help="output JSONL file")
    m.set_defaults(func=_mix)

    _add_quality_train(sub)

    dl = sub.add_parser("download", help=f"fetch a public corpus into the cache ({describe()})")
    dl.add_argument("name")
    dl.add_argument("--dir", default=None, help="directory to store it (default: the cache)")
    dl.set_defaults(func=_download)


def _add_quality_train(sub) -> None:
    q = sub.add_parser("quality-train", help="train the quality classifier: reference text vs web text")
    q.add_argument("--reference", nargs="+", required=True, metavar="PATH", help="reference documents (books, wiki)")
    q.add_argument("--web", nargs="+", required=True, metavar="PATH", help="web documents (e.g. data clean's output)")
    q.add_argument("--field", default="text", help="JSONL text field of both")
    q.add_argument("--heldout", type=float, default=0.2, help="share of examples held out to measure accuracy")
    q.add_argument("--chunk-chars", type=int, default=3000, help="long documents are cut into examples this long")
    q.add_argument("--max-examples", type=int, default=5000, help="examples per class at most")
    q.add_argument("--epochs", type=int, default=10)
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--out", required=True, help="model file (.safetensors)")
    q.set_defaults(func=_quality_train)


def _docs(args):
    from scratchllm.data.sources import read_documents

    return read_documents(args.input, args.field, args.id_field, limit=args.limit)


def _prepare(args) -> int:
    from scratchllm.config import apply_overrides
    from scratchllm.data.prepare import prepare
    from scratchllm.data.recipe import Recipe, SourceConfig, load_recipe
    from scratchllm.errors import UserError

    if not args.recipe and not args.input:
        raise UserError("data prepare needs --recipe FILE or --input PATH...")
    recipe = load_recipe(args.recipe) if args.recipe else Recipe()
    if args.input:
        recipe.sources = [SourceConfig(name="input", paths=list(args.input), text_field=args.field or "text",
                                       **({"format": "web", "html_field": args.html_field} if args.html_field else {}))]
    elif args.field:
        for s in recipe.sources:
            s.text_field = args.field
    if args.encoding:
        for s in recipe.sources:
            s.encoding = args.encoding
    if args.tokenizer:
        recipe.tokenizer = args.tokenizer
    if args.workers:
        recipe.workers = args.workers
    recipe = apply_overrides(recipe, args.set) if args.set else recipe
    m = prepare(recipe, args.out, samplers=model_samplers(recipe), force=args.force, verbose=args.verbose)
    sp = m["splits"]
    print(f"wrote {args.out}: {sp['train']['tokens']:,} train / {sp['val']['tokens']:,} val tokens from "
          f"{sp['train']['documents'] + sp['val']['documents']:,} documents; see {Path(args.out) / 'report.md'}")
    return 0


def _clean(args) -> int:
    from scratchllm.data.clean import CleanConfig
    from scratchllm.data.pii import parse_kinds
    from scratchllm.data.stages import run_clean
    from scratchllm.data.web import WebStats, is_web_input, read_web_documents
    from scratchllm.data.webrules import WebRules

    web = WebRules(pii=parse_kinds(args.pii))
    pii: dict = {}
    if args.html_field or is_web_input(args.input):
        stats = WebStats()
        docs = read_web_documents(args.input, args.html_field or "html", stats, limit=args.limit)
        n = run_clean(docs, CleanConfig(gutenberg=False), Path(args.out), args.workers, web, pii)
        print(f"extracted {stats.documents} of {stats.pages} pages ({stats.extract_failed} failed, "
              f"{stats.empty_extraction} without main text, {stats.malformed_records} malformed records skipped, "
              f"{stats.skipped_non_html} non-HTML skipped)")
    else:
        n = run_clean(_docs(args), CleanConfig(gutenberg=not args.no_gutenberg), Path(args.out), args.workers, web, pii)
    print(f"wrote {n} cleaned documents to {args.out}"
          + (f"; PII replaced: {', '.join(f'{k} {v}' for k, v in pii.items())}" if pii else ""))
    return 0


def _filter(args) -> int:
    from scratchllm.data.filters import FilterConfig
    from scratchllm.data.stages import run_filter
    from scratchllm.data.webrules import rules_from_names

    gopher, web = rules_from_names(args.rules, "none", args.quality_model, args.quality_threshold,
                                   args.block_domains, args.blocklist)
    cfg = FilterConfig(languages=list(args.languages), max_words=args.max_words, enabled=gopher)
    kept, dropped = run_filter(_docs(args), cfg, Path(args.out), args.workers, web)
    print(f"kept {kept}, dropped {dropped} documents; see {args.out}/dropped.jsonl for the rules")
    return 0


def _quality_train(args) -> int:
    from scratchllm.data.sources import read_documents
    from scratchllm.data.stages import run_quality_train

    model = run_quality_train(read_documents(args.reference, args.field), read_documents(args.web, args.field),
                              Path(args.out), args.heldout, args.chunk_chars, args.max_examples, args.epochs, args.seed)
    t = model.trained_on
    print(f"trained on {t['reference']} reference / {t['web']} web examples; held-out accuracy "
          f"{100 * model.heldout_accuracy:.1f}% on {t['heldout']}; wrote {args.out}")
    return 0


def _dedup(args) -> int:
    from scratchllm.data.dedup import DedupConfig, LineDeduplicator
    from scratchllm.data.stages import run_dedup

    cfg = DedupConfig(threshold=args.threshold, shingle=args.shingle, num_perm=args.num_perm,
                      lines=args.lines, lines_min_words=args.lines_min_words)
    lines = LineDeduplicator(args.lines) if args.lines != "off" else None
    kept, clusters = run_dedup(_docs(args), cfg, Path(args.out), args.workers, lines)
    print(f"kept {kept} documents; {clusters} duplicate clusters in {args.out}/clusters.jsonl"
          + (f"; {args.lines} dedup removed {100 * lines.removed_fraction:.2f}% of characters" if lines else ""))
    return 0


def _mix(args) -> int:
    from scratchllm.data.sources import read_documents
    from scratchllm.data.stages import run_mix
    from scratchllm.errors import UserError

    if len(args.weights) != len(args.input):
        raise UserError(f"--weights has {len(args.weights)} values for {len(args.input)} inputs; give one per input")
    sources = {p: list(read_documents([p], args.field, args.id_field, limit=args.limit)) for p in args.input}
    rates = run_mix(sources, dict(zip(args.input, args.weights)), Path(args.out), args.seed, max_epochs=args.max_epochs)
    print(json.dumps({"sampling_rates": rates}))
    return 0


def _download(args) -> int:
    from scratchllm.data.download import download

    print(download(args.name, args.dir))
    return 0


def model_samplers(recipe) -> dict:
    """`sample(prompt, seed) -> text` of each synthetic "model" source's run.

    Data sits below the runs and the engine in the layers, so the command line builds these
    and hands them to `prepare`.
    """
    from scratchllm.inference.engine import generate_text
    from scratchllm.train.checkpoint import load_run

    def sampler(src):
        run = load_run(src.run)
        return lambda prompt, seed: "".join(generate_text(
            run.model, run.tokenizer, prompt, max_new_tokens=src.max_new_tokens, temperature=src.temperature,
            top_k=src.top_k or None, seed=seed))

    return {src.name: sampler(src) for src in recipe.sources if src.type == "model" and src.run}
