"""The chat page in headless Chromium against a live server: it loads with no console errors, sends a
message (the page's ?q= link) and shows the streamed reply; a screenshot is kept for docs/.

Chromium's own `--headless --dump-dom` runs the page's JavaScript until `--virtual-time-budget`
is spent (waiting on the network meanwhile) and prints the DOM as it then is; with
`--enable-logging=stderr` it prints every console message, so an error there fails the test.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]

pytestmark = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                                reason="no chromium here (apt-get install -y chromium); CI installs it")


def _chromium(args: list[str], home: Path) -> subprocess.CompletedProcess:
    assert CHROMIUM, "CI must have chromium (.ci/run installs it)"
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={home}", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "HOME": str(home)})


def test_the_page_streams_a_reply_with_no_console_errors(live, tmp_path):
    url = f"{live.url}/?q={quote('hello there')}"
    # Virtual time can run out before the first streamed piece on a loaded machine (or a sampled
    # reply can open with a stop token): up to 5 loads, each checked for console errors.
    for attempt in range(5):
        got = _chromium(["--enable-logging=stderr", "--v=0", "--virtual-time-budget=30000", "--dump-dom", url],
                        tmp_path / str(attempt))
        assert got.returncode == 0, got.stderr[-2000:]
        console = [line for line in got.stderr.splitlines() if "CONSOLE" in line]
        assert not [line for line in console if re.search(r"error|uncaught", line, re.I)], console
        dom = got.stdout
        assert '<div class="msg user"><span class="role">user</span><span class="text">hello there</span></div>' in dom
        reply = re.search(r'<div class="msg assistant"><span class="role">assistant</span>'
                          r'<span class="text">(.*?)</span>', dom, re.S)
        assert reply, "the page shows no assistant message"
        if reply.group(1):
            break
    assert reply.group(1), "no streamed reply in the page in 5 loads"
    assert re.search(r"tokens: [1-9]\d* · speed: [\d.]+ tok/s", dom)


def test_a_screenshot_of_the_page(live, tmp_path):
    shot = tmp_path / "chat.png"
    got = _chromium(["--window-size=1100,700", "--virtual-time-budget=20000", f"--screenshot={shot}",
                     f"{live.url}/?q={quote('def fibonacci(n):')}"], tmp_path)
    assert got.returncode == 0 and shot.stat().st_size > 10_000, got.stderr[-2000:]
    if os.environ.get("SCRATCHLLM_KEEP_SCREENSHOT"):        # refresh docs/serve_chat_page.png by hand
        shutil.copy(shot, Path(__file__).parents[2] / "docs" / "serve_chat_page.png")
