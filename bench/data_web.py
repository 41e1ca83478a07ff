"""Benchmark: the "mini C4" web pipeline on real HTML (Debian's python3-doc pages, packed into a
WARC with warcio), stage by stage, in MB/s per core (CPU seconds of one process, so the other
jobs on a shared machine do not distort the figures; wall time is printed too).

Stages, each timed alone on the output of the previous one: WARC read + extraction
(resiliparse), PII scrubbing, C4, Gopher, FineWeb, the quality classifier, cross-document line
dedup and MinHash. Peer measured in the same run: trafilatura's extraction of the same pages
(`--peer-pages` of them; it is ~20x slower). Also the quality classifier's held-out accuracy
(WikiText-2 as reference vs the extracted pages as web text), and the whole
`data prepare --recipe mini-c4` with its drop table.

    python bench/data_web.py --html /usr/share/doc/python3.11/html --wiki ../shared/data/eval --out /tmp/web
"""

from __future__ import annotations

import argparse
import io
import json
import re
import time
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from scratchllm.data.dedup import DedupConfig, LineDeduplicator, fingerprint
from scratchllm.data.filters import FilterConfig, check
from scratchllm.data.minhash import MinHasher
from scratchllm.data.pii import scrub
from scratchllm.data.prepare import prepare
from scratchllm.data.quality import accuracy, split_heldout, train
from scratchllm.data.recipe import load_recipe
from scratchllm.data.stages import chunks
from scratchllm.data.web import WebStats, read_web_documents
from scratchllm.data.webfilters import C4Config, FineWebConfig, c4_lines, fineweb_rules
from scratchllm.tokenizer import Tokenizer


def pack_warc(html_dir: Path, out: Path) -> tuple[Path, list[Path]]:
    pages = sorted(html_dir.rglob("*.html"))
    with open(out, "wb") as f:
        w = WARCWriter(f, gzip=True)
        for p in pages:
            headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
            url = "https://docs.python.org/3/" + str(p.relative_to(html_dir))
            w.write_record(w.create_warc_record(url, "response", payload=io.BytesIO(p.read_bytes()), http_headers=headers))
    return out, pages


def timed(name: str, fn, nbytes: int, results: dict):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    results[name] = {"mb": round(nbytes / 1e6, 2), "cpu_s": round(cpu, 2), "wall_s": round(wall, 2),
                     "mb_per_s_per_core": round(nbytes / 1e6 / cpu, 2) if cpu else None}
    print(f"{name:22s} {nbytes / 1e6:8.2f} MB  {cpu:7.2f} s CPU  {wall:7.2f} s wall  "
          f"{results[name]['mb_per_s_per_core']} MB/s per core", flush=True)
    return out


def _mb(texts) -> int:
    return sum(len(t.encode("utf-8")) for t in texts)


def wiki_reference(wiki_dir: Path) -> list[str]:
    raw = "".join((wiki_dir / n).read_text(encoding="utf-8") for n in ("wikitext2_test.txt", "wikitext2_valid.txt"))
    raw = raw.replace(" @-@ ", "-").replace(" @,@ ", ",").replace(" @.@ ", ".").replace("<unk>", "").replace("\n \n", "\n\n")
    raw = re.sub(r" ([.,;:!?)'])", r"\1", raw).replace("( ", "(")
    arts = [a.strip() for a in re.split(r"\n \= [^=\n]+ \= \n", raw) if len(a.split()) > 200]
    return [p for a in arts for p in chunks(a, 3000) if len(p.split()) > 100]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--html", required=True, help="directory of HTML pages (python3-doc's html/)")
    ap.add_argument("--wiki", required=True, help="directory with wikitext2_test.txt / wikitext2_valid.txt")
    ap.add_argument("--out", required=True)
    ap.add_argument("--peer-pages", type=int, default=60, help="pages for the trafilatura peer")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    r: dict = {}
    warc, pages = pack_warc(Path(args.html), out / "pages.warc.gz")
    html_bytes = sum(p.stat().st_size for p in pages)
    stats = WebStats()
    docs = timed("extract (resiliparse)", lambda: list(read_web_documents([str(warc)], stats=stats)), html_bytes, r)
    texts = [d.text for d in docs]
    print(f"  {stats.pages} pages, {stats.documents} with text, {stats.empty_extraction} empty, {stats.extract_failed} failed")

    import trafilatura  # peer only, not a dependency of the library

    peer = [p.read_text(encoding="utf-8", errors="replace") for p in pages[: args.peer_pages]]
    timed("extract (trafilatura)", lambda: [trafilatura.extract(h, include_tables=True) for h in peer], _mb(peer), r)
    timed("extract (resiliparse)*", lambda: list(read_web_documents([str(p) for p in pages[: args.peer_pages]])),
          _mb(peer), r)

    scrubbed = timed("pii (email, ip)", lambda: [scrub(t, ("email", "ip"))[0] for t in texts], _mb(texts), r)
    c4cfg = C4Config(enabled=True)
    bad = c4cfg.word_set()
    c4out = timed("c4", lambda: [c4_lines(t, c4cfg, bad) for t in scrubbed], _mb(scrubbed), r)
    kept = [t for t, d in c4out if d is None]
    gcfg = FilterConfig()
    timed("gopher", lambda: [check(t, gcfg) for t in kept], _mb(kept), r)
    fcfg = FineWebConfig(enabled=True)
    timed("fineweb", lambda: [fineweb_rules(t, fcfg) for t in kept], _mb(kept), r)
    ld = LineDeduplicator("line")
    timed("dedup lines", lambda: [ld.strip(t) for t in scrubbed], _mb(scrubbed), r)
    print(f"  line dedup removed {100 * ld.removed_fraction:.2f}% of characters")
    dcfg = DedupConfig()
    hasher = MinHasher(dcfg.num_perm, dcfg.shingle, dcfg.seed)
    timed("minhash", lambda: [fingerprint(t, dcfg, hasher) for t in scrubbed], _mb(scrubbed), r)

    ref = wiki_reference(Path(args.wiki))
    web = [p for t in scrubbed for p in chunks(t, 3000) if len(p.split()) > 100]
    n = min(len(ref), len(web))
    xs, ys = ref[:n] + web[:n], [1] * n + [0] * n
    tr, te = split_heldout(len(xs), 0.2, 0)
    model = timed("quality train", lambda: train([xs[i] for i in tr], [ys[i] for i in tr]), _mb(xs[i] for i in tr), r)
    acc = accuracy(model, [xs[i] for i in te], [ys[i] for i in te])
    timed("quality score", lambda: [model.score(t) for t in kept], _mb(kept), r)
    r["quality_heldout_accuracy"] = {"accuracy": round(acc, 4), "heldout": len(te), "per_class": n}
    print(f"  quality classifier: held-out accuracy {100 * acc:.1f}% on {len(te)} ({n} examples per class)")

    tok = Tokenizer.train(texts[:50], vocab_size=512, progress=False)
    tok.save(str(out / "tok.json"))
    recipe = load_recipe("mini-c4")
    recipe.sources[0].paths = [str(warc)]
    recipe.tokenizer = str(out / "tok.json")
    recipe.workers = 1
    t0 = time.perf_counter()
    m = prepare(recipe, out / "prepared", progress=False)
    r["prepare_wall_s"] = round(time.perf_counter() - t0, 1)
    r["prepare_stages"] = m["stages"]
    r["drops"] = {k: v["count"] for k, v in sorted(m["drops"].items(), key=lambda kv: -kv[1]["count"])}
    r["web"] = {k: v for k, v in m["web"].items() if k != "quality"}
    r["kept_documents"] = m["splits"]["train"]["documents"] + m["splits"]["val"]["documents"]
    print(json.dumps({k: r[k] for k in ("prepare_wall_s", "drops", "kept_documents")}, indent=1))
    (out / "results.json").write_text(json.dumps(r, indent=1))


if __name__ == "__main__":
    main()
