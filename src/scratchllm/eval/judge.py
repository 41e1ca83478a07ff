"""LLM-as-judge (Zheng et al. 2023, MT-Bench style) through any OpenAI-compatible chat endpoint.

- Single-answer grading: the judge reads a question and one answer and ends with "Rating: [[N]]",
  N from 1 to 10.
- Pairwise comparison: the judge sees answers A and B and ends with "[[A]]", "[[B]]" or "[[C]]"
  (a tie). Judges favour the first position, so every pair is judged twice with the answers
  swapped; a win counts only if both orders agree, anything else is a tie. How often the two
  orders agree (`consistency`) is reported: it measures the judge, not the answers.

A reply whose verdict cannot be parsed is asked again (at most `attempts` times in all), then
recorded as unparsed; an unreachable endpoint is one `UserError` after bounded retries. The
prompts are the project's own; they are plain strings here so they can be read and changed.

>>> parse_score("Clear and correct. Rating: [[8]]")
8
>>> parse_verdict("B is more accurate. [[B]]")
'B'
>>> combine("A", "B")   # A won in order 1, and the same answer (now in position B) won in order 2
'first'
>>> combine("A", "A")   # position A won both times: the judge followed the position, not the answer
'tie'
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from tqdm import tqdm

from scratchllm.errors import UserError
from scratchllm.eval.endpoint import chat_completion
from scratchllm.eval.tasks.base import read_jsonl_rows
from scratchllm.utils.atomic import atomic_directory

SINGLE_SYSTEM = (
    "You are a careful, impartial reviewer of answers written by an AI assistant. Judge how helpful, "
    "correct, relevant and clear the answer is for the question asked; do not reward length for its own "
    "sake, and treat a confident wrong answer as worse than an honest 'I don't know'. Explain your "
    "judgement in two or three sentences, then give a score from 1 (useless or harmful) to 10 "
    "(could not be better) on the last line, exactly in the form: Rating: [[N]]")
SINGLE_USER = "[Question]\n{question}\n\n[Answer]\n{answer}\n[End of answer]"
PAIR_SYSTEM = (
    "You are a careful, impartial reviewer comparing two answers, A and B, written by AI assistants to "
    "the same question. Decide which answer serves the person asking better: correctness first, then "
    "helpfulness, relevance and clarity. The order in which the answers appear and their length must "
    "not influence you, and neither must the assistants' names. Explain your decision briefly, then end "
    "with exactly one of: [[A]] if A is better, [[B]] if B is better, [[C]] for a tie.")
PAIR_USER = "[Question]\n{question}\n\n[Answer A]\n{a}\n[End of answer A]\n\n[Answer B]\n{b}\n[End of answer B]"

_SCORE = [re.compile(r"\[\[\s*(\d+(?:\.\d+)?)\s*\]\]"), re.compile(r"rating\s*:\s*(\d+(?:\.\d+)?)", re.I),
          re.compile(r"\b(\d+(?:\.\d+)?)\s*/\s*10\b")]
_VERDICT = re.compile(r"\[\[\s*([ABC])\s*\]\]")


def parse_score(text: str) -> int | None:
    """The 1-10 score of a grading reply (the last "[[N]]", else "Rating: N", else "N/10"), or None."""
    for pattern in _SCORE:
        found = pattern.findall(text)
        if found:
            value = round(float(found[-1]))
            return value if 1 <= value <= 10 else None
    return None


def parse_verdict(text: str) -> str | None:
    """"A", "B" or "tie" from the last [[A]] / [[B]] / [[C]] of a pairwise reply, or None."""
    found = _VERDICT.findall(text)
    if not found:
        return None
    return {"A": "A", "B": "B", "C": "tie"}[found[-1]]


def combine(order1: str | None, order2: str | None) -> str:
    """Verdict on (first, second) from order 1 (first shown as A) and order 2 (first shown as B)."""
    if order1 == "A" and order2 == "B":
        return "first"
    if order1 == "B" and order2 == "A":
        return "second"
    return "tie"


@dataclass
class Judge:
    """A chat endpoint asked for verdicts; `attempts` bounds the re-asks for an unparseable reply."""

    url: str
    model: str = "judge"
    attempts: int = 3
    retries: int = 3
    timeout: float = 120.0
    backoff: float = 0.5

    def _chat(self, system: str, user: str) -> str:
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        return chat_completion(self.url, self.model, messages, 0, 512, None, self.retries, self.timeout, self.backoff)

    def ask(self, system: str, user: str, parse: Callable[[str], Any]) -> tuple[Any, str]:
        text = ""
        for _ in range(max(1, self.attempts)):
            text = self._chat(system, user)
            value = parse(text)
            if value is not None:
                return value, text
        return None, text

    def grade(self, question: str, answer: str) -> dict[str, Any]:
        score, text = self.ask(SINGLE_SYSTEM, SINGLE_USER.format(question=question, answer=answer), parse_score)
        return {"question": question, "score": score, "judgement": text}

    def compare(self, question: str, first: str, second: str) -> dict[str, Any]:
        v1, t1 = self.ask(PAIR_SYSTEM, PAIR_USER.format(question=question, a=first, b=second), parse_verdict)
        v2, t2 = self.ask(PAIR_SYSTEM, PAIR_USER.format(question=question, a=second, b=first), parse_verdict)
        return {"question": question, "order1": v1, "order2": v2, "winner": combine(v1, v2),
                "consistent": v1 is not None and v2 == _mirror(v1),
                "judgements": [t1, t2]}


def _mirror(verdict: str | None) -> str | None:
    return {"A": "B", "B": "A"}.get(verdict, verdict)


def summarise_grades(rows: list[dict[str, Any]]) -> dict[str, Any]:
    scores = [r["score"] for r in rows if r["score"] is not None]
    return {"n": len(rows), "scored": len(scores), "mean_score": sum(scores) / len(scores) if scores else None}


def summarise_pairs(rows: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(rows)
    wins = sum(r["winner"] == "first" for r in rows)
    losses = sum(r["winner"] == "second" for r in rows)
    return {"n": n, "wins": wins, "losses": losses, "ties": n - wins - losses,
            "win_rate": (wins + 0.5 * (n - wins - losses)) / n if n else None,
            "consistency": sum(r["consistent"] for r in rows) / n if n else None}


def read_answers(path: str | Path) -> list[tuple[int, dict]]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"answers file '{path}' does not exist; pass a JSONL file of {{question, answer}} lines")
    return list(read_jsonl_rows(path, ("question", "answer")))


def judge_files(judge: Judge, answers: str | Path, against: str | Path | None, out: str | Path,
                progress: bool = True) -> dict[str, Any]:
    """Grade `answers` (or compare them with `against`, line by line); write OUT/judgments.jsonl and
    OUT/summary.json together. Returns the summary."""
    rows = read_answers(answers)
    other = read_answers(against) if against else None
    if other is not None:
        if len(other) != len(rows):
            raise UserError(f"'{answers}' has {len(rows)} answers but '{against}' has {len(other)}; "
                            "give both files the same questions in the same order")
        for (line, a), (_, b) in zip(rows, other):
            if a["question"] != b["question"]:
                raise UserError(f"line {line} asks a different question in '{answers}' than in '{against}'; "
                                "give both files the same questions in the same order")
    results = []
    for i, (_, row) in enumerate(tqdm(rows, desc="judge", disable=not progress, leave=False)):
        if other is None:
            results.append(judge.grade(row["question"], row["answer"]))
        else:
            results.append(judge.compare(row["question"], row["answer"], other[i][1]["answer"]))
    summary = summarise_pairs(results) if other is not None else summarise_grades(results)
    summary.update(mode="pairwise" if other is not None else "single", answers=str(answers),
                   against=str(against) if against else None, judge=judge.model)
    with atomic_directory(out) as tmp:
        (tmp / "judgments.jsonl").write_text("".join(json.dumps(r) + "\n" for r in results), encoding="utf-8")
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary
