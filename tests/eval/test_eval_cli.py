"""`scratchllm eval` end to end on a tiny run and tiny files in the layouts of ../shared/data/eval,
and its bad-input errors (one sentence, exit 2, nothing written)."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import tarfile

import pytest
import torch
import torch.nn.functional as F
from eval_helpers import make_run, mc_rows, write_jsonl

from scratchllm import load
from scratchllm.cli import main
from scratchllm.eval.lm import LocalLM
from scratchllm.eval.scoring import rolling_windows, score
from scratchllm.train.checkpoint import save_run_weights


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("eval") / "run", block_size=128)


def _mmlu_tar(path):
    rows = {"dev": "Q0,a,b,c,d,A\nQ1,a,b,c,d,B\n", "test": "What is 1+1?,1,2,3,4,B\nPick c,a,b,c,d,C\n"}
    with tarfile.open(path, "w:xz") as tar:
        for split, text in rows.items():
            for subject in ("algebra", "anatomy"):
                data = text.encode()
                info = tarfile.TarInfo(f"data/{split}/{subject}_{split}.csv")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    (d / "wikitext2_test.txt").write_text(" \n = Cat = \n \n The cat sat , he said . \n = Dog = \n A dog ran @-@ fast . \n")
    write_jsonl(d / "lambada_openai.jsonl", [{"context": "the cat sat on the", "continuation": "mat"}] * 3)
    hella = "A man: he is\n1\nruns.\nsits.\njumps.\nsleeps.\n" * 3
    (d / "hellaswag_val_full.txt.bz2").write_bytes(bz2.compress(hella.encode()))
    for name in ("arc_easy", "arc_challenge", "piqa"):
        write_jsonl(d / f"{name}.jsonl", [dict(r, query="Question: " + r["query"]) for r in mc_rows(4, 3, 5)])
    write_jsonl(d / "winogrande.jsonl", [{"context_options": ["the cat", "the dog"], "continuation": "barked.",
                                          "gold": 1}] * 3)
    _mmlu_tar(d / "mmlu.tar.xz")
    write_jsonl(d / "gsm8k_test.jsonl", [{"question": f"{i}+1?", "answer": f"{i}+1={i + 1}\n#### {i + 1}"}
                                         for i in range(4)])
    he = {"task_id": "t/0", "prompt": "def one():\n", "entry_point": "one",
          "test": "def check(candidate):\n    assert candidate() == 1\n"}
    (d / "HumanEval.jsonl.gz").write_bytes(gzip.compress((json.dumps(he) + "\n").encode()))
    return d


def test_every_builtin_task_runs_and_reports(run, data_dir, tmp_path):
    out = tmp_path / "out"
    tasks = "wikitext2,lambada,hellaswag,arc_easy,arc_challenge,piqa,winogrande,mmlu,gsm8k,humaneval"
    assert main(["eval", "--run", str(run), "--tasks", tasks, "--data-dir", str(data_dir), "--shots", "1",
                 "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())["tasks"]
    assert set(results) == set(tasks.split(","))
    assert results["wikitext2"]["n"] == 2 and results["wikitext2"]["shots"] == 0   # two articles
    assert results["mmlu"]["n"] == 4 and {"acc_algebra", "acc_anatomy", "acc_macro"} <= set(results["mmlu"]["metrics"])
    assert results["hellaswag"]["chance"] == 0.25 and results["piqa"]["chance"] == pytest.approx(1 / 3)
    assert results["humaneval"]["metrics"]["pass@1"] in (0.0, 1.0)
    assert len(results["gsm8k"]["sha256"]) == 64
    for entry in results.values():
        for name, value in entry["metrics"].items():
            assert value == value, name   # no NaN
    report = (out / "report.md").read_text()
    assert "| hellaswag | acc_norm |" in report and "GPT-3 Small" in report


def test_user_tasks_multiple_choice_generative_and_text(run, tmp_path):
    mcq = write_jsonl(tmp_path / "quiz.jsonl", mc_rows(5, 2, 9))
    gen = write_jsonl(tmp_path / "facts.jsonl", [{"prompt": "2+2=", "answer": "4"}] * 2)
    txt = tmp_path / "notes.txt"
    txt.write_text("the cat sat on the mat. " * 40)
    out = tmp_path / "out"
    assert main(["eval", "--run", str(run), "--tasks", f"{mcq},{gen},{txt}", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())["tasks"]
    assert results["quiz"]["kind"] == "mc" and results["facts"]["kind"] == "gen"
    assert 0 < results["notes"]["metrics"]["bits_per_byte"] < 20


def test_rolling_loglikelihood_equals_one_forward_when_the_text_fits(run):
    lm = LocalLM(load(run))
    ids = lm.encode("the cat sat on the mat under a blue tree")
    assert len(ids) < lm.max_length
    with torch.no_grad():
        logp = F.log_softmax(lm.model(torch.tensor([[lm.prefix_id] + ids[:-1]])), -1)[0]
    want = logp.gather(-1, torch.tensor(ids)[:, None]).sum().item()
    assert lm.loglikelihood_rolling(["the cat sat on the mat under a blue tree"])[0] == pytest.approx(want, abs=1e-4)


def test_rolling_windows_predict_every_token_once_within_the_context():
    for n in (1, 5, 8, 9, 31):
        windows = list(rolling_windows(list(range(n)), prefix=-1, max_len=8))
        assert [t for _, cont in windows for t in cont] == list(range(n))
        assert all(len(ctx) + len(cont) - 1 <= 8 for ctx, cont in windows)


def test_continuation_longer_than_the_context_is_scored_on_its_last_tokens(run):
    lm = LocalLM(load(run))
    long = list(range(1, 200))   # 199 ids > block_size 128
    (ll, _), = score(lm.model, [([5], long)])
    with torch.no_grad():
        logp = F.log_softmax(lm.model(torch.tensor([long[-129:-1]])), -1)[0]
    want = logp.gather(-1, torch.tensor(long[-128:])[:, None]).sum().item()
    assert ll == pytest.approx(want, abs=1e-4)


@pytest.mark.parametrize("args,words", [
    (["--tasks", "nope"], "unknown task 'nope'"),
    (["--tasks", "hellaswag"], "pass --data-dir"),
    (["--tasks", "arc_easy", "--data-dir", "/nonexistent"], "does not exist"),
])
def test_bad_task_names(run, tmp_path, capsys, args, words):
    assert main(["eval", "--run", str(run), *args, "--out", str(tmp_path / "o")]) == 2
    assert words in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_malformed_task_file_names_the_line(run, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "q", "choices": ["a", "b"], "gold": 0}\n{"query": "q", "choices": \n')
    assert main(["eval", "--run", str(run), "--tasks", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "line 2" in capsys.readouterr().err
    bad.write_text('{"query": "q", "choices": ["a", "b"], "gold": 5}\n')
    assert main(["eval", "--run", str(run), "--tasks", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "line 1" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_shots_larger_than_the_pool(run, tmp_path, capsys):
    quiz = write_jsonl(tmp_path / "quiz.jsonl", mc_rows(3, 2, 1))
    assert main(["eval", "--run", str(run), "--tasks", str(quiz), "--shots", "5", "--out", str(tmp_path / "o")]) == 2
    assert "--shots 5" in capsys.readouterr().err


def test_run_without_a_tokenizer(tmp_path, capsys):
    from eval_helpers import tiny_model

    save_run_weights(tmp_path / "bare", tiny_model())
    quiz = write_jsonl(tmp_path / "quiz.jsonl", mc_rows(3, 2, 1))
    assert main(["eval", "--run", str(tmp_path / "bare"), "--tasks", str(quiz), "--out", str(tmp_path / "o")]) == 2
    assert "no tokenizer.json" in capsys.readouterr().err
