import json

import pytest

from scratchllm.cli import main


def _one_line_error(capsys, argv, match):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and match in err


def test_bad_input_is_one_line_error(capsys, tmp_path):
    _one_line_error(capsys, ["charlm", "train", "--data", str(tmp_path / "missing.txt")], "does not exist")
    (tmp_path / "empty.txt").write_text("\n\n")
    _one_line_error(capsys, ["charlm", "train", "--data", str(tmp_path / "empty.txt")], "is empty")
    _one_line_error(capsys, ["charlm", "sample", "--run", str(tmp_path)], "not a run directory")


def test_bad_override_names_the_key(capsys, words_file, tmp_path):
    _one_line_error(capsys, ["charlm", "train", "--model", "mlp", "--data", str(words_file),
                             "--out", str(tmp_path / "r"), "n_hiden=3"], "did you mean 'mlp.n_hidden'")


@pytest.mark.parametrize("kind,extra", [("bigram", []), ("bigram-nn", ["steps=20", "charlm.plots=false"]),
                                         ("mlp", ["steps=50", "n_hidden=16", "eval_every=25"])])
def test_train_then_sample(capsys, words_file, tmp_path, kind, extra):
    out = tmp_path / kind
    assert main(["charlm", "train", "--model", kind, "--data", str(words_file), "--out", str(out), *extra]) == 0
    last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"train_loss", "val_loss"} <= set(last)
    assert ("nll_full" in last) == (kind == "bigram")
    assert (out / "tokenizer.json").is_file() and (out / "config.toml").is_file()
    assert {"bigram": (out / "bigram.png").is_file(), "mlp": (out / "embeddings.png").is_file()}.get(kind, True)
    capsys.readouterr()
    assert main(["charlm", "sample", "--run", str(out), "-n", "5", "--seed", "3"]) == 0
    first = capsys.readouterr().out
    assert main(["charlm", "sample", "--run", str(out), "-n", "5", "--seed", "3"]) == 0
    assert capsys.readouterr().out == first and first.count("\n") == 5  # a sample may be empty
    _one_line_error(capsys, ["charlm", "train", "--model", kind, "--data", str(words_file), "--out", str(out)],
                    "already holds a run")
