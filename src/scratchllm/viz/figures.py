"""Writing pictures: a matplotlib Figure to PNG, a page to self-contained HTML, frames to a GIF.

Figures are drawn with matplotlib's `Figure` (no pyplot: no display, no global backend state)
and every file is written atomically, so a failed command leaves no half-written picture. HTML
pages carry their styles, scripts and data inline: they open offline, with no CDN.

>>> import tempfile, pathlib
>>> out = pathlib.Path(tempfile.mkdtemp()) / "a.html"
>>> output_format(out), output_format("a.png")
('html', 'png')
>>> write_html(out, "hi", "<p>hello</p>"); out.read_text().startswith("<!doctype html>")
True
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

from matplotlib.figure import Figure
from PIL import Image

from scratchllm.errors import UserError
from scratchllm.utils.atomic import atomic_write_bytes, atomic_write_text

STYLE = ("body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}"
         "table{border-collapse:collapse}td,th{padding:2px 5px;font-size:12px;text-align:center}"
         ".tok{display:inline-block;margin:2px;padding:2px 4px;border-radius:3px;font-family:monospace}"
         ".sub{display:block;font-size:10px;color:#555}")


def output_format(path: str | Path, allowed: tuple[str, ...] = ("png", "html")) -> str:
    """'png', 'html' or 'gif' from the --out file's suffix; a UserError for any other."""
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in allowed:
        raise UserError(f"--out '{path}' must end in {' or '.join('.' + a for a in allowed)} "
                        "(the suffix picks the format)")
    return suffix


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def write_png(path: str | Path, fig: Figure) -> None:
    atomic_write_bytes(path, figure_png(fig))


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def page(title: str, body: str, script: str = "", data=None) -> str:
    """A whole HTML document; `data` (JSON-able) is bound to the script's global `DATA`."""
    js = ""
    if data is not None:
        # subtle: "</" inside a JSON string would close the <script> element early.
        js += "const DATA = " + json.dumps(data).replace("</", "<\\/") + ";\n"
    js += script
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><h2>{html.escape(title)}</h2>{body}"
            + (f"<script>{js}</script>" if js else "") + "</body></html>\n")


def write_html(path: str | Path, title: str, body: str, script: str = "", data=None) -> None:
    atomic_write_text(path, page(title, body, script, data))


def write_gif(path: str | Path, frames: list[bytes], ms_per_frame: int = 400) -> None:
    """An animated GIF (looping) from PNG frames of the same size."""
    images = [Image.open(io.BytesIO(f)).convert("RGB") for f in frames]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=ms_per_frame, loop=0)
    atomic_write_bytes(path, buf.getvalue())


def heat(p: float) -> str:
    """A CSS colour from white (0) to deep blue (1), for probabilities and weights."""
    p = min(max(p, 0.0), 1.0)
    r, g = int(255 - 200 * p), int(255 - 150 * p)
    return f"rgb({r},{g},255)"


def diverging(x: float) -> str:
    """A CSS colour for a signed score in [-1, 1]: red below zero, green above, white at zero."""
    x = min(max(x, -1.0), 1.0)
    v = int(255 - 170 * abs(x))
    return f"rgb(255,{v},{v})" if x < 0 else f"rgb({v},255,{v})"
