"""Bad input is one line on stderr and exit status 2, never a traceback."""

import pytest

from scratchllm.cli import main


def _error_line(capsys, argv):
    assert main(argv) == 2
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr
    err = stderr.strip().splitlines()[-1]  # progress bars of earlier stages may come before it
    assert err.startswith("error: ")
    return err


def test_missing_data_path(capsys, tmp_path):
    err = _error_line(capsys, ["train", "--data", str(tmp_path / "nope.txt"), "--out", str(tmp_path / "run")])
    assert "does not exist" in err and "--data" in err


def test_empty_corpus(capsys, tmp_path):
    (tmp_path / "empty.txt").write_text("")
    err = _error_line(capsys, ["train", "--data", str(tmp_path / "empty.txt"), "--out", str(tmp_path / "run")])
    assert "empty" in err


def test_single_document_too_small_to_split(capsys, tmp_path):
    (tmp_path / "one.txt").write_text("just one short line\n")
    err = _error_line(capsys, ["train", "--data", str(tmp_path / "one.txt"), "--out", str(tmp_path / "run"),
                               "data.vocab_size=270"])
    assert "--data" in err


@pytest.mark.parametrize("override, expect", [("train.max_lrr=1", "did you mean 'train.max_lr'"),
                                              ("modle.n_layer=2", "unknown config key 'modle'"),
                                              ("train.schedule=linear", "choose one of")])
def test_bad_config_keys_and_values(capsys, tmp_path, override, expect):
    assert expect in _error_line(capsys, ["train", "--out", str(tmp_path / "run"), override])


def test_unknown_preset(capsys, tmp_path):
    assert "unknown preset" in _error_line(capsys, ["train", "--preset", "huge", "--out", str(tmp_path)])
    # (--resume of a directory without a run now starts it: tests/test_resume_safety.py)
