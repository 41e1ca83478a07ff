"""results.json and report.md: every task's figures next to the yardsticks they must beat.

Baselines in the table: chance accuracy for multiple choice, unigram/bigram bits per byte for
text (when the caller could fit them: `ngram` figures are passed in), and published figures of
known models where one exists for the same task, metric and shots, with its source.

>>> md = render_markdown({"tasks": {"piqa": {"kind": "mc", "metrics": {"acc": 0.6}, "stderr": {"acc": 0.01},
...     "n": 100, "shots": 0, "chance": 0.5}}, "model": "runs/x"})
>>> "| piqa | acc | 0.6000 ± 0.0100 | 100 | 0 | 0.5000 |" in md
True
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scratchllm.utils.atomic import atomic_directory

# (task, metric, shots) -> [(model, value, source)]. Zero-shot GPT-3 Small (125M) figures are from
# Brown et al. 2020, "Language Models are Few-Shot Learners", appendix H (table H.1); GPT-2 124M's
# HellaSwag is lm-eval's figure as reported by llm.c; the pass@k figures are Chen et al. 2021, table 1.
GPT3 = "Brown et al. 2020, table H.1"
PUBLISHED: dict[tuple[str, str, int], list[tuple[str, float, str]]] = {
    ("hellaswag", "acc_norm", 0): [("GPT-2 124M", 0.2955, "lm-eval via karpathy/llm.c README"),
                                   ("GPT-3 Small 125M", 0.337, GPT3)],
    ("lambada", "acc", 0): [("GPT-3 Small 125M", 0.427, GPT3)],
    ("lambada", "perplexity", 0): [("GPT-3 Small 125M", 18.6, GPT3)],
    ("piqa", "acc", 0): [("GPT-3 Small 125M", 0.646, GPT3)],
    ("arc_easy", "acc", 0): [("GPT-3 Small 125M", 0.436, GPT3)],
    ("arc_challenge", "acc", 0): [("GPT-3 Small 125M", 0.266, GPT3)],
    ("winogrande", "acc", 0): [("GPT-3 Small 125M", 0.520, GPT3)],
    ("humaneval", "pass@1", 0): [("GPT-Neo 125M", 0.0075, "Chen et al. 2021, table 1")],
}
NGRAM_METRIC = "bits_per_byte"


def _fmt(v: float | None) -> str:
    return "—" if v is None else f"{v:.4f}"


def _baseline(entry: dict[str, Any], metric: str, ngram: dict[str, float] | None) -> str:
    if entry.get("chance") is not None and metric.startswith("acc"):
        return _fmt(entry["chance"])
    if metric == NGRAM_METRIC and ngram:
        return f"uni {ngram['unigram_bpb']:.3f} / bi {ngram['bigram_bpb']:.3f}"
    if metric in ("exact_match", "exact_match_flexible") or metric.startswith("pass@") or metric == "acc":
        return "0"
    return "—"


def _published(task: str, metric: str, shots: int) -> str:
    return "; ".join(f"{m} {v:g} ({src})" for m, v, src in PUBLISHED.get((task, metric, shots), []))


def render_markdown(results: dict[str, Any]) -> str:
    lines = [f"# Evaluation of `{results['model']}`", "",
             "| task | metric | ours ± stderr | n | shots | baseline | published |",
             "|---|---|---|---|---|---|---|"]
    ngram = results.get("ngram_baselines", {})
    for task, entry in results["tasks"].items():
        for metric, value in entry["metrics"].items():
            if metric.startswith("acc_") and metric not in ("acc_norm", "acc_bytes", "acc_macro"):
                continue   # per-subject figures live in results.json
            err = entry["stderr"].get(metric)
            shown = _fmt(value) + (f" ± {_fmt(err)}" if err is not None else "")
            row = [task, metric, shown, str(entry["n"]), str(entry["shots"]),
                   _baseline(entry, metric, ngram.get(task)), _published(task, metric, entry["shots"])]
            lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Baseline: chance accuracy (multiple choice), unigram/bigram bits per byte fitted on the run's "
              "training tokens (text), 0 for generative tasks. Standard errors as lm-eval computes them "
              "(sample std / sqrt(n)); corpus perplexities have none."]
    return "\n".join(lines) + "\n"


def write_results(out: str | Path, results: dict[str, Any]) -> Path:
    """DIR/results.json and DIR/report.md, written together: either both appear or neither."""
    out = Path(out)
    with atomic_directory(out) as tmp:
        (tmp / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        (tmp / "report.md").write_text(render_markdown(results), encoding="utf-8")
    return out
