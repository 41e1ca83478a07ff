"""manifest.json and report.md of a prepared data directory: what went in, what each stage
removed and why, what came out.

The manifest is the machine-readable record (sources, the resolved recipe, counts per stage,
tokens per split and source, tokenizer hash, MB/s per stage); report.md renders it for people,
with example documents for every drop reason and the largest duplicate clusters.

(`data/prepare.py`'s example makes a manifest end to end; its per-stage speeds come from here:)

>>> from scratchllm.data.stages import Timings
>>> t = Timings()
>>> t.add("clean", 0.5, 2_000_000)
>>> _stage_speeds(t)
{'clean': {'seconds': 0.5, 'mb': 2.0, 'mb_per_s': 4.0}}
"""

from __future__ import annotations

from dataclasses import asdict

from scratchllm.data.quality import load_model
from scratchllm.version import __version__

MAX_CLUSTERS_SHOWN = 25


def _stage_speeds(timings) -> dict:
    out = {}
    for stage, seconds in timings.seconds.items():
        mb = timings.bytes.get(stage, 0) / 1e6
        out[stage] = {"seconds": round(seconds, 3), "mb": round(mb, 3),
                      "mb_per_s": round(mb / seconds, 3) if seconds > 0 and mb else None}
    return out


def build_manifest(recipe, scan, result, keep, rates, ratios, splits, per_source, meta, seconds) -> dict:
    """Everything a later reader needs to trust (or redo) this data directory."""
    sources = []
    removed = {}
    for row, k in zip(scan.rows, keep):
        if not k:
            removed[row[0]] = removed.get(row[0], 0) + 1
    for i, src in enumerate(recipe.sources):
        read, c = scan.read[src.name], scan.counts[src.name]
        sources.append({
            "name": src.name, "type": src.type, "paths": src.paths, "synthetic": src.type != "files",
            "documents_read": read.documents, "bytes_read": read.bytes,
            "malformed_lines": read.malformed, "missing_field": read.missing_field,
            "dropped_by_filters": c["dropped"], "kept_after_filter": c["kept_after_filter"],
            "bytes_after_clean_and_filter": c["bytes_after_filter"],
            "removed_as_duplicates": removed.get(i, 0),
            "kept_after_dedup": c["kept_after_filter"] - removed.get(i, 0),
            "tokens_per_byte": round(ratios.get(src.name, 0.0), 5),
            "sampling_rate": round(rates.get(src.name, 0.0), 6),
            "mixed": per_source.get(src.name, {"documents": 0, "tokens": 0, "bytes": 0}),
        })
    total_tokens = sum(s["tokens"] for s in splits.values()) or 1
    for s in sources:
        s["mixed"]["token_share"] = round(s["mixed"].get("tokens", 0) / total_tokens, 5)
    exact = [c for c in result.clusters if c.kind == "exact"]
    return {
        "scratchllm_version": __version__,
        "recipe": asdict(recipe),
        "sources": sources,
        "drops": scan.drops,
        "dedup": {"bands": scan.index.bands, "rows": scan.index.rows, "clusters": len(result.clusters),
                  "exact_clusters": len(exact), "near_clusters": len(result.clusters) - len(exact),
                  "documents_removed": result.removed},
        "splits": splits,
        "tokenizer_sha256": meta["tokenizer_sha256"],
        "vocab_size": meta["vocab_size"],
        "stages": _stage_speeds(scan.timings),
        "web": _web_section(recipe, scan),
        "seconds": round(seconds, 2),
    }


def _web_section(recipe, scan) -> dict | None:
    """Extraction counts, PII replacements, line dedup and the quality model, for web recipes."""
    pii = {kind: sum(c.get(f"pii_{kind}", 0) for c in scan.counts.values()) for kind in recipe.pii}
    if not (scan.web or pii or scan.lines or recipe.quality.enabled):
        return None
    lines = None
    if scan.lines:
        lines = {"unit": recipe.dedup.lines, "chars_in": scan.lines.chars_in, "chars_removed": scan.lines.chars_removed,
                 "removed_fraction": round(scan.lines.removed_fraction, 5)}
    quality = None
    if recipe.quality.enabled:
        model = load_model(recipe.quality.model)
        quality = {"model": recipe.quality.model, "threshold": recipe.quality.threshold,
                   "heldout_accuracy": model.heldout_accuracy, "trained_on": model.trained_on}
    return {"extraction": {name: asdict(st) for name, st in scan.web.items()}, "pii_replaced": pii,
            "line_dedup": lines, "quality": quality}


def _render_web(w: dict) -> list[str]:
    out = ["## Web pages", ""]
    if w["extraction"]:
        out += _table(["source", "pages", "with text", "MB of HTML", "extraction failed", "no main text",
                       "malformed records", "not HTML"],
                      [[n, e["pages"], e["documents"], round(e["bytes"] / 1e6, 2), e["extract_failed"],
                        e["empty_extraction"], e["malformed_records"], e["skipped_non_html"]]
                       for n, e in w["extraction"].items()])
        out.append("")
    if w["pii_replaced"]:
        out.append("PII replaced: " + ", ".join(f"{k} {v}" for k, v in w["pii_replaced"].items()) + ".")
    if w["line_dedup"]:
        ld = w["line_dedup"]
        out.append(f"Cross-document {ld['unit']} dedup removed {ld['chars_removed']:,} of {ld['chars_in']:,} "
                   f"characters ({100 * ld['removed_fraction']:.2f}%).")
    if w["quality"]:
        q = w["quality"]
        acc = f"{100 * q['heldout_accuracy']:.1f}%" if q["heldout_accuracy"] is not None else "not measured"
        out.append(f"Quality classifier `{q['model']}`: keep if score >= {q['threshold']}; held-out accuracy {acc}.")
    return out + [""]


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(x) for x in row) + " |" for row in rows]
    return lines


def render(m: dict, clusters) -> str:
    """report.md: counts per stage, drop reasons with examples, duplicate clusters."""
    out = ["# Data preparation report", "",
           f"{sum(s['documents_read'] for s in m['sources']):,} documents read, "
           f"{m['splits']['train']['documents']:,} train / {m['splits']['val']['documents']:,} val documents written, "
           f"{m['splits']['train']['tokens']:,} train / {m['splits']['val']['tokens']:,} val tokens, in {m['seconds']} s.",
           "", "## Counts per stage", ""]
    out += _table(["source", "synthetic", "read", "MB read", "malformed", "dropped (filters)", "duplicates removed",
                   "kept", "rate", "mixed docs", "mixed tokens", "token share"],
                  [[s["name"], s["synthetic"], s["documents_read"], round(s["bytes_read"] / 1e6, 2),
                    s["malformed_lines"], s["dropped_by_filters"], s["removed_as_duplicates"], s["kept_after_dedup"],
                    s["sampling_rate"], s["mixed"].get("documents", 0), s["mixed"].get("tokens", 0),
                    s["mixed"]["token_share"]] for s in m["sources"]])
    out += ["", "## Speed per stage", ""]
    out += _table(["stage", "CPU seconds", "MB in", "MB/s (per core)"],
                  [[k, v["seconds"], v["mb"], v["mb_per_s"]] for k, v in m["stages"].items()])
    out += [""] + (_render_web(m["web"]) if m.get("web") else []) + ["## Drop reasons", ""]
    for rule, d in sorted(m["drops"].items(), key=lambda kv: -kv[1]["count"]):
        out.append(f"### {rule}: {d['count']} documents")
        for ex in d["examples"]:
            snippet = ex["text"][:160].replace("\n", " ").replace("|", "/")
            out.append(f"- `{ex['id']}` (value {ex['value']}): {snippet}")
        out.append("")
    dd = m["dedup"]
    out += ["## Duplicate clusters", "",
            f"{dd['clusters']} clusters ({dd['exact_clusters']} exact, {dd['near_clusters']} near; LSH "
            f"{dd['bands']} bands x {dd['rows']} rows), {dd['documents_removed']} documents removed. "
            f"The first id of each cluster is the one kept (the longest). All clusters: clusters.jsonl.", ""]
    for c in sorted(clusters, key=lambda c: -len(c.ids))[:MAX_CLUSTERS_SHOWN]:
        out.append(f"- {c.kind}, {len(c.ids)} documents: " + ", ".join(f"`{i}`" for i in c.ids[:8])
                   + (" ..." if len(c.ids) > 8 else ""))
    return "\n".join(out) + "\n"
