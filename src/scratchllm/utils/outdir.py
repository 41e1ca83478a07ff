"""Output directories: never write over what a command did not make, never leave a failed attempt behind.

Every command that writes a run or an output directory (train, speedrun, charlm train,
import hf, export hf, data prepare; finetune, quantize, eval ... as they come) calls
`check_output_dir` before it reads any data, and runs its work inside `removed_on_failure`:

- `check_output_dir(path, owned, force=...)`: a missing or empty directory is fine; a
  directory whose entries all match `owned` (the names this command itself writes: an earlier
  attempt of it, or the run being resumed) is fine; anything else (a file in the way, an HF
  export, someone's notes) is one `UserError` naming the first stranger and `--force`. A
  location that cannot be written (read-only disk, no permission) is refused here too, before
  minutes of work. What "already holds a finished run" means is the caller's business (train
  refuses it without --resume); this module knows nothing of runs, checkpoints or shards.
- `removed_on_failure(path, keep=...)`: when the block raises an `Exception`, the entries the
  attempt created are removed (and the directory, if the attempt created it), unless `keep(path)`
  says the directory now holds something worth keeping (a checkpoint). Ctrl-C is not a failure:
  what exists stays, so the same command can continue.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "notes.txt").write_text("mine")
>>> check_output_dir(d, owned=("config.toml", "checkpoints"))  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
scratchllm.errors.UserError: --out '...' already holds 'notes.txt', which this command did not write; choose an empty or new directory, or pass --force to write into it anyway
>>> check_output_dir(d, owned=("*.txt",)) == d
True
>>> with contextlib.suppress(ValueError), removed_on_failure(d / "run"):
...     _ = (d / "run").mkdir()
...     raise ValueError("the attempt failed")
>>> (d / "run").exists()
False
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import shutil
from pathlib import Path
from typing import Callable, Iterable, Iterator

from scratchllm.errors import UserError

# The hidden temporaries utils/atomic.py leaves while it writes (.NAME.XXXX.tmp, .NAME.old).
OWN_TEMPORARIES = (".*.tmp", ".*.old")


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def foreign_entries(path: str | os.PathLike, owned: Iterable[str] = ()) -> list[str]:
    """Names in directory `path` that match none of the glob patterns `owned` (sorted; [] if absent)."""
    path = Path(path)
    if not path.is_dir():
        return []
    patterns = (*owned, *OWN_TEMPORARIES)
    return sorted(p.name for p in path.iterdir() if not any(fnmatch.fnmatchcase(p.name, pat) for pat in patterns))


def check_output_dir(path: str | os.PathLike, owned: Iterable[str] = (), *, force: bool = False,
                     option: str = "--out") -> Path:
    """Refuse `path` as an output directory if it holds entries this command did not write (see module doc).

    `owned`: glob patterns of the names the command writes there; `force`: the user's `--force`;
    `option`: the flag that named the path, for the message. Returns `path` as a Path.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{option} '{path}' is a file, not a directory; choose a directory path")
    strangers = foreign_entries(path, owned)
    if strangers and not force:
        more = f" (and {len(strangers) - 1} more)" if len(strangers) > 1 else ""
        raise UserError(f"{option} '{path}' already holds '{strangers[0]}'{more}, which this command did not write; "
                        "choose an empty or new directory, or pass --force to write into it anyway")
    base = _nearest_existing(path.absolute())
    if not base.is_dir():
        raise UserError(f"{option} '{path}' cannot be created: '{base}' is a file; choose another location")
    # subtle: os.access sees read-only mounts even for root (EROFS), which a chmod-based check would miss.
    if not os.access(base, os.W_OK | os.X_OK):
        why = "is on a read-only file system" if _read_only(base) else "is not writable by this user"
        raise UserError(f"{option} '{path}' cannot be written: '{base}' {why}; choose a writable location")
    return path


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


@contextlib.contextmanager
def removed_on_failure(path: str | os.PathLike, keep: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """Run the block; if it raises an Exception, remove what it created in `path` (see module doc)."""
    path = Path(path)
    existed = path.is_dir()
    before = set(os.listdir(path)) if existed else set()
    try:
        yield path
    except Exception:
        if path.is_dir() and not (keep and keep(path)):
            if not existed:
                shutil.rmtree(path, ignore_errors=True)
            else:
                for name in set(os.listdir(path)) - before:
                    target = path / name
                    if target.is_dir() and not target.is_symlink():
                        shutil.rmtree(target, ignore_errors=True)
                    else:
                        target.unlink(missing_ok=True)
        raise
