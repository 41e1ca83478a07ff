"""`speedrun --serve`: start `scratchllm serve` on the result, and say it is up only once /health answers.

The server runs as a child process (the same command a user would type), so the speedrun's own
memory (training state, data) is gone before it loads the model. This module waits until
`GET /health` returns 200 (or the child exits, or `timeout` passes: then it stops the child and
says why), then prints the address and waits; Ctrl-C stops the server.

>>> health_ok("http://127.0.0.1:9", timeout=0.2)   # nothing listens on the discard port
False
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from scratchllm.errors import UserError

STARTUP_TIMEOUT_S = 120.0   # loading a 124M model and warming the engine up takes seconds; a cold disk more


def health_ok(url: str, timeout: float = 2.0) -> bool:
    """Whether `url`/health answers 200."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


def start_server(run: Path, port: int, host: str = "127.0.0.1", timeout: float = STARTUP_TIMEOUT_S) -> subprocess.Popen:
    """The running `scratchllm serve --run RUN` child, once its /health answers; raises UserError if it does not."""
    child = subprocess.Popen([sys.executable, "-m", "scratchllm", "serve", "--run", str(run), "--host", host,
                              "--port", str(port)])
    url, deadline = f"http://{host}:{port}", time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise UserError(f"scratchllm serve exited with status {child.returncode} before answering /health "
                            f"(its error is above); fix that and run `scratchllm serve --run {run} --port {port}`")
        if health_ok(url):
            return child
        time.sleep(0.5)
    child.terminate()
    child.wait(timeout=15)
    raise UserError(f"scratchllm serve did not answer {url}/health within {timeout:.0f} s; is port {port} free? "
                    "pass another --port")


def serve_until_stopped(run: Path, port: int) -> int:
    """Serve `run` on `port` until Ctrl-C (or the server exits); returns the server's exit status."""
    child = start_server(run, port)
    print(f"healthy: http://127.0.0.1:{port}/health answers; chat page http://127.0.0.1:{port}/ (Ctrl-C stops it)",
          flush=True)
    try:
        return child.wait()
    except KeyboardInterrupt:
        child.terminate()   # uvicorn finishes running requests, then exits
        child.wait(timeout=30)
        return 0
