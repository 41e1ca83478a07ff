"""The chat page in headless Chromium against a live server: it loads with no console errors, sends a
message (the page's ?q= link) and shows the streamed reply; a screenshot is kept for docs/.

The page is driven through the DevTools protocol (tests/devtools.py) and waited on in real time
until the reply has finished streaming, so a slow, loaded machine only makes the test slower.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import quote

import pytest

from devtools import Browser

pytestmark = pytest.mark.skipif(shutil.which("chromium") is None and not os.environ.get("CI"),
                                reason="no chromium here (apt-get install -y chromium); CI installs it")

# The page adds the assistant message and disables Send when it sends, and enables Send again once
# the stream has ended (or failed, when the message turns into "msg error").
FINISHED = ("document.querySelector('.msg.assistant, .msg.error') !== null"
            " && !document.getElementById('send').disabled")


def _ask(browser: Browser, url: str, question: str) -> dict:
    browser.call("Page.navigate", url=f"{url}/?q={quote(question)}")
    browser.wait_for(FINISHED, timeout=120)
    return browser.eval("""(() => ({
        user: [...document.querySelectorAll('.msg.user .text')].map(e => e.textContent),
        reply: [...document.querySelectorAll('.msg.assistant .text')].map(e => e.textContent),
        errors: [...document.querySelectorAll('.msg.error .text')].map(e => e.textContent),
        stats: document.getElementById('stats').textContent }))()""")


def test_the_page_streams_a_reply_with_no_console_errors(live):
    browser = Browser()
    try:
        # A sampled reply from the tiny model can open with its stop token: up to 5 loads.
        for _ in range(5):
            page = _ask(browser, live.url, "hello there")
            assert page["user"] == ["hello there"] and page["errors"] == [], page
            if page["reply"] != [""]:
                break
        assert len(page["reply"]) == 1 and page["reply"][0], f"no streamed reply in the page in 5 loads: {page}"
        tokens, speed = (part.split(": ")[1] for part in page["stats"].split(" · "))
        assert int(tokens) >= 1 and float(speed.removesuffix(" tok/s")) > 0, page["stats"]
        assert browser.errors == []
    finally:
        browser.close()


def test_a_screenshot_of_the_page(live, tmp_path):
    browser = Browser()
    try:
        _ask(browser, live.url, "def fibonacci(n):")
        shot = tmp_path / "chat.png"
        assert len(browser.screenshot(shot)) > 10_000
        assert browser.errors == []
    finally:
        browser.close()
    if os.environ.get("SCRATCHLLM_KEEP_SCREENSHOT"):        # refresh docs/serve_chat_page.png by hand
        shutil.copy(shot, Path(__file__).parents[2] / "docs" / "serve_chat_page.png")
