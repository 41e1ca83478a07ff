"""The API through the official `openai` client against a live server: shapes, greedy parity, concurrency.

Oracles: `scratchllm generate --temperature 0` (the CLI) for completions, the one-request engine
(`inference.engine.generate`, no batching) for 32 concurrent streams, `ChatSession` for chat,
and a direct forward + log_softmax for log-probs.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import torch

import scratchllm
from scratchllm.cli import main
from scratchllm.inference.chat import ChatSession
from scratchllm.inference.engine import generate

openai = pytest.importorskip("openai")

PROMPTS = ["import os", "def main(", "The path", "x = 1", "return", "class A:", "if not", "# A"]


@pytest.fixture(scope="module")
def client(live):
    return openai.OpenAI(base_url=live.url + "/v1", api_key="unused", max_retries=0)


@pytest.fixture(scope="module")
def run(run_dir):
    return scratchllm.load(run_dir)


def test_models_lists_the_run(client, run_dir):
    models = client.models.list().data
    assert [m.id for m in models] == [run_dir.name]


def test_greedy_completion_equals_the_generate_command(client, run_dir, capsys):
    capsys.readouterr()
    assert main(["generate", "--run", str(run_dir), "--prompt", "import os", "--temperature", "0",
                 "--max-new-tokens", "12", "--no-echo"]) == 0
    expected = capsys.readouterr().out[:-1]          # the command ends with a newline
    got = client.completions.create(model="m", prompt="import os", max_tokens=12, temperature=0)
    assert got.choices[0].text == expected
    assert got.usage.completion_tokens <= 12 and got.object == "text_completion"


def test_streamed_completion_joins_to_the_whole_one(client):
    whole = client.completions.create(model="m", prompt="def f(", max_tokens=10, temperature=0)
    pieces = list(client.completions.create(model="m", prompt="def f(", max_tokens=10, temperature=0, stream=True))
    assert "".join(c.choices[0].text for c in pieces) == whole.choices[0].text
    assert pieces[-1].choices[0].finish_reason == whole.choices[0].finish_reason


def test_prompt_forms_and_n(client, run):
    ids = run.tokenizer.encode("import os")
    by_text = client.completions.create(model="m", prompt="import os", max_tokens=5, temperature=0)
    batch = client.completions.create(model="m", prompt=[ids, ids[:1]], max_tokens=5, temperature=0, n=2)
    assert [c.index for c in batch.choices] == [0, 1, 2, 3]
    assert batch.choices[0].text == batch.choices[1].text == by_text.choices[0].text
    assert batch.usage.prompt_tokens == len(ids) + 1
    texts = client.completions.create(model="m", prompt=["import os", "x"], max_tokens=5, temperature=0)
    assert texts.choices[0].text == by_text.choices[0].text


def test_echo_logprobs_score_the_prompt_like_a_forward(client, run):
    """lm-evaluation-harness's likelihood request: echo + logprobs + max_tokens 1, token ids in."""
    ids = run.tokenizer.encode("import os\nimport sys")
    got = client.completions.create(model="m", prompt=ids, max_tokens=1, temperature=0, echo=True, logprobs=2)
    lp = got.choices[0].logprobs
    with torch.no_grad():
        full = ids + [int(run.model(torch.tensor([ids]))[0, -1].argmax())]
        expected = run.model(torch.tensor([full]))[0].log_softmax(-1)
    assert lp.token_logprobs[0] is None and lp.top_logprobs[0] is None
    for pos in range(1, len(full)):
        assert lp.token_logprobs[pos] == pytest.approx(float(expected[pos - 1, full[pos]]), abs=1e-4)
        assert len(lp.top_logprobs[pos]) == 2
        assert max(lp.top_logprobs[pos].values()) == pytest.approx(float(expected[pos - 1].max()), abs=1e-4)
    assert "".join(lp.tokens) == got.choices[0].text
    assert lp.text_offset == [sum(len(t) for t in lp.tokens[:i]) for i in range(len(lp.tokens))]


def test_max_tokens_zero_with_echo_scores_only_the_prompt(client, run):
    ids = run.tokenizer.encode("x = 1")
    got = client.completions.create(model="m", prompt=ids, max_tokens=0, echo=True, logprobs=0)
    assert len(got.choices[0].logprobs.token_logprobs) == len(ids)
    assert got.usage.completion_tokens == 0 and got.choices[0].text == run.tokenizer.decode(ids)


def test_stop_string_ends_the_text_before_it(client):
    whole = client.completions.create(model="m", prompt="import os", max_tokens=20, temperature=0).choices[0].text
    stop = whole[3:5]
    cut = client.completions.create(model="m", prompt="import os", max_tokens=20, temperature=0, stop=[stop])
    assert cut.choices[0].text == whole[:whole.index(stop)] and cut.choices[0].finish_reason == "stop"


def test_chat_equals_a_chat_session(client, run):
    session = ChatSession(run.model, run.tokenizer, system="Be brief.", max_new_tokens=12, temperature=0)
    expected = "".join(session.send("hello"))
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"}]
    got = client.chat.completions.create(model="m", messages=messages, max_tokens=12, temperature=0, logprobs=True,
                                         top_logprobs=1)
    assert got.choices[0].message.content == expected and got.choices[0].message.role == "assistant"
    assert len(got.choices[0].logprobs.content) == got.usage.completion_tokens
    stream = client.chat.completions.create(model="m", messages=messages, max_completion_tokens=12, temperature=0,
                                            stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream) == expected


def test_32_concurrent_streams_each_equal_their_sequential_greedy_result(live, run):
    prompts = [PROMPTS[i % len(PROMPTS)] + " " * (i // len(PROMPTS)) for i in range(32)]
    expected = []
    for p in prompts:
        ids = run.tokenizer.encode(p)
        out = list(generate(run.model, ids, max_new_tokens=16, temperature=0, stop_ids=[run.tokenizer.eot_id]))
        expected.append(run.tokenizer.decode(out))
    client = openai.OpenAI(base_url=live.url + "/v1", api_key="unused", max_retries=0)

    def one(prompt):
        stream = client.completions.create(model="m", prompt=prompt, max_tokens=16, temperature=0, stream=True)
        return "".join(c.choices[0].text for c in stream)
    with ThreadPoolExecutor(32) as pool:
        got = list(pool.map(one, prompts))
    assert got == expected


def test_tokenize_round_trip(live, run):
    with httpx.Client(base_url=live.url) as http:
        ids = http.post("/tokenize", json={"prompt": "import os"}).json()["tokens"]
        assert ids == run.tokenizer.encode("import os")
        assert http.post("/detokenize", json={"tokens": ids}).json()["prompt"] == "import os"


def test_metrics_count_requests_and_tokens(live, client):
    client.completions.create(model="m", prompt="x", max_tokens=3, temperature=0)
    text = httpx.get(live.url + "/metrics").text
    assert 'scratchllm_requests_total{route="/v1/completions",status="200"}' in text
    completion = [line for line in text.splitlines() if line.startswith("scratchllm_completion_tokens_total")]
    assert float(completion[0].split()[-1]) >= 3
    assert "scratchllm_time_to_first_token_seconds_bucket" in text and "scratchllm_batch_occupancy" in text
