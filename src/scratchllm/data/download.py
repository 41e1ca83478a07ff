"""`scratchllm data download NAME`: fetch a well-known public corpus once into a cache.

The cache is `$SCRATCHLLM_CACHE/data` (default `~/.cache/scratchllm/data`); a file already
there is reused without touching the network. Downloads stream to a temporary file renamed
into place at the end, so an interrupted download never leaves a truncated corpus behind.
Offline, the command fails with one line naming the host and the manual alternative.

    scratchllm data download tiny-shakespeare
    scratchllm data prepare --input ~/.cache/scratchllm/data/tiny-shakespeare.txt --tokenizer tok.json --out data/shakes

Any URL urllib reads will do (`url` overrides the corpus's source), a local file too:

>>> import pathlib, tempfile
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "plays.txt").write_text("To be, or not to be")
>>> path = download("tiny-shakespeare", d / "cache", url=(d / "plays.txt").as_uri(), progress=False)
>>> path.name, path.read_text()
('tiny-shakespeare.txt', 'To be, or not to be')
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from scratchllm.errors import UserError

CORPORA = {
    "tiny-shakespeare": ("https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
                         "tiny-shakespeare.txt", "1.1 MB of Shakespeare's plays (karpathy/char-rnn)"),
    "tinystories": ("https://huggingface.co/datasets/roneneldan/TinyStories/resolve/main/TinyStoriesV2-GPT4-valid.txt",
                    "tinystories-valid.txt", "TinyStories V2 validation split, 22 MB (roneneldan/TinyStories)"),
    "fineweb-edu-sample": ("https://huggingface.co/datasets/HuggingFaceFW/fineweb-edu/resolve/main/sample/10BT/000_00000.parquet",
                           "fineweb-edu-sample-000.parquet", "first parquet shard of FineWeb-Edu sample-10BT, ~2 GB"),
}


def cache_dir() -> Path:
    root = os.environ.get("SCRATCHLLM_CACHE") or Path.home() / ".cache" / "scratchllm"
    return Path(root) / "data"


def download(name: str, dest_dir: str | Path | None = None, url: str | None = None, timeout: float = 30.0,
             progress: bool = True) -> Path:
    """Path of corpus `name` in the cache, downloading it first if needed (`url` overrides the source)."""
    # CLI speed: here, not at the top, because `scratchllm --help` lists this module's corpora
    import urllib.error
    import urllib.request
    from urllib.parse import urlparse

    from tqdm import tqdm

    if name not in CORPORA:
        raise UserError(f"unknown corpus '{name}'; choose one of {', '.join(sorted(CORPORA))}")
    default_url, filename, _ = CORPORA[name]
    url = url or default_url
    dest = Path(dest_dir) if dest_dir else cache_dir()
    target = dest / filename
    if target.is_file():
        return target
    dest.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest, prefix=f".{filename}.", suffix=".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, os.fdopen(fd, "wb") as f:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=name, disable=not progress) as bar:
                while chunk := resp.read(1 << 20):
                    f.write(chunk)
                    bar.update(len(chunk))
        os.replace(tmp, target)
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        Path(tmp).unlink(missing_ok=True)
        reason = getattr(e, "reason", None) or e
        raise UserError(f"cannot download '{name}' from {urlparse(url).netloc} ({reason}); check your network, "
                        f"or fetch {url} by hand and pass the file with --input") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def describe() -> str:
    """One line per known corpus, for `--help`."""
    return "; ".join(f"{k}: {v[2]}" for k, v in CORPORA.items())

