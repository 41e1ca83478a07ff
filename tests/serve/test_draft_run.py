"""`--draft-run`: speculative decoding in serving, for a request that decodes alone.

Oracles: the one-request engine (`inference.engine.generate`, no draft) for greedy output, which
speculation must reproduce token for token; a draft equal to the target, whose every draft must be
kept (acceptance rate 1 in /metrics); a draft with random weights, whose drafts are mostly
rejected and rolled back, yet the output is the same.
"""

from __future__ import annotations

import httpx
import pytest
import torch

import scratchllm
from scratchllm.errors import UserError
from scratchllm.inference.engine import generate
from scratchllm.inference.sampling import SamplingParams
from scratchllm.inference.scheduler import Scheduler
from scratchllm.inference.slots import Request
from scratchllm.model.config import ModelConfig
from scratchllm.model.transformer import Transformer
from scratchllm.serve import create_app
from scratchllm.serve.app import load_served
from scratchllm.train.checkpoint import save_run_weights

from serve_helpers import LiveServer, wait_ready

openai = pytest.importorskip("openai")
PROMPTS = ["import os", "def main(", "The path", "return x"]


@pytest.fixture(scope="module")
def run(run_dir):
    return scratchllm.load(run_dir)


def _random_draft(run, seed: int = 0, vocab: int | None = None) -> Transformer:
    torch.manual_seed(seed)
    cfg = ModelConfig(n_layer=1, n_head=2, n_embd=16, vocab_size=vocab or run.model.config.vocab_size,
                      block_size=run.model.config.block_size)
    return Transformer(cfg).eval()


@pytest.fixture(scope="module")
def draft_dir(tmp_path_factory, run):
    path = tmp_path_factory.mktemp("draft") / "draft"
    save_run_weights(path, _random_draft(run), run.tokenizer)
    return path


def _greedy(run, prompt: str, n: int) -> list[int]:
    ids = run.tokenizer.encode(prompt)
    return list(generate(run.model, ids, max_new_tokens=n, temperature=0, stop_ids=[run.tokenizer.eot_id]))


@pytest.mark.parametrize("which", ["target", "random"])
def test_scheduler_speculation_keeps_greedy_output(run, which):
    draft = run.model if which == "target" else _random_draft(run)
    scheduler = Scheduler(run.model, n_slots=2, vocab_size=run.tokenizer.vocab_size, draft=draft, draft_k=3)
    for prompt in PROMPTS:                      # one at a time: each decodes alone, so speculatively
        handle = scheduler.submit(Request(run.tokenizer.encode(prompt), 20, SamplingParams(temperature=0),
                                          (run.tokenizer.eot_id,)))
        while scheduler.step():
            pass
        assert handle.tokens == _greedy(run, prompt, 20), prompt
    stats = scheduler.speculative_stats()
    assert stats.rounds > 0 and stats.proposed > 0
    if which == "target":
        assert stats.acceptance_rate == 1.0
    else:
        assert stats.accepted < stats.proposed   # drafts were rejected, and their keys rolled back


def test_two_requests_at_once_decode_normally_and_agree(run):
    scheduler = Scheduler(run.model, n_slots=2, vocab_size=run.tokenizer.vocab_size, draft=_random_draft(run))
    handles = [scheduler.submit(Request(run.tokenizer.encode(p), 12 + 4 * i, SamplingParams(temperature=0),
                                        (run.tokenizer.eot_id,))) for i, p in enumerate(PROMPTS[:2])]
    while scheduler.step():                     # together, then the longer one alone: speculative again
        pass
    assert [h.tokens for h in handles] == [_greedy(run, p, 12 + 4 * i) for i, p in enumerate(PROMPTS[:2])]


def test_seeded_sampling_with_a_draft_repeats(run):
    def sample():
        scheduler = Scheduler(run.model, n_slots=1, vocab_size=run.tokenizer.vocab_size, draft=_random_draft(run))
        handle = scheduler.submit(Request(run.tokenizer.encode("import"), 16, SamplingParams(0.9, seed=5)))
        while scheduler.step():
            pass
        return handle.tokens
    first = sample()
    assert len(first) > 0 and sample() == first


def test_live_server_with_a_draft_run(run_dir, draft_dir, run):
    with LiveServer(create_app(run_dir, max_batch=2, draft_run=draft_dir, draft_k=3)) as server:
        with httpx.Client(base_url=server.url) as http:
            wait_ready(http)
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
        for prompt in PROMPTS:
            got = client.completions.create(model="m", prompt=prompt, max_tokens=16, temperature=0)
            assert got.choices[0].text == run.tokenizer.decode(_greedy(run, prompt, 16))
        metrics = httpx.get(server.url + "/metrics").text
    rate = [line for line in metrics.splitlines() if line.startswith("scratchllm_speculative_acceptance_rate")]
    proposed = [line for line in metrics.splitlines() if line.startswith("scratchllm_speculative_proposed")]
    assert rate and 0.0 <= float(rate[0].split()[-1]) <= 1.0 and float(proposed[0].split()[-1]) > 0


def test_a_draft_with_another_vocabulary_is_refused_at_start(tmp_path, run_dir, run):
    other = tmp_path / "other"
    save_run_weights(other, _random_draft(run, vocab=run.model.config.vocab_size + 8), run.tokenizer)
    with pytest.raises(UserError, match="another tokenizer or vocabulary"):
        load_served(run_dir, draft_run=other)
