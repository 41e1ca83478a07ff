"""Full and read-only disks: one line naming the path, nothing half-written, the last checkpoint still valid.

The disks are real where this machine allows it: a tiny tmpfs filled to the brim, and a
read-only bind mount (as root, chmod 0500 would not stop a write, so chmod proves nothing).
Without the rights to mount, those tests skip; `test_full_disk_mid_save_simulated` then still
covers the save path by making the safetensors writer fail as it does on a full disk.
"""

from __future__ import annotations

import errno
import os
import subprocess

import pytest
from hardening_helpers import TINY, corpus, tree

from scratchllm.cli import main
from scratchllm.train import checkpoint as ckpt


def _mount(args: list[str]) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount here ({done.stderr.strip() or 'not root'}); the simulated test covers saving")


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs; `fill(leave)` then takes all but `leave` bytes of it."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    _mount(["-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)])
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(mnt, leave: int = 0) -> None:
    """Take the free space of `mnt` except `leave` bytes (a filler file outside what the tests look at)."""
    free = os.statvfs(mnt).f_bavail * os.statvfs(mnt).f_frsize
    with open(mnt / "filler", "wb") as f:
        try:
            f.write(b"\0" * max(free - leave, 0))
        except OSError as e:
            assert e.errno == errno.ENOSPC


@pytest.fixture
def read_only(tmp_path):
    """A directory seen through a read-only bind mount (writes fail with EROFS, even for root)."""
    src, mnt = tmp_path / "ro-src", tmp_path / "ro"
    src.mkdir()
    mnt.mkdir()
    _mount(["--bind", str(src), str(mnt)])
    try:
        _mount(["-o", "remount,ro,bind", str(mnt)])
        yield src, mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _one_error_line(capsys, argv) -> str:
    code = main(argv)
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip() and "[00:" not in ln]
    assert code == 2 and len(err) == 1 and err[0].startswith("error: "), err
    assert "Traceback" not in err[0]
    return err[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("trained")
    assert main(["train", "--data", str(corpus(root)), "--out", str(root / "run"), *TINY]) == 0
    return root


def test_full_disk_mid_resume_keeps_the_last_checkpoint(trained, small_disk, capsys):
    import shutil

    run = small_disk / "run"
    shutil.copytree(trained / "run", run)
    before = ckpt.find_checkpoint(run).step
    fill(small_disk, leave=20_000)  # config.toml fits; the checkpoint (~100 kB) does not
    err = _one_error_line(capsys, ["train", "--out", str(run), "--resume", "train.max_steps=6"])
    assert "no space left on device" in err and str(run) in err
    assert ckpt.list_steps(run) == [before]
    ckpt.find_checkpoint(run)  # still verifies against its checksums
    assert not [p for p in run.rglob("*.tmp")], "a half-written temporary was left behind"
    (small_disk / "filler").unlink()
    assert main(["train", "--out", str(run), "--resume", "train.max_steps=6"]) == 0
    assert ckpt.list_steps(run)[-1] == 6


def test_full_disk_new_run_leaves_nothing(trained, small_disk, capsys):
    fill(small_disk, leave=4_000)
    err = _one_error_line(capsys, ["train", "--data", str(trained / "corpus"), "--out", str(small_disk / "run"), *TINY])
    assert "no space left on device" in err
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]


def test_full_disk_export_import_prepare_tokenizer(trained, small_disk, tmp_path, capsys):
    assert main(["export", "hf", str(trained / "run"), "--out", str(tmp_path / "hf")]) == 0
    fill(small_disk, leave=1_000)
    cases = [["export", "hf", str(trained / "run"), "--out", str(small_disk / "hf")],
             ["import", "hf", str(tmp_path / "hf"), "--out", str(small_disk / "imported")],
             ["data", "prepare", "--input", str(trained / "corpus"), "--tokenizer", str(trained / "run"),
              "--out", str(small_disk / "prepared"), "--workers", "1"],
             ["tokenizer", "train", "--input", str(trained / "corpus"), "--vocab-size", "300", "--workers", "1",
              "--out", str(small_disk / "tok.json")]]
    for argv in cases:
        assert "no space left on device" in _one_error_line(capsys, argv), argv
        assert sorted(p.name for p in small_disk.iterdir()) == ["filler"], argv


def test_read_only_disk(trained, read_only, tmp_path, capsys):
    src, ro = read_only
    import shutil

    shutil.copytree(trained / "run", src / "run")  # written through the writable side
    before = tree(src)
    cases = [["train", "--data", str(trained / "corpus"), "--out", str(ro / "new"), *TINY],
             ["train", "--out", str(ro / "run"), "--resume", "train.max_steps=6"],
             ["export", "hf", str(ro / "run"), "--out", str(ro / "hf")],
             ["import", "hf", str(tmp_path), "--out", str(ro / "imported")],
             ["data", "prepare", "--input", str(trained / "corpus"), "--tokenizer", str(ro / "run"),
              "--out", str(ro / "prepared")],
             ["tokenizer", "train", "--input", str(trained / "corpus"), "--vocab-size", "300", "--workers", "1",
              "--out", str(ro / "tok.json")]]
    for argv in cases:
        assert "read-only" in _one_error_line(capsys, argv), argv
    assert tree(src) == before
    # reading still works from a read-only run
    assert main(["generate", "--run", str(ro / "run"), "--prompt", "The ", "--max-new-tokens", "3", "--seed", "0"]) == 0


def test_full_disk_mid_save_simulated(trained, tmp_path, monkeypatch, capsys):
    """The fallback where mounting is impossible: safetensors fails the way it does on a full disk."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained / "run", run)
    before = ckpt.list_steps(run)

    def full(*args, **kwargs):
        raise RuntimeError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(ckpt, "save_model", full)
    err = _one_error_line(capsys, ["train", "--out", str(run), "--resume", "train.max_steps=6"])
    assert err.startswith(f"error: cannot write '{ckpt.step_dir(run, 6) / 'model.safetensors'}': no space left")
    assert ckpt.list_steps(run) == before
    ckpt.find_checkpoint(run)
    assert not list(run.rglob("*.tmp"))
