"""The `tokens` picture: the text coloured token by token, each token's id and byte count under it.

>>> import tempfile, pathlib
>>> from scratchllm.tokenizer.bpe import Tokenizer
>>> tok = Tokenizer({bytes([i]): i for i in range(256)} | {b"hi": 256}, "gpt2")
>>> rows = token_rows(tok, tok.encode("hi!"))
>>> [(r["id"], r["bytes"]) for r in rows]
[(256, 2), (33, 1)]
>>> out = pathlib.Path(tempfile.mkdtemp()) / "t.html"
>>> draw_tokens(tok, tok.encode("hi!"), out); out.read_text().count("class='tok'")
2
"""

from __future__ import annotations

import html
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

from scratchllm.viz.figures import output_format, write_html, write_png

PALETTE = ["#fbb", "#bfb", "#ffb", "#bbf", "#fbf", "#bff"]


def token_rows(tokenizer, ids: list[int]) -> list[dict]:
    """One dict a token: id, its text (a half UTF-8 character shows as U+FFFD), its byte count."""
    return [{"id": i, "text": tokenizer.decode([i]), "bytes": len(tokenizer.decode_bytes([i]))} for i in ids]


def _html(rows: list[dict]) -> str:
    spans = "".join(
        f"<span class='tok' style='background:{PALETTE[n % len(PALETTE)]}'>{html.escape(r['text']) or '∅'}"
        f"<span class='sub'>{r['id']} · {r['bytes']}B</span></span>"
        + ("<br>" if "\n" in r["text"] else "") for n, r in enumerate(rows))
    n_bytes = sum(r["bytes"] for r in rows)
    return (f"<p>{len(rows)} tokens, {n_bytes} bytes: {n_bytes / max(len(rows), 1):.2f} bytes a token "
            f"(under each token: its id · its bytes)</p><div>{spans}</div>")


def _figure(rows: list[dict], width: int = 60) -> Figure:
    """Tokens laid out in lines of about `width` characters, a coloured box each."""
    placed, x, y = [], 0, 0
    for r in rows:
        label = r["text"].replace("\n", "↵") or "∅"
        w = max(len(label), len(str(r["id"]))) + 1
        if x + w > width and x:
            x, y = 0, y + 1
        placed.append((x, y, w, label, r))
        x += w
    n_lines = y + 1
    fig = Figure(figsize=(12, 0.8 + 0.75 * n_lines))
    ax = fig.subplots()
    for n, (x, y, w, label, r) in enumerate(placed):
        ax.add_patch(_box(x, -y, w, PALETTE[n % len(PALETTE)]))
        ax.text(x + w / 2, -y + 0.15, label, ha="center", va="center", family="monospace", fontsize=11)
        ax.text(x + w / 2, -y - 0.3, f"{r['id']}·{r['bytes']}B", ha="center", va="center", fontsize=7, color="#444")
    ax.set_xlim(-0.5, width + 1)
    ax.set_ylim(-n_lines + 0.4, 0.7)
    ax.axis("off")
    n_bytes = sum(r["bytes"] for r in rows)
    ax.set_title(f"{len(rows)} tokens, {n_bytes / max(len(rows), 1):.2f} bytes a token (under each: id·bytes)")
    fig.tight_layout()
    return fig


def _box(x: float, y: float, w: float, colour: str) -> FancyBboxPatch:
    return FancyBboxPatch((x + 0.1, y - 0.5), w - 0.2, 0.95, boxstyle="round,pad=0.02", color=colour)


def draw_tokens(tokenizer, ids: list[int], out: str | Path) -> None:
    """Write the tokens picture of `ids` to `out` (.png or .html)."""
    rows = token_rows(tokenizer, ids)
    if output_format(out) == "html":
        write_html(out, "tokens", _html(rows))
    else:
        write_png(out, _figure(rows))
