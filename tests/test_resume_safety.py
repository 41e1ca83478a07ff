"""Bad resumes and failed starts: a refused resume changes nothing, a run without a checkpoint
restarts with the same command, and a start that fails takes back what it wrote."""

from __future__ import annotations

import shutil

import pytest
from hardening_helpers import TINY, corpus, tree

from scratchllm.cli import main
from scratchllm.train import checkpoint as ckpt


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    assert main(["train", "--data", str(corpus(root)), "--out", str(root / "run"), *TINY]) == 0
    return root


@pytest.fixture
def run(trained, tmp_path):
    shutil.copytree(trained / "run", tmp_path / "run")
    return tmp_path / "run"


def test_refused_resume_changes_nothing_and_the_run_still_works(run, capsys):
    before = tree(run)
    assert main(["train", "--out", str(run), "--resume", "model.n_layer=3"]) == 2
    assert "model.n_layer=3 does not match the run being resumed (model.n_layer=1)" in capsys.readouterr().err
    assert tree(run) == before
    assert main(["generate", "--run", str(run), "--prompt", "The ", "--max-new-tokens", "3", "--seed", "0"]) == 0
    assert main(["train", "--out", str(run), "--resume", "train.max_steps=5"]) == 0  # training settings may change
    assert ckpt.list_steps(run)[-1] == 5


def test_resume_with_a_preset_of_another_shape_is_refused(run, capsys):
    before = tree(run)
    assert main(["train", "--out", str(run), "--resume", "--preset", "tiny-cpu"]) == 2
    assert "does not match the run being resumed" in capsys.readouterr().err
    assert tree(run) == before


def test_resume_of_a_corrupt_checkpoint_changes_nothing(run, capsys):
    weights = ckpt.step_dir(run, ckpt.list_steps(run)[-1]) / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\0")
    before = tree(run)
    assert main(["train", "--out", str(run), "--resume", "train.max_steps=9"]) == 2
    assert "corrupt" in capsys.readouterr().err
    assert tree(run) == before


def test_resume_without_a_checkpoint_starts_the_run(trained, tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", "--data", str(trained / "corpus"), "--out", str(run), "--resume", *TINY]
    assert main(argv) == 0  # nothing there at all: the supervisor's first start
    assert "nothing to resume" in capsys.readouterr().out
    shutil.rmtree(run / "checkpoints")  # killed before its first save: config, tokens, metrics only
    assert main(argv) == 0
    assert "nothing to resume" in capsys.readouterr().out
    assert ckpt.list_steps(run) == [3]
    assert main(argv) == 0  # and now a real resume (already at max_steps: nothing to do)
    assert "resumed from" in capsys.readouterr().out


@pytest.mark.parametrize("text, fragment", [("", "empty"), ("one short document\n", "single document")])
def test_failed_start_leaves_no_directory(tmp_path, capsys, text, fragment):
    (tmp_path / "data.txt").write_text(text)
    out = tmp_path / "run"
    assert main(["train", "--data", str(tmp_path / "data.txt"), "--out", str(out), *TINY]) == 2
    assert fragment in capsys.readouterr().err
    assert not out.exists()


def test_failed_start_in_an_existing_directory_removes_only_its_own_files(trained, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "report.md").write_text("an earlier attempt's report, kept")
    (tmp_path / "data.txt").write_text("one short document\n")
    assert main(["train", "--data", str(tmp_path / "data.txt"), "--out", str(out), *TINY]) == 2
    assert sorted(p.name for p in out.iterdir()) == ["report.md"]


def test_failure_after_a_checkpoint_keeps_the_run(run, monkeypatch, capsys):
    from scratchllm.train import loop

    def broken(self):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(loop._Trainer, "run", broken)
    before = tree(run)
    assert main(["train", "--out", str(run), "--resume", "train.max_steps=5"]) == 2
    assert "no space left" in capsys.readouterr().err
    assert set(tree(run)) == set(before)  # config.toml may be rewritten; nothing removed


def test_force_writes_into_a_foreign_directory_and_keeps_its_other_files(trained, tmp_path, capsys):
    out = tmp_path / "hf-export"
    out.mkdir()
    (out / "config.json").write_text("{}")
    argv = ["train", "--data", str(trained / "corpus"), "--out", str(out), *TINY]
    assert main(argv) == 2
    assert "--force" in capsys.readouterr().err
    assert main([*argv, "--force"]) == 0
    assert (out / "config.json").read_text() == "{}" and ckpt.list_steps(out) == [3]


def test_speedrun_force_reaches_every_stage(trained, tmp_path, capsys):
    out = tmp_path / "notes"
    out.mkdir()
    (out / "todo.txt").write_text("mine")
    # a 128-token context: the speedrun's SFT stage keeps only conversations that fit it
    argv = ["speedrun", "--data", str(trained / "corpus"), "--out", str(out), "--no-progress", *TINY,
            "model.block_size=128"]
    assert main(argv) == 2
    assert main([*argv, "--force"]) == 0
    assert (out / "todo.txt").read_text() == "mine" and (out / "report.md").is_file()
