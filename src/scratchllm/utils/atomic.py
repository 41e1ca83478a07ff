"""Atomic writes: a crash or Ctrl-C never leaves a half-written file or directory behind.

Files are written to a temporary sibling, flushed to disk, then renamed over the target
(rename is atomic on POSIX). Directories are built under a temporary name and renamed into
place once complete, so a directory that exists under its final name is always whole.
Both get the permissions a plain `open()` / `mkdir()` would give under the process umask
(0644 / 0755 by default), not the 0600 / 0700 of `tempfile`'s private temporaries, so a run
can be shared with another user or mounted into a container.

`named_os_errors(path)` turns what a full or read-only disk raises inside the libraries that
write our files (safetensors' `SafetensorError`, torch.save's `RuntimeError`, a bare
`OSError` without a file name) into an `OSError` that names `path`, which the CLI prints as
one line (`errors.os_error_sentence`).

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> atomic_write_text(d / "a.txt", "hello")
>>> (d / "a.txt").read_text()
'hello'
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import IO, Iterable, Iterator


def _fsync_dir(path: Path) -> None:
    # subtle: the rename itself is only durable once the parent directory is synced.
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def umask() -> int:
    """The process umask (reading it means setting it: put it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# Library messages that carry the OS error underneath, e.g. safetensors' "... (os error 28)".
_OS_ERROR_CODE = re.compile(r"os error (\d+)")


def _underlying_os_error(exc: BaseException) -> OSError | None:
    seen = exc
    while seen is not None:  # torch.save on a file object keeps the OSError as the context
        if isinstance(seen, OSError) and seen.errno:
            return seen
        seen = seen.__cause__ or seen.__context__
    if (m := _OS_ERROR_CODE.search(str(exc))) and int(m.group(1)) in errno.errorcode:
        code = int(m.group(1))
        return OSError(code, os.strerror(code))
    return None


@contextlib.contextmanager
def named_os_errors(path: str | os.PathLike) -> Iterator[None]:
    """Re-raise a disk error of the block (however a library wrapped it) as an OSError naming `path`.

    >>> with named_os_errors("runs/x/model.safetensors"):    # doctest: +ELLIPSIS
    ...     raise RuntimeError("I/O error: No space left on device (os error 28)")
    Traceback (most recent call last):
    ...
    OSError: [Errno 28] No space left on device: 'runs/x/model.safetensors'
    """
    try:
        yield
    except Exception as e:
        found = _underlying_os_error(e)
        if found is None:
            raise
        raise OSError(found.errno, found.strerror, str(path)) from e


@contextlib.contextmanager
def _atomic_file(path: str | os.PathLike, mode: str) -> Iterator[IO]:
    """An open temporary sibling of `path`; renamed over `path` once the block succeeds, else removed.

    A disk error inside is raised as an OSError naming `path` (see `named_os_errors`).
    """
    path = Path(path)
    with named_os_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            os.fchmod(fd, 0o666 & ~umask())  # mkstemp makes 0600; give what open() would
            with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` so that readers see either the old file or the new one."""
    with _atomic_file(path, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 `text` to `path` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> int:
    """Write `rows` as JSON lines (UTF-8, streamed: rows may be a generator) atomically; returns the count.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "rows.jsonl"
    >>> atomic_write_jsonl(p, ({"id": i, "text": "é"} for i in range(2)))
    2
    >>> p.read_text(encoding="utf-8")
    '{"id": 0, "text": "é"}\\n{"id": 1, "text": "é"}\\n'
    """
    n = 0
    with _atomic_file(path, "w") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Build a directory under a temporary name; it appears at `path` only if the block succeeds.

    An existing directory at `path` is replaced only after the new one is complete.

    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_directory(root / "ckpt") as tmp:
    ...     _ = (tmp / "weights.bin").write_bytes(b"1234")
    >>> sorted(p.name for p in (root / "ckpt").iterdir())
    ['weights.bin']
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        os.chmod(tmp, 0o777 & ~umask())  # mkdtemp makes 0700; give what mkdir() would
        yield tmp
        mask = umask()
        for f in tmp.rglob("*"):
            if f.is_file():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
                # subtle: some writers (safetensors) create 0600 files whatever the umask
                os.chmod(f, 0o666 & ~mask)
            elif f.is_dir():
                os.chmod(f, 0o777 & ~mask)
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
