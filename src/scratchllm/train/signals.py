"""Stop requests: SIGINT (Ctrl-C) and SIGTERM (a scheduler's stop, `kill`) ask the loop to save and stop.

Inside `with StopOnSignal() as stop:` the first such signal only sets `stop.requested`; the loop
finishes its step, saves a checkpoint and returns, so the same command with `--resume` continues.
A second signal of the same kind gets the default behaviour (Ctrl-C raises, SIGTERM kills).
Outside the main thread (where Python cannot install handlers) it does nothing. It knows nothing
of training.

>>> import os, signal
>>> with StopOnSignal() as stop:
...     os.kill(os.getpid(), signal.SIGTERM)
<BLANKLINE>
SIGTERM: saving a checkpoint after this step (SIGTERM again to abort)
>>> stop.requested
True
"""

from __future__ import annotations

import signal
import threading
from typing import Any

from tqdm import tqdm


class StopOnSignal:
    """First Ctrl-C (SIGINT) or SIGTERM (a scheduler's stop, `kill`) asks the loop to save and stop
    after the current step; a second one of the same kind kills."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.requested = False
        self._old: dict[int, Any] = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}
        return self

    def _handle(self, signum, frame):
        self.requested = True
        signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)
        name = signal.Signals(signum).name
        tqdm.write(f"\n{name}: saving a checkpoint after this step ({name} again to abort)")

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
