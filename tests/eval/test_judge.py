"""LLM-as-judge: verdict and score parsing, position-swap aggregation, bounded re-asks and retries,
end to end against scripted judges served on 127.0.0.1."""

from __future__ import annotations

import json
import re
import socket

import pytest
from eval_helpers import serve_chat, write_jsonl

from scratchllm.cli import main
from scratchllm.errors import UserError
from scratchllm.eval.judge import Judge, combine, parse_score, parse_verdict, summarise_pairs


@pytest.mark.parametrize("text,score", [
    ("Good answer.\nRating: [[7]]", 7), ("Rating: 9", 9), ("I'd give it 6/10.", 6), ("[[3]] then [[10]]", 10),
    ("Rating: [[8.6]]", 9), ("Rating: [[0]]", None), ("Rating: [[11]]", None), ("no score at all", None),
])
def test_parse_score(text, score):
    assert parse_score(text) == score


@pytest.mark.parametrize("text,verdict", [
    ("[[A]]", "A"), ("Answer B is better. [[B]]", "B"), ("equal: [[C]]", "tie"), ("[[ A ]]", "A"),
    ("first [[A]], on reflection [[B]]", "B"), ("A is better", None), ("[[D]]", None),
])
def test_parse_verdict(text, verdict):
    assert parse_verdict(text) == verdict


def test_position_swap_aggregation():
    assert combine("A", "B") == "first" and combine("B", "A") == "second"
    for v1, v2 in [("A", "A"), ("B", "B"), ("tie", "A"), ("A", None), (None, None), ("tie", "tie")]:
        assert combine(v1, v2) == "tie"
    rows = [{"winner": "first", "consistent": True}, {"winner": "tie", "consistent": False},
            {"winner": "second", "consistent": True}, {"winner": "first", "consistent": True}]
    assert summarise_pairs(rows) == {"n": 4, "wins": 2, "losses": 1, "ties": 1, "win_rate": 0.625,
                                     "consistency": 0.75}


def _answers(tmp_path, name, answers):
    return write_jsonl(tmp_path / name, [{"question": f"q{i}", "answer": a} for i, a in enumerate(answers)])


def _longer_wins(user, _):
    a = re.search(r"\[Answer A\]\n(.*)\n\[End of answer A\]", user, re.S).group(1)
    b = re.search(r"\[Answer B\]\n(.*)\n\[End of answer B\]", user, re.S).group(1)
    return "[[A]]" if len(a) > len(b) else "[[B]]"


def test_pairwise_end_to_end_consistent_and_position_biased_judges(tmp_path):
    ours = _answers(tmp_path, "a.jsonl", ["a long detailed answer", "short", "another long answer here"])
    theirs = _answers(tmp_path, "b.jsonl", ["short", "a much longer answer", "tiny"])
    server, url, _ = serve_chat(_longer_wins)
    try:
        assert main(["eval", "judge", "--answers", str(ours), "--against", str(theirs), "--endpoint", url,
                     "--out", str(tmp_path / "j1")]) == 0
    finally:
        server.shutdown()
    summary = json.loads((tmp_path / "j1" / "summary.json").read_text())
    assert (summary["wins"], summary["losses"], summary["ties"], summary["consistency"]) == (2, 1, 0, 1.0)

    server, url, _ = serve_chat(lambda user, n: "[[A]]")   # always the first position: pure position bias
    try:
        assert main(["eval", "judge", "--answers", str(ours), "--against", str(theirs), "--endpoint", url,
                     "--out", str(tmp_path / "j2")]) == 0
    finally:
        server.shutdown()
    summary = json.loads((tmp_path / "j2" / "summary.json").read_text())
    assert (summary["wins"], summary["ties"], summary["consistency"]) == (0, 3, 0.0)


def test_single_grading_re_asks_an_unparseable_reply_a_bounded_number_of_times(tmp_path):
    answers = _answers(tmp_path, "a.jsonl", ["x"])
    server, url, calls = serve_chat(lambda user, n: "hmm" if n < 3 else "Rating: [[6]]")
    try:
        assert Judge(url, attempts=3).grade("q", "x")["score"] == 6 and calls["n"] == 3
        calls["n"] = -100   # never parseable again within the bound
        assert Judge(url, attempts=2).grade("q", "x")["score"] is None and calls["n"] == -98
        assert main(["eval", "judge", "--answers", str(answers), "--endpoint", url, "--out", str(tmp_path / "g")]) == 0
    finally:
        server.shutdown()
    assert json.loads((tmp_path / "g" / "summary.json").read_text())["mode"] == "single"


def test_unreachable_judge_is_one_clear_error(tmp_path, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(UserError, match="after 2 attempt"):
        Judge(f"http://127.0.0.1:{port}", retries=2, backoff=0.01, timeout=1).grade("q", "a")
    answers = _answers(tmp_path, "a.jsonl", ["x"])
    other = _answers(tmp_path, "b.jsonl", ["x", "y"])
    assert main(["eval", "judge", "--answers", str(answers), "--against", str(other), "--endpoint",
                 f"http://127.0.0.1:{port}", "--out", str(tmp_path / "o")]) == 2
    assert "same questions" in capsys.readouterr().err and not (tmp_path / "o").exists()
