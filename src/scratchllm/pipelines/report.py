"""The speedrun's report: a loss curve next to the baselines, samples, and `report.md`.

Everything is in bits per byte on the val split, the one unit in which the transformer, the
n-gram baselines and any other tokenizer's model compare directly.

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

from scratchllm.inference.engine import generate_text
from scratchllm.utils.atomic import atomic_write_bytes, atomic_write_text

SAMPLE_PROMPTS = ["def ", "class ", "The ", "import "]


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


def samples(model, tokenizer, prompts=SAMPLE_PROMPTS, max_new_tokens: int = 60, seed: int = 0) -> list[tuple[str, str]]:
    """(prompt, continuation) pairs sampled at temperature 0.8, top-k 50, fixed seed."""
    model.eval()
    return [(p, "".join(generate_text(model, tokenizer, p, max_new_tokens=max_new_tokens, temperature=0.8,
                                      top_k=50, seed=seed))) for p in prompts]


def _table(rows: list[tuple[str, str]]) -> str:
    return "\n".join(["| | |", "|---|---|", *(f"| {a} | {b} |" for a, b in rows)])


def write_report(out_dir: Path, *, config_toml: str, figures: dict[str, Any], baselines: dict[str, float],
                 timings: dict[str, float], sample_pairs: list[tuple[str, str]], curve: str | None) -> Path:
    """Write `out_dir/report.md` (atomically) and return its path."""
    f = figures
    results = [("val loss (nats/token)", f"{f['val_loss']:.4f}"),
               ("**val bits per byte**", f"**{f['val_bpb']:.4f}**"),
               ("bigram baseline (bits per byte)", f"{baselines['bigram_bpb']:.4f}"),
               ("unigram baseline (bits per byte)", f"{baselines['unigram_bpb']:.4f}"),
               ("parameters", f"{f['params']:,} ({f['params_non_embedding']:,} without embeddings)"),
               ("tokens seen", f"{f['tokens']:,} ({f['steps']:,} steps)"),
               ("training tokens/s", f"{f['tokens_per_s']:,.0f}"),
               ("device", f["device"]),
               ("data", f"{f['train_tokens']:,} train / {f['val_tokens']:,} val tokens, "
                        f"{f['val_bytes']:,} val bytes ({f['data']})")]
    stages = [(name, f"{seconds:.1f} s") for name, seconds in timings.items()]
    parts = ["# scratchllm speedrun report", "",
             f"Val bits per byte **{f['val_bpb']:.3f}** against the bigram baseline's {baselines['bigram_bpb']:.3f} "
             f"and the unigram's {baselines['unigram_bpb']:.3f} (same val split; lower is better).", "",
             "## Results", "", _table(results), "", "## Wall time", "", _table(stages), ""]
    if curve:
        parts += ["## Loss curve", "", f"![loss curve]({curve})", ""]
    parts += ["## Samples", "", "Temperature 0.8, top-k 50, seed 0.", ""]
    for prompt, text in sample_pairs:
        parts += ["```", (prompt + text).replace("```", "'''"), "```", ""]
    parts += ["## Config", "", "```toml", config_toml.strip(), "```", "",
              f"Generate: `scratchllm generate --run {out_dir} --prompt \"def \"`", ""]
    path = Path(out_dir) / "report.md"
    atomic_write_text(path, "\n".join(parts))
    return path
