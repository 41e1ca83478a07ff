"""utils/outdir.py: which output directories a command may write into, and what a failure takes back."""

from __future__ import annotations

import doctest

import pytest

from scratchllm.errors import UserError
from scratchllm.utils import atomic, console, outdir
from scratchllm import errors


@pytest.mark.parametrize("module", [outdir, atomic, console, errors])
def test_doctests(module):
    assert doctest.testmod(module, optionflags=doctest.ELLIPSIS).failed == 0


def test_missing_empty_and_own_directories_are_fine(tmp_path):
    assert outdir.check_output_dir(tmp_path / "new" / "run") == tmp_path / "new" / "run"
    assert outdir.check_output_dir(tmp_path) == tmp_path
    (tmp_path / "config.toml").write_text("")
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / ".config.toml.abc.tmp").write_text("")  # atomic.py's temporaries never count
    assert outdir.check_output_dir(tmp_path, ("config.toml", "checkpoints")) == tmp_path


def test_a_stranger_is_named_and_force_overrides(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "tokenizer.json").write_text("{}")
    with pytest.raises(UserError, match=r"already holds 'config.json' \(and 1 more\).*--force"):
        outdir.check_output_dir(tmp_path, ("metrics.jsonl",))
    assert outdir.check_output_dir(tmp_path, ("metrics.jsonl",), force=True) == tmp_path
    assert outdir.foreign_entries(tmp_path, ("*.json",)) == []


def test_a_file_in_the_way(tmp_path):
    (tmp_path / "x").write_text("")
    with pytest.raises(UserError, match="is a file"):
        outdir.check_output_dir(tmp_path / "x", force=True)
    with pytest.raises(UserError, match="is a file"):
        outdir.check_output_dir(tmp_path / "x" / "run")


def test_unwritable_location(tmp_path, monkeypatch):
    monkeypatch.setattr(outdir.os, "access", lambda path, mode: False)
    with pytest.raises(UserError, match="cannot be written"):
        outdir.check_output_dir(tmp_path / "run")


def test_removed_on_failure_takes_back_only_what_the_attempt_made(tmp_path):
    (tmp_path / "old.txt").write_text("kept")
    with pytest.raises(ValueError), outdir.removed_on_failure(tmp_path):
        (tmp_path / "new.txt").write_text("made by the attempt")
        (tmp_path / "sub").mkdir()
        raise ValueError
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.txt"]


def test_removed_on_failure_keeps_what_keep_protects_and_ctrl_c(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(ValueError), outdir.removed_on_failure(run, keep=lambda d: (d / "ckpt").exists()):
        (run / "ckpt").mkdir(parents=True)
        raise ValueError
    assert (run / "ckpt").is_dir()
    other = tmp_path / "other"
    with pytest.raises(KeyboardInterrupt), outdir.removed_on_failure(other):
        other.mkdir()
        raise KeyboardInterrupt  # not a failure: the same command continues what exists
    assert other.is_dir()
