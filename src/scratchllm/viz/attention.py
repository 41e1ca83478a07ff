"""The `attention` pictures: a layer × head grid of heat maps with one head enlarged, and an
animation of one head's attention while the model generates, a frame a token.

Row = the query (the token doing the looking), column = the key it looks at; the upper
triangle is empty because a token never sees the future.

>>> import tempfile, pathlib, torch
>>> maps = torch.softmax(torch.randn(2, 2, 3, 3), -1).tril()
>>> out = pathlib.Path(tempfile.mkdtemp()) / "a.png"
>>> draw_attention(maps, ["a", "b", "c"], out, layer=1, head=0); out.read_bytes()[:4] == b"\\x89PNG"
True
"""

from __future__ import annotations

from pathlib import Path

import torch
from matplotlib.figure import Figure

from scratchllm.viz.figures import figure_png, output_format, png_data_uri, write_gif, write_html, write_png

GRID_SCRIPT = """
function draw(canvas, m, size) {
  const n = m.length, c = canvas.getContext('2d'); canvas.width = canvas.height = size;
  const s = size / n;
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
    const v = m[i][j]; c.fillStyle = `rgb(${255 - 200 * v},${255 - 150 * v},255)`;
    c.fillRect(j * s, i * s, Math.ceil(s), Math.ceil(s));
  }
}
function enlarge(l, h) {
  document.getElementById('which').textContent = `layer ${l}, head ${h}`;
  draw(document.getElementById('big'), DATA.maps[l][h], 420);
}
const grid = document.getElementById('grid');
DATA.maps.forEach((heads, l) => {
  const row = grid.insertRow(); row.insertCell().textContent = 'layer ' + l;
  heads.forEach((m, h) => {
    const cv = document.createElement('canvas'); cv.title = `layer ${l} head ${h}`;
    cv.onclick = () => enlarge(l, h); draw(cv, m, 90); row.insertCell().appendChild(cv);
  });
});
document.getElementById('labels').textContent = DATA.labels.map((t, i) => i + ':' + t).join('  ');
enlarge(DATA.layer, DATA.head);
"""


def _grid_figure(maps: torch.Tensor, labels: list[str], layer: int, head: int) -> Figure:
    L, H = maps.shape[:2]
    fig = Figure(figsize=(2.0 * H + 6.5, max(2.0 * L, 5.5) + 0.6))
    grid = fig.add_gridspec(L, H + 3)
    for li in range(L):
        for hi in range(H):
            ax = fig.add_subplot(grid[li, hi])
            ax.imshow(maps[li, hi].numpy(), cmap="Blues", vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
            edge = "red" if (li, hi) == (layer, head) else "#888"
            for spine in ax.spines.values():
                spine.set_color(edge)
            if li == 0:
                ax.set_title(f"head {hi}", fontsize=8)
            if hi == 0:
                ax.set_ylabel(f"layer {li}", fontsize=8)
    big = fig.add_subplot(grid[:, H:])
    big.imshow(maps[layer, head].numpy(), cmap="Blues", vmin=0, vmax=1)
    ticks = range(len(labels))
    big.set_xticks(ticks, labels, rotation=90, fontsize=7, family="monospace")
    big.set_yticks(ticks, labels, fontsize=7, family="monospace")
    big.set_xlabel("key (attended to)")
    big.set_ylabel("query (looking)")
    big.set_title(f"layer {layer}, head {head}")
    fig.suptitle("attention weights: rows sum to 1, nothing above the diagonal")
    fig.tight_layout()
    return fig


def draw_attention(maps: torch.Tensor, labels: list[str], out: str | Path, layer: int = 0, head: int = 0) -> None:
    """Write the grid of `maps` [L, H, T, T] with (layer, head) enlarged to `out` (.png or .html)."""
    if output_format(out) == "png":
        write_png(out, _grid_figure(maps, labels, layer, head))
        return
    body = ("<p>Click a head to enlarge it. Rows: the query token; columns: the key it attends to.</p>"
            "<table id='grid'></table><h3 id='which'></h3><canvas id='big'></canvas><p id='labels'></p>")
    data = {"maps": maps.round(decimals=4).tolist(), "labels": labels, "layer": layer, "head": head}
    write_html(out, "attention", body, GRID_SCRIPT, data)


def _frame(maps: torch.Tensor, labels: list[str], n: int, n_prompt: int, layer: int, head: int) -> bytes:
    """One frame: the head's attention over the first `n` tokens, the newest row outlined."""
    T = len(labels)
    m = torch.zeros(T, T)
    m[:n, :n] = maps[layer, head, :n, :n]
    fig = Figure(figsize=(6.5, 6.5))
    ax = fig.subplots()
    ax.imshow(m.numpy(), cmap="Blues", vmin=0, vmax=1)
    shown = [lab if i < n else "" for i, lab in enumerate(labels)]
    ax.set_xticks(range(T), shown, rotation=90, fontsize=7, family="monospace")
    ax.set_yticks(range(T), shown, fontsize=7, family="monospace")
    ax.axhline(n - 1.5, color="red", lw=0.8), ax.axhline(n - 0.5, color="red", lw=0.8)
    generated = max(0, n - n_prompt)
    ax.set_title(f"layer {layer}, head {head}: {generated} token(s) generated")
    fig.tight_layout()
    return figure_png(fig, dpi=80)


def draw_attention_animation(maps: torch.Tensor, labels: list[str], n_prompt: int, out: str | Path,
                             layer: int = 0, head: int = 0) -> None:
    """Frames from the prompt alone to the last generated token, as a GIF or an HTML player."""
    frames = [_frame(maps, labels, n, n_prompt, layer, head) for n in range(n_prompt, len(labels) + 1)]
    if output_format(out, ("gif", "html")) == "gif":
        write_gif(out, frames)
        return
    body = "<p>One frame a generated token.</p><img id='frame'><br><input id='pos' type='range' min='0'>"
    script = ("const img = document.getElementById('frame'), pos = document.getElementById('pos');"
              "pos.max = DATA.length - 1; let i = 0;"
              "function show(k) { i = k; img.src = DATA[k]; pos.value = k; }"
              "pos.oninput = () => show(+pos.value); show(0);"
              "setInterval(() => show((i + 1) % DATA.length), 600);")
    write_html(out, "attention while generating", body, script, [png_data_uri(f) for f in frames])
