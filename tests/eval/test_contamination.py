"""Contamination: an eval item copied into the corpus (in other case and punctuation) is found, a
fresh one is not, short items count when they occur whole; text files and token directories both work."""

from __future__ import annotations

import json

from eval_helpers import mc_rows, tiny_tokenizer, write_jsonl

from scratchllm.cli import main
from scratchllm.data.tokenize import write_token_dir
from scratchllm.eval.contamination import check
from scratchllm.eval.tasks import load_task
from scratchllm.eval.tasks.base import PairItem, Task

LONG = "the quick brown fox jumps over the lazy dog while seven small birds sing a song"


def _task(texts):
    return Task("t", "lambada", [PairItem(t, "") for t in texts], source_hash="")


def test_overlap_found_through_case_and_punctuation_and_only_there():
    task = _task([LONG, "completely unrelated words that never appear in the training text at all here ok",
                  "short one"])
    corpus = ["Once upon a time: THE QUICK, brown fox jumps over the lazy dog while seven small birds sing..."]
    assert check([task], corpus)["t"]["dirty_items"] == [0]
    assert check([task], corpus + ["we said short one again"])["t"]["dirty_items"] == [0, 2]


def test_an_ngram_must_be_whole():
    words = LONG.split()
    corpus = [" ".join(words[:12]) + " BREAK " + " ".join(words[12:])]   # every 13-gram is interrupted
    assert check([_task([" ".join(words[:13])])], corpus)["t"]["dirty"] == 0


def test_cli_text_corpus_and_token_directory(tmp_path):
    rows = mc_rows(6, 2, seed=7)
    quiz = write_jsonl(tmp_path / "quiz.jsonl", rows)
    leaked = rows[2]["query"] + " " + rows[2]["choices"][rows[2]["gold"]]
    corpus = write_jsonl(tmp_path / "train.jsonl", [{"text": "noise " * 20 + leaked + " more noise"}])
    tok = tiny_tokenizer()
    write_token_dir([f"noise {i} " * 100 + leaked for i in range(8)], tok, tmp_path / "tokens", val_fraction=0.5, seed=0,
                    workers=1, progress=False)
    for i, source in enumerate([corpus, tmp_path / "tokens"]):
        out = tmp_path / f"c{i}"
        assert main(["eval", "contamination", "--tasks", str(quiz), "--corpus", str(source), "--out", str(out)]) == 0
        result = json.loads((out / "contamination.json").read_text())["tasks"]["quiz"]
        assert 2 in result["dirty_items"] and result["n"] == 6
    assert len(load_task(str(quiz)).items) == 6
