"""`align pairs` with its two text rankers: a rule file (hand-made replies in an order worked out by
hand) and an LLM judge behind a live OpenAI-compatible endpoint on 127.0.0.1 (the requests it
receives are checked); ties, all-equal and unscored groups give no pair and are counted."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from align_helpers import make_run, tiny_config, write_jsonl

from scratchllm.align.pairs import best_and_worst, build_pairs
from scratchllm.align.rules import parse_rules, read_rules, score_reply
from scratchllm.cli import main
from scratchllm.data.preference import load_pairs
from scratchllm.errors import UserError
from scratchllm.eval.judge import Judge

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "eval"))
from eval_helpers import serve_chat  # noqa: E402  (the eval tests' scripted chat server)

RULES = """
[[rule]]
name = "gives a reason"
kind = "require"
pattern = "(?i)\\\\bbecause\\\\b"
weight = 2

[[rule]]
kind = "forbid"
pattern = "(?i)as an ai"
weight = 3

[[rule]]
kind = "length"
min = 3
max = 12
unit = "words"

[[rule]]
kind = "ends_with"
any = [".", "!"]
weight = 0.5

[[rule]]
kind = "json"
weight = 4
"""

# reply -> its score, worked out by hand from the five rules above
BY_HAND = {
    "As an AI I cannot say.": 0 + 0 + 1 + 0.5 + 0,                                  # 1.5
    "It rains because warm air rises and cools.": 2 + 3 + 1 + 0.5,                   # 6.5
    "because": 2 + 3 + 0 + 0,                                                        # 5
    '{"answer": "rain"}': 3 + 4,                                                     # 7 (2 words, no end mark)
    "Rain falls because clouds get heavy, as an ai would say, and so on and on forever here!":
        2 + 0 + 0 + 0.5,                                                             # 2.5 (18 words)
}


def test_rule_scores_equal_the_hand_computed_ones(tmp_path):
    rules = read_rules(_write(tmp_path / "rules.toml", RULES))
    assert [r.name for r in rules][:2] == ["gives a reason", "forbid #2"]
    for reply, want in BY_HAND.items():
        assert score_reply(rules, reply) == pytest.approx(want), reply
    replies = list(BY_HAND)
    order = sorted(replies, key=lambda r: score_reply(rules, r), reverse=True)
    assert order == ['{"answer": "rain"}', "It rains because warm air rises and cools.", "because",
                     "Rain falls because clouds get heavy, as an ai would say, and so on and on forever here!",
                     "As an AI I cannot say."]
    assert best_and_worst(replies, [score_reply(rules, r) for r in replies]) == (order[0], order[-1])


def test_length_in_chars_and_one_sided_bounds():
    rules = parse_rules({"rule": [{"kind": "length", "max": 5}, {"kind": "length", "min": 3, "unit": "words"}]})
    assert [score_reply(rules, r) for r in ["abcde", "abcdef", "a b c", "a b"]] == [1.0, 0.0, 2.0, 1.0]


@pytest.mark.parametrize("doc, fragment", [
    ({"rule": [{"kind": "sparkle"}]}, "unknown kind 'sparkle'"),
    ({"rule": [{"kind": "require"}]}, "needs 'pattern'"),
    ({"rule": [{"kind": "forbid", "pattern": "(", "weight": 1}]}, "not a valid regex"),
    ({"rule": [{"kind": "json", "pattern": "x"}]}, "unknown key 'pattern'"),
    ({"rule": [{"kind": "length", "min": 9, "max": 2}]}, "min <= max"),
    ({"rule": [{"kind": "ends_with", "any": []}]}, "non-empty list"),
    ({"rule": [{"kind": "json", "weight": "high"}]}, "weight must be a number"),
    ({"rules": []}, "unknown top-level key 'rules'"),
    ({}, "has no rules"),
])
def test_bad_rule_files_are_one_sentence(doc, fragment):
    with pytest.raises(UserError, match=re.escape(fragment)):
        parse_rules(doc)


def test_ties_and_unscored_groups_give_no_pair():
    assert best_and_worst(["a", "b"], [1.0, 1.0]) is None            # all equal
    assert best_and_worst(["same", " same "], [2.0, 1.0]) is None    # the same text
    assert best_and_worst(["a", "b", "c"], [None, 3, None]) is None  # one scored reply
    assert best_and_worst(["a", "b", "c"], [None, 3, 7]) == ("c", "b")


def _prompts(tmp_path, n=3):
    return write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": f"question {i}?"} for i in range(n)])


def test_pairs_by_rules_end_to_end(tmp_path, capsys):
    """Sampled replies of a tiny random run ranked by one rule (holds a printable ASCII character): every
    pair's chosen passes it, its rejected does not."""
    run = make_run(tmp_path / "run", tiny_config(block_size=64))
    rules = _write(tmp_path / "rules.toml", '[[rule]]\nkind = "require"\npattern = "[ -~]"\n')
    out = tmp_path / "pairs.jsonl"
    assert main(["align", "pairs", "--run", str(run), "--rules", str(rules), "--prompts", str(_prompts(tmp_path, 6)),
                 "--out", str(out), "--k", "4", "--max-new-tokens", "3"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    counts = dict(re.findall(r"(prompts|pairs|skipped) (\d+)", line))
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert counts["prompts"] == "6" and int(counts["pairs"]) == len(rows) and int(counts["skipped"]) == 6 - len(rows)
    assert rows, "3 random tokens x 4 samples x 6 prompts should give groups with and without ASCII"
    for row in rows:
        assert re.search("[ -~]", row["chosen"]) and not re.search("[ -~]", row["rejected"])
    assert len(load_pairs(out)) == len(rows)


def _graded(user, _):
    """A judge that grades by the answer's length, 1 to 10 (deterministic, so the ranking is known)."""
    answer = re.search(r"\[Answer\]\n(.*)\n\[End of answer\]", user, re.S).group(1)
    return f"Longer is better here. Rating: [[{min(10, 1 + len(answer))}]]"


def test_pairs_by_a_judge_endpoint_sends_one_grading_request_per_reply(tmp_path):
    run = make_run(tmp_path / "run", tiny_config(block_size=64))
    server, url, calls = serve_chat(_graded)
    try:
        assert main(["align", "pairs", "--run", str(run), "--judge-endpoint", url, "--judge-model", "gpt-judge",
                     "--prompts", str(_prompts(tmp_path)), "--out", str(tmp_path / "p.jsonl"), "--k", "3",
                     "--max-new-tokens", "8"]) == 0
    finally:
        server.shutdown()
    bodies = calls["bodies"]
    assert len(bodies) == 3 * 3                       # scored: k requests a prompt, no pairwise matches
    for i, body in enumerate(bodies):
        assert body["model"] == "gpt-judge" and body["temperature"] == 0
        system, user = body["messages"]
        assert system["role"] == "system" and "Rating: [[N]]" in system["content"]
        assert f"[Question]\nquestion {i // 3}?\n" in user["content"]   # grouped by prompt, in file order
    rows = [json.loads(x) for x in (tmp_path / "p.jsonl").read_text().splitlines()]
    graded = {}
    for body in bodies:
        user = body["messages"][1]["content"]
        question = re.search(r"\[Question\]\n(.*?)\n", user).group(1)
        answer = re.search(r"\[Answer\]\n(.*)\n\[End of answer\]", user, re.S).group(1)
        graded.setdefault(question, []).append(answer)
    for row in rows:
        answers = graded[row["prompt"]]
        score = lambda a: min(10, 1 + len(a))
        assert score(row["chosen"]) == max(map(score, answers)) and score(row["rejected"]) == min(map(score, answers))


def test_a_judge_that_always_gives_the_same_grade_or_none_gives_no_pairs(tmp_path):
    run = make_run(tmp_path / "run", tiny_config(block_size=64))
    for behaviour, key in [(lambda user, n: "Rating: [[5]]", "ties"), (lambda user, n: "no idea", "unscored")]:
        server, url, _ = serve_chat(behaviour)
        try:
            stats = build_pairs(run, _prompts(tmp_path), tmp_path / "p.jsonl", judge=Judge(url, attempts=1),
                                k=2, max_new_tokens=4)
        finally:
            server.shutdown()
        assert stats["pairs"] == 0 and stats[key] == 3 and stats["skipped"] == 3
        assert (tmp_path / "p.jsonl").read_text() == ""


def test_exactly_one_ranker(tmp_path):
    run = make_run(tmp_path / "run")
    with pytest.raises(UserError, match="exactly one ranker.*got --reward and --rules"):
        build_pairs(run, _prompts(tmp_path), tmp_path / "p.jsonl", reward=run, rules="r.toml")
    with pytest.raises(UserError, match="exactly one ranker.*got none"):
        build_pairs(run, _prompts(tmp_path), tmp_path / "p.jsonl")
    assert not (tmp_path / "p.jsonl").exists()


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
