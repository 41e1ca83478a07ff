"""`--endpoint`: the harness against a tiny OpenAI-compatible server started here on 127.0.0.1,
backed by our tiny model, gives the same log-likelihoods and generations as the run itself;
a failing server is retried a bounded number of times, then one clear error."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch
import torch.nn.functional as F
from eval_helpers import make_run, mc_rows, write_jsonl

from scratchllm import load
from scratchllm.cli import main
from scratchllm.errors import UserError
from scratchllm.eval.endpoint import EndpointLM
from scratchllm.eval.lm import LocalLM


def _completion(lm: LocalLM, body: dict) -> dict:
    """What an OpenAI /v1/completions server answers, computed with our model."""
    ids = lm.encode(body["prompt"])
    if body.get("echo"):
        with torch.no_grad():
            logp = F.log_softmax(lm.model(torch.tensor([ids])), -1)[0]
        pieces = [lm.tokenizer.decode([i]) for i in ids]
        offsets = [len(lm.tokenizer.decode(ids[:i])) for i in range(len(ids))]
        lps = [None] + [logp[i - 1, ids[i]].item() for i in range(1, len(ids))]
        real = logp[:, :lm.tokenizer.vocab_size]   # the model's table is padded past the vocabulary
        tops = [None] + [{lm.tokenizer.decode([int(real[i - 1].argmax())]): real[i - 1].max().item()}
                         for i in range(1, len(ids))]
        logprobs = {"tokens": pieces, "token_logprobs": lps, "text_offset": offsets, "top_logprobs": tops}
        return {"choices": [{"text": body["prompt"], "logprobs": logprobs}]}
    text = lm.generate([body["prompt"]], body.get("stop", []), body["max_tokens"], 0.0)[0]
    return {"choices": [{"text": text}]}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    lm = LocalLM(load(make_run(tmp_path_factory.mktemp("ep") / "run", block_size=128)))
    state = {"fail_next": 0, "requests": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            state["requests"] += 1
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if state["fail_next"]:
                state["fail_next"] -= 1
                self.send_response(503)
                self.end_headers()
                return
            data = json.dumps(_completion(lm, body)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield lm, f"http://127.0.0.1:{server.server_address[1]}", state
    server.shutdown()


def test_loglikelihoods_through_the_endpoint_equal_the_runs(served):
    lm, url, _ = served
    ep = EndpointLM(url, "tiny")
    pairs = [(r["query"], " " + c) for r in mc_rows(8, 3, seed=4) for c in r["choices"]]
    for (ll, greedy), (want, want_greedy) in zip(ep.loglikelihood(pairs), lm.loglikelihood(pairs)):
        assert ll == pytest.approx(want, abs=1e-4) and greedy == want_greedy


def test_generation_through_the_endpoint_equals_the_runs(served):
    lm, url, _ = served
    prompts = ["the cat sat", "Question: 2+2?\nAnswer:"]
    assert EndpointLM(url, "tiny").generate(prompts, ["\n"], 20) == lm.generate(prompts, ["\n"], 20)


def test_server_errors_are_retried_then_succeed(served):
    lm, url, state = served
    state["fail_next"], before = 2, state["requests"]
    assert EndpointLM(url, "tiny", retries=3, backoff=0.01).generate(["hi"], [], 5)
    assert state["requests"] - before == 3


def test_unreachable_endpoint_is_one_clear_error_after_bounded_retries():
    with socket.socket() as s:   # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(UserError, match="after 2 attempt"):
        EndpointLM(f"http://127.0.0.1:{port}", "m", retries=2, backoff=0.01, timeout=1).generate(["x"], [])


def test_cli_evaluates_an_endpoint(served, tmp_path):
    _, url, _ = served
    quiz = write_jsonl(tmp_path / "quiz.jsonl", mc_rows(4, 2, 3))
    facts = write_jsonl(tmp_path / "facts.jsonl", [{"prompt": "2+2=", "answer": "4"}])
    out = tmp_path / "out"
    assert main(["eval", "--endpoint", url, "--model", "tiny", "--tasks", f"{quiz},{facts}", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results["tasks"]) == {"quiz", "facts"} and "tiny @" in results["model"]
