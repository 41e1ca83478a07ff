"""The playground: its JSON API (through FastAPI's TestClient) and its page in headless Chromium
(loads with no console errors, typing updates the tokens, the heat map is drawn)."""

from __future__ import annotations

import os
import shutil

import pytest
import torch
from fastapi import FastAPI
from fastapi.testclient import TestClient
from viz_world import byte_tokenizer, pixel_std, tiny_run

from scratchllm.errors import UserError
from scratchllm.train.checkpoint import load_run
from scratchllm.viz.logit_lens import lens_probs
from scratchllm.viz.playground import playground_router


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("pg")
    return {"base": load_run(tiny_run(root, "base", seed=0)), "chat": load_run(tiny_run(root, "chat", seed=1))}


@pytest.fixture(scope="module")
def app(runs):
    app = FastAPI()
    app.include_router(playground_router(runs), prefix="/playground")
    return app


def test_api(app, runs):
    client = TestClient(app)
    assert "<textarea" in client.get("/playground/").text
    assert [r["name"] for r in client.get("/playground/api/runs").json()] == ["base", "chat"]
    tokens = client.post("/playground/api/tokenize", json={"run": "base", "text": "hello"}).json()["tokens"]
    assert [t["id"] for t in tokens] == byte_tokenizer().encode("hello")
    greedy = client.post("/playground/api/next", json={"run": "base", "text": "hello", "temperature": 0}).json()
    with torch.no_grad():
        logits = runs["base"].model(torch.tensor([byte_tokenizer().encode("hello")]))[0, -1]
    assert greedy["sampled"]["id"] == int(logits.argmax()) and greedy["top"][0]["p"] == 1.0
    top_k = client.post("/playground/api/next", json={"run": "base", "text": "hello", "top_k": 3, "k": 10}).json()
    assert sum(t["p"] > 0 for t in top_k["top"]) == 3
    assert sum(t["p"] for t in top_k["top"]) == pytest.approx(1.0, abs=1e-5)
    att = client.post("/playground/api/attention", json={"run": "chat", "text": "hello", "layer": 1, "head": 1}).json()
    assert len(att["weights"]) == 3 and att["weights"][0][1] == 0
    lens = client.post("/playground/api/lens", json={"run": "base", "text": "hello"}).json()
    expected = lens_probs(runs["base"].model, byte_tokenizer().encode("hello"))
    assert lens["final_prob"][-1] == pytest.approx(expected[-1].max(-1).values.tolist(), abs=1e-6)
    assert len(lens["top"]) == runs["base"].model.config.n_layer + 1
    bad = client.post("/playground/api/attention", json={"run": "base", "text": "hi", "layer": 9})
    assert bad.status_code == 400 and "--layer 9 is out of range" in bad.json()["detail"]
    long = client.post("/playground/api/next", json={"run": "base", "text": "x" * 100})
    assert long.status_code == 400 and "context" in long.json()["detail"]
    assert client.post("/playground/api/tokenize", json={"run": "nope", "text": "x"}).status_code == 404


def test_a_run_without_a_tokenizer_is_refused(tmp_path):
    with pytest.raises(UserError, match="no tokenizer.json"):
        playground_router({"r": load_run(tiny_run(tmp_path, tokenizer=False))})


# On CI (.ci/run installs chromium) a missing browser fails the test instead of skipping it.
@pytest.mark.skipif(shutil.which("chromium") is None and not os.environ.get("CI"),
                    reason="needs Debian's chromium (apt-get install chromium)")
def test_page_in_headless_chromium(app, tmp_path):
    from devtools import Browser, free_port, serve

    port = free_port()
    server = serve(app, port)
    browser = Browser()
    try:
        browser.call("Page.navigate", url=f"http://127.0.0.1:{port}/playground/")
        browser.wait_for("document.body.dataset.ready === '1'")
        before = browser.eval("document.querySelector('#col-base .tokens').textContent")
        assert "tokens" in before
        browser.eval("document.getElementById('text').focus(); "
                     "document.getElementById('text').setSelectionRange(1e6, 1e6)")
        browser.type(" hello")
        browser.wait_for(f"document.querySelector('#col-base .tokens').textContent !== {before!r}")
        n_tokens = browser.eval("document.querySelectorAll('#col-base .tokens .tok').length")
        assert n_tokens == len(byte_tokenizer().encode("Once upon a time hello"))
        # the heat map: the attention canvas holds pixels of more than one colour
        coloured = browser.eval("""(() => { const c = document.querySelector('#col-chat canvas.attention');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; const seen = new Set();
            for (let i = 0; i < d.length; i += 4) seen.add(d[i] + ',' + d[i + 1] + ',' + d[i + 2]);
            return seen.size; })()""")
        assert coloured > 5
        browser.eval("document.querySelector('#col-base button.step').click()")
        browser.wait_for(f"document.querySelectorAll('#col-base .tokens .tok').length > {n_tokens}")
        assert pixel_std(browser.screenshot(tmp_path / "playground.png")) > 5
        assert browser.errors == []
    finally:
        browser.close()
        server.should_exit = True
