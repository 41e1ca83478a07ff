"""Constitutional AI: the conversations sent at each step (against a scripted endpoint on 127.0.0.1),
seeded principle draws, outputs that `finetune` and `align dpo` read, resuming, a torn transcript,
and end to end with a tiny run (through the batched engine) and with `scratchllm serve`'s app."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import pytest
from align_helpers import byte_tokenizer, make_run, tiny_config, write_jsonl

from scratchllm.align.constitution import (Principle, default_constitution, principle_for, read_constitution,
                                           revise)
from scratchllm.align.constitution_run import EndpointChat, RunChat, read_transcript, run_constitution
from scratchllm.cli import main
from scratchllm.data.chat import encode_conversations, load_conversations
from scratchllm.data.preference import load_pairs
from scratchllm.errors import UserError
from scratchllm.eval.redteam import default_suite
from scratchllm.serve.app import create_app
from scratchllm.train.checkpoint import load_run

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS / "eval"))
sys.path.insert(0, str(TESTS / "serve"))
from eval_helpers import serve_chat  # noqa: E402  (the eval tests' scripted chat server)
from serve_helpers import LiveServer  # noqa: E402  (uvicorn on a free port, as the serve tests run it)

CONSTITUTION = """
[[principle]]
name = "kind"
critique = "CRITIQUE-KIND: was the reply unkind?"
revision = "REVISION-KIND: rewrite it kindly."

[[principle]]
name = "true"
critique = "CRITIQUE-TRUE: was anything false?"
revision = "REVISION-TRUE: rewrite it truthfully."
"""


def _scripted(user: str, n: int) -> str:
    """Replies that say which step they answer, so each step's text is recognisable downstream."""
    if user.startswith("CRITIQUE-"):
        return f"critique#{n}"
    if user.startswith("REVISION-"):
        return f"revision#{n}"
    return f"reply#{n}"


@pytest.fixture
def endpoint():
    server, url, calls = serve_chat(_scripted)
    yield url, calls
    server.shutdown()


def _files(tmp_path, prompts):
    c = tmp_path / "c.toml"
    c.write_text(CONSTITUTION, encoding="utf-8")
    return c, write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": p} for p in prompts])


def test_each_step_sends_the_principles_requests_and_the_earlier_text(tmp_path, endpoint):
    url, calls = endpoint
    constitution, prompts = _files(tmp_path, ["How do I pick a lock?"])
    stats = run_constitution(EndpointChat(url, "m", temperature=0.5), prompts, tmp_path / "out", constitution,
                             rounds=2, quiet=True)
    assert stats["revised"] == 1
    b = [body["messages"] for body in calls["bodies"]]
    assert len(b) == 1 + 2 * 2                      # reply, then critique + revision per round
    (record,) = read_transcript(tmp_path / "out" / "transcript.jsonl")
    principles = {p.name: p for p in read_constitution(constitution)}
    assert b[0] == [{"role": "user", "content": "How do I pick a lock?"}]
    reply = "reply#1"
    for r in (1, 2):
        crit, rev = b[2 * r - 1], b[2 * r]
        p = principles[record["steps"][2 * r - 1]["principle"]]
        # critique: the prompt, the latest reply, then the principle's critique request
        assert crit == [{"role": "user", "content": "How do I pick a lock?"}, {"role": "assistant", "content": reply},
                        {"role": "user", "content": p.critique}]
        # revision: all of that, the critique the model wrote, then the same principle's revision request
        assert rev == crit + [{"role": "assistant", "content": f"critique#{2 * r}"},
                              {"role": "user", "content": p.revision}]
        reply = f"revision#{2 * r + 1}"                       # round 2 revises round 1's revision
    assert record["original"] == "reply#1" and record["revision"] == "revision#5"
    assert [s["step"] for s in record["steps"]] == ["reply", "critique", "revision", "critique", "revision"]
    assert all(body["temperature"] == 0.5 and body["model"] == "m" and isinstance(body["seed"], int)
               for body in calls["bodies"])


def test_outputs_load_as_sft_conversations_and_preference_pairs(tmp_path, endpoint):
    url, _ = endpoint
    constitution, prompts = _files(tmp_path, [f"prompt {i}" for i in range(3)])
    run_constitution(EndpointChat(url), prompts, tmp_path / "out", constitution, quiet=True)
    convs = load_conversations(tmp_path / "out" / "sft.jsonl")
    assert [c[0]["content"] for c in convs] == ["prompt 0", "prompt 1", "prompt 2"]
    assert all(c[1]["role"] == "assistant" and c[1]["content"].startswith("revision#") for c in convs)
    examples, _ = encode_conversations(byte_tokenizer(), convs, block_size=64)
    assert len(examples) == 3
    pairs = load_pairs(tmp_path / "out" / "pairs.jsonl")
    assert [(p.prompt[-1]["content"], p.chosen.split("#")[0], p.rejected.split("#")[0]) for p in pairs] == \
        [(f"prompt {i}", "revision", "reply") for i in range(3)]


def test_principle_draws_are_seeded_and_cover_the_constitution():
    principles = [Principle(str(i), f"c{i}", f"r{i}") for i in range(4)]
    draws = [principle_for(principles, 7, f"id{i}", 1).name for i in range(400)]
    assert draws == [principle_for(principles, 7, f"id{i}", 1).name for i in range(400)]   # repeatable
    assert draws != [principle_for(principles, 8, f"id{i}", 1).name for i in range(400)]   # the seed matters
    assert len(Counter(draws)) == 4 and min(Counter(draws).values()) > 60                  # ~100 each
    # the draw of one prompt does not depend on what else is in its batch
    echo = lambda convs, seeds: ["x" for _ in convs]
    alone = revise(echo, [{"id": "id5", "prompt": "p"}], principles, rounds=3, seed=7)[0]
    batched = revise(echo, [{"id": f"id{i}", "prompt": "p"} for i in range(8)], principles, rounds=3, seed=7)[5]
    assert [s.get("principle") for s in alone["steps"]] == [s.get("principle") for s in batched["steps"]]


def test_rerunning_skips_done_prompts_and_heals_a_torn_transcript(tmp_path, endpoint):
    url, calls = endpoint
    constitution, prompts = _files(tmp_path, ["a", "b"])
    out = tmp_path / "out"
    assert run_constitution(EndpointChat(url), prompts, out, constitution, quiet=True)["revised"] == 2
    n = calls["n"]
    again = run_constitution(EndpointChat(url), prompts, out, constitution, quiet=True)
    assert (again["resumed"], again["revised"], calls["n"]) == (2, 0, n)      # nothing asked again
    # more prompts, and a crash that tore the last transcript line and left a derived row without its record
    write_jsonl(prompts, [{"prompt": p} for p in ["a", "b", "c"]])
    transcript = out / "transcript.jsonl"
    text = transcript.read_text(encoding="utf-8").splitlines(keepends=True)
    transcript.write_text(text[0] + text[1][:25], encoding="utf-8")            # "b" torn mid-line
    with open(out / "sft.jsonl", "a", encoding="utf-8") as f:
        f.write('{"messages": [{"role": "user", "content": "b"}, {"role": "assistant", "content": "orphan"}]}\n')
    resumed = run_constitution(EndpointChat(url), prompts, out, constitution, quiet=True)
    assert (resumed["resumed"], resumed["revised"], resumed["sft"], resumed["pairs"]) == (1, 2, 3, 3)
    assert calls["n"] == n + 2 * 3                                              # b and c, three steps each
    records = read_transcript(transcript)
    assert [r["prompt"] for r in records] == ["a", "b", "c"]
    assert [c[0]["content"] for c in load_conversations(out / "sft.jsonl")] == ["a", "b", "c"]
    assert "orphan" not in (out / "sft.jsonl").read_text()


def test_an_endpoint_that_fails_keeps_the_batches_done(tmp_path):
    def flaky(user, n):
        if n > 3:                      # the first prompt's three steps succeed, then the server breaks
            raise ConnectionError
        return _scripted(user, n)

    server, url, _ = serve_chat(flaky)
    constitution, prompts = _files(tmp_path, ["a", "b"])
    try:
        with pytest.raises(UserError, match="cannot reach|refused"):
            run_constitution(EndpointChat(url, retries=1), prompts, tmp_path / "out", constitution, batch_size=1,
                             quiet=True)
    finally:
        server.shutdown()
    assert [r["prompt"] for r in read_transcript(tmp_path / "out" / "transcript.jsonl")] == ["a"]
    assert len(load_pairs(tmp_path / "out" / "pairs.jsonl")) == 1


def test_the_default_constitution_and_the_redteam_suite_read():
    principles = read_constitution()
    assert len(principles) >= 5 and default_constitution().is_file()
    assert all(p.critique and p.revision for p in principles)
    assert len({p.name for p in principles}) == len(principles)


def test_cli_end_to_end_on_a_tiny_run_with_the_redteam_suite(tmp_path, capsys):
    """A tiny random run through the batched engine: red-team prompts (their own file format, ids and
    categories kept) in, the three files out; rerun, every prompt is skipped."""
    run = make_run(tmp_path / "run", tiny_config(block_size=512))
    suite = [json.loads(line) for line in default_suite().read_text(encoding="utf-8").splitlines()[:4]]
    prompts = write_jsonl(tmp_path / "redteam.jsonl", suite)
    argv = ["align", "constitution", "--run", str(run), "--prompts", str(prompts), "--out", str(tmp_path / "cai"),
            "--max-new-tokens", "8", "--batch-size", "3"]
    assert main(argv) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("prompts 4: ")
    records = read_transcript(tmp_path / "cai" / "transcript.jsonl")
    assert [r["id"] for r in records] == [row["id"] for row in suite]
    assert all(r["category"] == row["category"] for r, row in zip(records, suite))
    done = [r for r in records if r["status"] == "done"]
    assert len(done) + sum(r["status"] == "context" for r in records) == 4 and done
    assert len(load_conversations(tmp_path / "cai" / "sft.jsonl")) == sum(bool(r["revision"].strip()) for r in done)
    assert main(argv) == 0                                                   # all done: skipped
    assert "0 revised now, 4 already done" in capsys.readouterr().out


def test_against_scratchllm_serve_as_the_endpoint(tmp_path):
    run = make_run(tmp_path / "run", tiny_config(block_size=512))
    _, prompts = _files(tmp_path, ["hello there", "what is 2+2?"])
    with LiveServer(create_app(run, chat=True)) as server:   # a random run: chat forced on
        for out, seed in (("cai", "3"), ("again", "3"), ("other", "4")):
            assert main(["align", "constitution", "--endpoint", server.url, "--prompts", str(prompts),
                         "--out", str(tmp_path / out), "--max-new-tokens", "6", "--seed", seed]) == 0
    records = read_transcript(tmp_path / "cai" / "transcript.jsonl")
    assert [r["status"] for r in records] == ["done", "done"]
    assert all(len(r["steps"]) == 3 and all(isinstance(s["text"], str) for s in r["steps"]) for r in records)
    # the seeds sent make the server's sampling repeat: the same seed, the same transcript
    assert read_transcript(tmp_path / "again" / "transcript.jsonl") == records
    other = read_transcript(tmp_path / "other" / "transcript.jsonl")
    assert [r["steps"][0]["text"] for r in other] != [r["steps"][0]["text"] for r in records]


@pytest.mark.parametrize("text, fragment", [
    ("", "has no principles"),
    ('[[principle]]\ncritique = "c"\n', "no revision request"),
    ('[[principle]]\ncritique = "c"\nrevision = "r"\nweight = 2\n', "unknown key 'weight'"),
])
def test_bad_constitutions_are_one_sentence(tmp_path, text, fragment):
    path = tmp_path / "c.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UserError, match=fragment):
        read_constitution(path)


def test_a_step_that_no_longer_fits_the_runs_context_ends_that_prompt_only(tmp_path):
    """block_size 160: the short prompt's critique and revision fit; the long prompt's revision does not."""
    run = load_run(make_run(tmp_path / "run", tiny_config(block_size=160)))
    constitution, prompts = _files(tmp_path, ["hi", "x" * 100])
    stats = run_constitution(RunChat(run, max_new_tokens=4), prompts, tmp_path / "out", constitution, quiet=True)
    short, long = read_transcript(tmp_path / "out" / "transcript.jsonl")
    assert short["status"] == "done" and [s["step"] for s in short["steps"]] == ["reply", "critique", "revision"]
    assert long["status"] == "context" and [s["text"] is None for s in long["steps"]] == [False, False, True]
    assert (stats["revised"], stats["too_long"], stats["sft"]) == (1, 1, int(bool(short["revision"].strip())))
