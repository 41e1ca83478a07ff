"""Web-page helpers for the data tests (a uniquely named module): where Debian's python3-doc
HTML lives, packing pages into WARC files with warcio, and hand-made adversarial pages."""

import glob
import io
import os
from pathlib import Path

import pytest

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

# the shared data sets: ../shared/data beside the repository (SCRATCHLLM_DATA overrides, as in tests/tokenizer)
DATA = Path(os.environ.get("SCRATCHLLM_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))


def python_docs() -> Path:
    """The Python HTML docs (`apt-get install python3-doc`); skip, or fail under CI, when absent."""
    for d in sorted(glob.glob("/usr/share/doc/python3*/html"), reverse=True):
        if (Path(d) / "library" / "json.html").is_file():
            return Path(d)
    if os.environ.get("CI"):
        pytest.fail("python3-doc is not installed: .ci/run installs it with apt-get; check that step")
    pytest.skip("Debian's python3-doc is not installed (apt-get install -y python3-doc): no real HTML pages")


def doc_pages(n: int, sub: str = "library") -> list[Path]:
    """The first `n` HTML pages of a docs folder, sorted (reproducible)."""
    return sorted((python_docs() / sub).glob("*.html"))[:n]


def page(title: str, body: str, nav: str = "<nav><a href='/'>Home</a> | <a href='/shop'>Shop</a></nav>") -> str:
    """A small HTML page with navigation around its main text."""
    return (f"<!DOCTYPE html><html><head><title>{title}</title><script>var x = 1;</script></head><body>"
            f"{nav}<main>{body}</main><footer><p>Copyright 2024 Example Inc. All rights reserved.</p>"
            f"</footer></body></html>")


def write_warc(path: Path, pages: list[tuple[str, bytes | str]], gzip: bool = True, extra=None) -> Path:
    """A WARC of HTTP responses: (url, html) pairs; `extra(writer)` may add records of its own."""
    with open(path, "wb") as f:
        w = WARCWriter(f, gzip=gzip)
        w.write_record(w.create_warcinfo_record(path.name, {"software": "scratchllm tests"}))
        for url, html in pages:
            data = html.encode("utf-8") if isinstance(html, str) else html
            headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
            w.write_record(w.create_warc_record(url, "response", payload=io.BytesIO(data), http_headers=headers))
        if extra:
            extra(w)
    return path


def add_image(w: WARCWriter) -> None:
    headers = StatusAndHeaders("200 OK", [("Content-Type", "image/png")], protocol="HTTP/1.1")
    w.write_record(w.create_warc_record("http://example.org/a.png", "response",
                                        payload=io.BytesIO(b"\x89PNG...."), http_headers=headers))


def add_wet(w: WARCWriter, url: str, text: str) -> None:
    w.write_record(w.create_warc_record(url, "conversion", payload=io.BytesIO(text.encode("utf-8")),
                                        warc_content_type="text/plain"))
