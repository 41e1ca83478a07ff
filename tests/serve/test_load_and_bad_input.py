"""The door rules on a live server: 429 past the queue, 401, 4xx (never 5xx) for bad bodies, cancel on
disconnect, timeouts, /ready before and after warm-up.

The scheduler's step is wrapped by a gate (an Event) and a delay, so that "the queue is full" and
"the request is still running" are states the test holds, not races it hopes to win.
"""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from fastapi.testclient import TestClient
from serve_helpers import LiveServer, wait_ready

from scratchllm.serve import build_app
from scratchllm.serve.app import load_served


class Gated:
    """A served model whose scheduler steps only while `gate` is set, `delay` seconds a step; keeps the handles."""

    def __init__(self, run_dir, delay: float = 0.0, **kw):
        self.served = load_served(run_dir, **kw)
        self.gate, self.handles = threading.Event(), []
        scheduler = self.served.scheduler
        step, submit = scheduler.step, scheduler.submit

        def gated_step():
            self.gate.wait()
            time.sleep(delay)
            return step()

        def recording_submit(*a, **k):
            handle = submit(*a, **k)
            self.handles.append(handle)
            return handle
        scheduler.step, scheduler.submit = gated_step, recording_submit
        self.gate.set()


def _body(**kw):
    return {"prompt": "import os", "max_tokens": 40, "temperature": 0, **kw}


def test_a_full_queue_answers_429_with_retry_after(run_dir):
    gated = Gated(run_dir, n_slots=1, max_queue=2)
    with LiveServer(build_app(gated.served)) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        wait_ready(http)
        gated.gate.clear()                         # nothing is admitted: requests pile up in the queue
        waiting = [threading.Thread(target=http.post, args=("/v1/completions",), kwargs={"json": _body()})
                   for _ in range(2)]
        for t in waiting:
            t.start()
        deadline = time.time() + 10
        while gated.served.scheduler.pending() < 2:
            assert time.time() < deadline
            time.sleep(0.01)
        refused = http.post("/v1/completions", json=_body())
        assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
        assert refused.json()["error"]["code"] == "queue_full"
        gated.gate.set()
        for t in waiting:
            t.join(30)
        assert http.post("/v1/completions", json=_body()).status_code == 200   # room again


def test_client_disconnect_cancels_the_request_and_frees_its_slot(run_dir):
    gated = Gated(run_dir, delay=0.05, n_slots=1, max_queue=4)
    with LiveServer(build_app(gated.served)) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        wait_ready(http)
        with http.stream("POST", "/v1/completions", json=_body(stream=True)) as response:
            next(response.iter_lines())           # the first event has come: the request runs
        deadline = time.time() + 10
        while gated.served.scheduler.pending():
            assert time.time() < deadline, "the abandoned request still holds its slot"
            time.sleep(0.02)
        assert gated.handles[-1].finish_reason == "cancelled"
        assert len(gated.handles[-1].tokens) < 40


def test_a_request_past_its_timeout_ends_with_what_it_has(run_dir):
    gated = Gated(run_dir, delay=0.05, n_slots=1, timeout_s=0.5)
    with LiveServer(build_app(gated.served)) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        wait_ready(http)
        got = http.post("/v1/completions", json=_body()).json()
        assert got["choices"][0]["finish_reason"] == "length" and got["usage"]["completion_tokens"] < 40


def test_ready_only_after_warm_up_and_health_always(run_dir):
    served = load_served(run_dir)
    app = build_app(served)
    http = TestClient(app)          # outside `with`: the lifespan (start, warm-up) has not run
    assert http.get("/health").json() == {"status": "ok"}
    assert http.get("/ready").status_code == 503
    with LiveServer(app) as server, httpx.Client(base_url=server.url) as http:
        wait_ready(http)
        assert http.get("/ready").json()["status"] == "ready"


@pytest.fixture(scope="module")
def keyed(run_dir):
    with LiveServer(build_app(load_served(run_dir), api_key="s3cret", max_body_bytes=2000)) as server:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            wait_ready(http)
            yield http


AUTH = {"Authorization": "Bearer s3cret"}


def test_api_key_is_required_for_the_api_but_not_for_health(keyed):
    assert keyed.post("/v1/completions", json=_body()).status_code == 401
    wrong = keyed.post("/v1/completions", json=_body(), headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json()["error"]["type"] == "authentication_error"
    assert keyed.post("/v1/completions", json=_body(), headers=AUTH).status_code == 200
    assert keyed.get("/health").status_code == 200 and keyed.get("/").status_code == 200


@pytest.mark.parametrize("body, status, fragment", [
    (b"{not json", 400, ""),
    (b'{"prompt": "x", "max_tokens": "many"}', 400, "max_tokens"),
    (b'{"prompt": "x", "temperature": -1}', 400, "temperature"),
    (b'{"max_tokens": 3}', 400, "prompt"),
    (b'{"prompt": [1, 2, 99999]}', 400, "outside the vocabulary"),
    (b'{"prompt": []}', 400, "empty"),
    (b'{"prompt": "' + b"word " * 100 + b'"}', 400, "block_size=64"),
    (b'{"prompt": "' + b"x" * 3000 + b'"}', 413, "larger than 2000 bytes"),
    (b'[1, 2]', 400, ""),
])
def test_bad_bodies_get_openai_errors_never_5xx(keyed, body, status, fragment):
    got = keyed.post("/v1/completions", content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert got.status_code == status, got.text
    error = got.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and fragment in error["message"]


def test_chat_on_a_base_run_says_it_needs_a_fine_tuned_run(keyed):
    got = keyed.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]}, headers=AUTH)
    assert got.status_code == 400 and "fine-tuned" in got.json()["error"]["message"]
    bad_role = keyed.post("/v1/chat/completions", json={"messages": [{"role": "robot", "content": "hi"}]},
                          headers=AUTH)
    assert bad_role.status_code == 400 and bad_role.json()["error"]["param"].startswith("messages")


def test_cors_is_off_unless_asked(keyed, run_dir):
    preflight = {"Origin": "http://elsewhere.example", "Access-Control-Request-Method": "POST"}
    assert "access-control-allow-origin" not in keyed.options("/v1/completions", headers=preflight).headers
    app = build_app(load_served(run_dir), cors_origins=["http://elsewhere.example"])
    got = TestClient(app).options("/v1/completions", headers=preflight)
    assert got.headers["access-control-allow-origin"] == "http://elsewhere.example"
