"""The project's reporter for warnings and errors: one line each on stderr, between progress bars.

Library code warns the Python way (`warnings.warn`), so callers can filter or silence it. The
command line wraps every command in `warnings_as_lines()`, which prints each warning as one
line through `warn` instead of Python's two-line `file.py:73: UserWarning: ...` with the
source line under it. Python's own once-per-place filtering still applies (a corpus read twice
warns once). `warn` writes through tqdm so an active bar is redrawn below the line, not broken;
before the CLI prints an error, `close_progress_bars` finishes the bars a failed stage left open.

>>> import contextlib, sys, warnings
>>> with contextlib.redirect_stderr(sys.stdout), warnings_as_lines():
...     warnings.warn("3 bytes of 'a.txt' are not UTF-8")
warning: 3 bytes of 'a.txt' are not UTF-8
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from typing import Iterator

from tqdm import tqdm


def close_progress_bars() -> None:
    """Finish every open tqdm bar, so what follows (an error line) starts on a line of its own."""
    # subtle: a stage that raised leaves its bar open, mid-line; tqdm keeps the live bars in _instances.
    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()


def warn(message: str) -> None:
    """Print `warning: MESSAGE` as one line on stderr (newlines folded into spaces)."""
    tqdm.write("warning: " + " ".join(str(message).split()), file=sys.stderr)


@contextlib.contextmanager
def warnings_as_lines() -> Iterator[None]:
    """Within the block, every shown warning goes through `warn` (one line, no source excerpt)."""
    def show(message, category, filename, lineno, file=None, line=None):
        warn(message)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield
