"""A full disk during a checkpoint save (a real tmpfs of 1 MiB, mounted for the test) leaves the previous
checkpoint valid, no half-written step directory, and an error that names the file and the fix."""

from __future__ import annotations

import errno
import os
import subprocess

import pytest
from runs_helpers import run_tiny

from scratchllm.errors import os_error_sentence
from scratchllm.train import checkpoint as ckpt

FREE_LEFT = 16 * 1024  # room for metrics lines and run_info.json, not for a ~55 KB checkpoint


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def fill(disk, leave: int) -> None:
    """Write a filler file until only about `leave` bytes are free."""
    stat = os.statvfs(disk)
    free = stat.f_bavail * stat.f_frsize
    with open(disk / "filler", "wb") as f:
        f.write(b"\0" * max(free - leave, 0))


def test_full_disk_during_save_keeps_the_previous_checkpoint(token_dir, small_disk):
    run = small_disk / "run"
    run_tiny(token_dir, run, "train.max_steps=4", "train.checkpoint_every=0")
    before = ckpt.find_checkpoint(run)
    fill(small_disk, FREE_LEFT)
    with pytest.raises(OSError) as failure:
        run_tiny(token_dir, run, "train.max_steps=8", "train.checkpoint_every=0")
    assert failure.value.errno == errno.ENOSPC
    sentence = os_error_sentence(failure.value)
    assert "no space left on device" in sentence and "checkpoints" in sentence  # what the CLI prints
    assert ckpt.list_steps(run) == [4]
    again = ckpt.find_checkpoint(run)  # still verifies (sizes and SHA-256 of every file)
    assert again.step == before.step and again.state["files"] == before.state["files"]
    assert not list((run / "checkpoints").glob(".step-*"))  # the failed save's temporary is gone
