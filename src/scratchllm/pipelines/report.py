"""The speedrun's report: `report.md`, the post-mortem of one run, from its stages' figures.

What went well and what did not (pipelines/review.py), the results next to the baselines, the
cost of each stage in device-minutes, the loss curve, the benchmarks next to chance and the
published GPT-2 / GPT-3 figures, samples of the base model, SFT before/after, DPO, the config.
Everything about the base model is in bits per byte on the held-out split, the one unit in which
the transformer, the n-gram baselines and any other tokenizer's model compare directly.

>>> import pathlib, tempfile
>>> png = pathlib.Path(tempfile.mkdtemp()) / "curve.png"
>>> plot_curve([{"tokens": 100, "loss": 3.0}, {"tokens": 200, "loss": 2.5, "val_bpb": 1.2}],
...            {"unigram_bpb": 2.0}, tokens_per_byte=0.3, path=png)
>>> png.read_bytes()[:4] == b"\\x89PNG"
True
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from scratchllm.eval.report import PUBLISHED
from scratchllm.inference.engine import generate_text
from scratchllm.pipelines.review import review
from scratchllm.utils.atomic import atomic_write_bytes, atomic_write_text

def plot_curve(metrics: list[dict[str, Any]], baselines: dict[str, float], tokens_per_byte: float, path: Path) -> None:
    """Train and val bits-per-byte against tokens seen, with the baselines as dashed lines (PNG)."""
    to_bpb = tokens_per_byte / math.log(2)
    train = [(r["tokens"], r["loss"] * to_bpb) for r in metrics if r.get("loss") is not None]
    val = [(r["tokens"], r["val_bpb"]) for r in metrics if r.get("val_bpb") is not None]
    fig = Figure(figsize=(7, 4.2), dpi=120)  # no pyplot: no display, no global backend
    ax = fig.subplots()
    if train:
        ax.plot(*zip(*train), label="train (loss × val tokens/byte)", lw=1, alpha=0.7)
    if val:
        ax.plot(*zip(*val), "o-", label="val", lw=1.5)
    for (name, value), style in zip(sorted(baselines.items()), (":", "--")):
        ax.axhline(value, color="gray", ls=style, lw=1, label=f"{name.removesuffix('_bpb')} baseline {value:.3f}")
    ax.set_xlabel("tokens seen")
    ax.set_ylabel("bits per byte")
    ax.set_ylim(bottom=0, top=max([v for _, v in train[len(train) // 10:] + val] + list(baselines.values())) * 1.1)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(path, buf.getvalue())


def samples(model, tokenizer, prompts: list[str], max_new_tokens: int = 60, seed: int = 0) -> list[tuple[str, str]]:
    """(prompt, continuation) pairs sampled at temperature 0.8, top-k 50, fixed seed."""
    model.eval()
    return [(p, "".join(generate_text(model, tokenizer, p, max_new_tokens=max_new_tokens, temperature=0.8,
                                      top_k=50, seed=seed))) for p in prompts]


CELL_CHARS = 240   # a reply in a table cell is cut here; a tiny model rambles


def _table(rows: list[tuple], head: tuple = ("", "")) -> str:
    def cell(v) -> str:
        return str(v).replace("|", "/").replace("\n", " ")
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
                      *("| " + " | ".join(cell(c) for c in row) + " |" for row in rows)])


def _results(p: dict, baselines: dict, device: str) -> list[tuple[str, str]]:
    return [("val loss (nats/token)", f"{p['val_loss']:.4f}"),
            ("**val bits per byte** (held-out documents)", f"**{p['val_bpb']:.4f}**"),
            ("bigram baseline (bits per byte)", f"{baselines['bigram_bpb']:.4f}"),
            ("unigram baseline (bits per byte)", f"{baselines['unigram_bpb']:.4f}"),
            ("parameters", f"{p['params']:,} ({p['params_non_embedding']:,} without embeddings)"),
            ("tokens seen", f"{p['tokens']:,} ({p['steps']:,} of {p['max_steps']:,} steps)"),
            ("training tokens/s", f"{p['tokens_per_s']:,.0f}"),
            ("device", device),
            ("data", f"{p['train_tokens']:,} train / {p['val_tokens']:,} val tokens, "
                     f"{p['val_bytes']:,} val bytes ({p['data']})")]


def _stage_rows(runner) -> list[tuple[str, str, str, str]]:
    rows = [(name, "skipped (done earlier)" if r.skipped else "ran", f"{r.seconds:.1f}", f"{r.seconds / 60:.2f}")
            for name, r in runner.results.items()]
    total = sum(r.seconds for r in runner.results.values())
    return rows + [("**total**", "", f"**{total:.1f}**", f"**{total / 60:.2f}**")]


def _tasks_section(tasks: dict, missing: list[str]) -> list[str]:
    rows = []
    for name, e in tasks.items():
        for metric in ("acc", "acc_norm", "bits_per_byte", "perplexity"):
            if metric not in e["metrics"]:
                continue
            err = e["stderr"].get(metric)
            base = (f"{e['chance']:.3f}" if e.get("chance") is not None and metric.startswith("acc") else
                    f"uni {e['ngram']['unigram_bpb']:.3f} / bi {e['ngram']['bigram_bpb']:.3f}"
                    if metric == "bits_per_byte" and e.get("ngram") else "—")
            published = "; ".join(f"{m} {v:g}" for m, v, _ in PUBLISHED.get((name, metric, 0), [])) or "—"
            rows.append((name, metric, f"{e['metrics'][metric]:.4f}" + (f" ± {err:.4f}" if err else ""), e["n"],
                         base, published))
    parts = ["## Benchmarks", "", "Zero-shot, scored by `scratchllm eval` (OUT/eval/report.md has every metric).", "",
             _table(rows, ("task", "metric", "ours ± stderr", "n", "chance / n-gram", "published")), ""]
    if missing:
        parts += [f"Not run (file missing from the eval directory): {', '.join(missing)}.", ""]
    return parts


def _sft_section(sft: dict, pairs: list[tuple[str, str, str]]) -> list[str]:
    rows = [("conversations", f"{sft.get('conversations', '—')} ({sft.get('source', 'resumed')}); "
                              f"{sft.get('dropped_too_long', '—')} longer than the context left out"),
            ("held-out assistant-token loss, base", _num(sft.get("base_val_loss"))),
            ("held-out assistant-token loss, after SFT", _num(sft.get("val_loss"))),
            ("steps / tokens", f"{sft['steps']:,} / {sft['tokens']:,}")]
    return ["## Fine-tuning (SFT)", "", _table(rows), "", "Held-out prompts, greedy, 60 tokens at most:", "",
            _table([(p, b[:CELL_CHARS], a[:CELL_CHARS]) for p, b, a in pairs], ("prompt", "base (before SFT)", "after SFT")),
            ""]


def _num(v) -> str:
    return "—" if v is None else f"{v:.4f}"


def train_bpb(metrics: list[dict], tokens_per_byte: float, last: int = 10) -> float | None:
    """The mean train loss of the last `last` logged steps, in val bits per byte."""
    losses = [r["loss"] for r in metrics if r.get("loss") is not None][-last:]
    return sum(losses) / len(losses) * tokens_per_byte / math.log(2) if losses else None


def write_report(out_dir: Path, *, runner, config_toml: str, metrics: list[dict], tokens_per_byte: float,
                 sft_samples: list[tuple[str, str, str]], device: str, final_run: Path) -> Path:
    """Write `out_dir/report.md` (and loss.png) from the stages' figures, atomically; returns its path."""
    figs = {name: r.figures for name, r in runner.results.items()}
    p, ev = {**figs["pretrain"], "train_bpb": train_bpb(metrics, tokens_per_byte)}, figs["evaluate"]
    baselines = ev["baselines"]
    plot_curve(metrics, baselines, tokens_per_byte, Path(out_dir) / "loss.png")
    good, bad = review(p, baselines, metrics, ev.get("tasks"), figs.get("sft"), figs.get("dpo"))
    parts = ["# scratchllm speedrun report", "",
             f"Val bits per byte **{p['val_bpb']:.3f}** against the bigram baseline's {baselines['bigram_bpb']:.3f} "
             f"and the unigram's {baselines['unigram_bpb']:.3f} (same held-out split; lower is better). "
             f"The result: `{final_run}` (serve it: `scratchllm serve --run {final_run}`).", "",
             "## What went well", "", *(f"- {line}" for line in good), "",
             "## What did not", "", *(f"- {line}" for line in bad or ["nothing the numbers flag."]), "",
             "## Results", "", _table(_results(p, baselines, device)), "",
             "## Cost", "", f"Wall time of each stage on {device} (device-minutes = minutes on this device).", "",
             _table(_stage_rows(runner), ("stage", "this run", "seconds", "device-minutes")), "",
             "## Loss curve", "", "![loss curve](loss.png)", ""]
    if ev.get("tasks") is not None:
        parts += _tasks_section(ev["tasks"], ev.get("missing_tasks", []))
    parts += ["## Samples of the base model", "", "Temperature 0.8, top-k 50, seed 0.", ""]
    for prompt, text in ev["samples"]:
        parts += ["```", (prompt + text).replace("```", "'''"), "```", ""]
    if "sft" in figs:
        parts += _sft_section(figs["sft"], sft_samples)
    if "dpo" in figs:
        parts += ["## DPO", "", _table([(k, _num(v) if isinstance(v, float) else v) for k, v in figs["dpo"].items()]), ""]
    parts += ["## Config", "", "```toml", config_toml.strip(), "```", "",
              f"Generate: `scratchllm generate --run {out_dir} --prompt \"The \"`; "
              f"chat: `scratchllm chat --run {final_run}`", ""]
    path = Path(out_dir) / "report.md"
    atomic_write_text(path, "\n".join(parts))
    return path
