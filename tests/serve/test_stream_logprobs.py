"""Log-probs on streams, read with the official `openai` SDK from a live server, in OpenAI's chunk shapes.

Oracle: a plain forward + log_softmax over prompt + completion (the same numbers the whole,
unstreamed reply reports). A stream's log-probs come from the decode step itself (the batched
KV-cache forward), so they agree to float noise, not bit for bit.
"""

from __future__ import annotations

import pytest
import torch

import scratchllm

openai = pytest.importorskip("openai")


@pytest.fixture(scope="module")
def client(live):
    return openai.OpenAI(base_url=live.url + "/v1", api_key="unused", max_retries=0)


@pytest.fixture(scope="module")
def run(run_dir):
    return scratchllm.load(run_dir)


def _forward_logprobs(run, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        # normalised over the whole (padded) output, then the tokenizer's ids: as scratchllm eval scores
        return run.model(torch.tensor([ids]))[0].log_softmax(-1)[:, : run.tokenizer.vocab_size]


def test_completion_stream_carries_each_tokens_logprob(client, run):
    prompt = "import os\n"
    chunks = list(client.completions.create(model="m", prompt=prompt, max_tokens=10, temperature=0, stream=True,
                                            logprobs=2))
    tokens, values, tops, offsets = [], [], [], []
    for c in chunks:
        lp = c.choices[0].logprobs
        assert lp is not None                     # every chunk of a logprobs stream has the field
        tokens += lp.tokens
        values += lp.token_logprobs
        tops += lp.top_logprobs
        offsets += lp.text_offset
    text = "".join(c.choices[0].text for c in chunks)
    whole = client.completions.create(model="m", prompt=prompt, max_tokens=10, temperature=0, logprobs=2)
    assert text == whole.choices[0].text and tokens == whole.choices[0].logprobs.tokens
    assert values == pytest.approx(whole.choices[0].logprobs.token_logprobs, abs=1e-4)
    assert offsets == [sum(len(t) for t in tokens[:i]) for i in range(len(tokens))]
    ids = run.tokenizer.encode(prompt)
    new = [run.tokenizer.encode(t, allowed_special="all") for t in tokens]
    assert all(len(n) == 1 for n in new)
    full = ids + [n[0] for n in new]
    expected = _forward_logprobs(run, full)
    for i, (value, top) in enumerate(zip(values, tops)):
        pos = len(ids) + i - 1                    # the position that predicts token i of the completion
        assert value == pytest.approx(float(expected[pos, full[pos + 1]]), abs=1e-4)
        assert len(top) == 2 and max(top.values()) == pytest.approx(float(expected[pos].max()), abs=1e-4)
        assert max(top, key=top.get) == tokens[i]   # greedy: the chosen token is the best one


def test_echo_stream_scores_the_prompt_first(client, run):
    ids = run.tokenizer.encode("def main(")
    chunks = list(client.completions.create(model="m", prompt=ids, max_tokens=3, temperature=0, stream=True,
                                            echo=True, logprobs=0))
    head = chunks[0].choices[0]
    assert head.text == run.tokenizer.decode(ids) and head.logprobs.token_logprobs[0] is None
    expected = _forward_logprobs(run, ids)
    assert head.logprobs.token_logprobs[1:] == pytest.approx(
        [float(expected[i - 1, ids[i]]) for i in range(1, len(ids))], abs=1e-4)
    assert head.logprobs.top_logprobs is None     # logprobs=0: the chosen tokens only
    after = chunks[1].choices[0].logprobs
    assert after.text_offset[0] == len(head.text)  # offsets run on over the echoed prompt


def test_chat_stream_carries_logprob_content(client, run):
    messages = [{"role": "user", "content": "hello"}]
    kw = dict(model="m", messages=messages, max_tokens=8, temperature=0, logprobs=True, top_logprobs=2)
    whole = client.chat.completions.create(**kw).choices[0]
    content = []
    for chunk in client.chat.completions.create(**kw, stream=True):
        if chunk.choices[0].logprobs is not None:
            content += chunk.choices[0].logprobs.content
    expected = whole.logprobs.content
    assert [e.token for e in content] == [e.token for e in expected]
    assert [e.logprob for e in content] == pytest.approx([e.logprob for e in expected], abs=1e-4)
    assert [e.bytes for e in content] == [e.bytes for e in expected]
    for got, want in zip(content, expected):
        assert len(got.top_logprobs) == 2
        assert [t.token for t in got.top_logprobs] == [t.token for t in want.top_logprobs]
    assert "".join(e.token for e in content) == whole.message.content
