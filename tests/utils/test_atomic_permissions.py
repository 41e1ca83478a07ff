"""Atomic writes give the permissions of a plain open()/mkdir() under the umask, not tempfile's 0600/0700."""

from __future__ import annotations

import os
import stat

import pytest

from scratchllm.utils.atomic import atomic_directory, atomic_write_text


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(params=[0o022, 0o027, 0o002])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def test_files_and_directories_follow_the_umask(tmp_path, umask):
    atomic_write_text(tmp_path / "a.txt", "x")
    with open(tmp_path / "plain.txt", "w"):
        pass
    assert _mode(tmp_path / "a.txt") == _mode(tmp_path / "plain.txt") == 0o666 & ~umask
    with atomic_directory(tmp_path / "d") as tmp:
        atomic_write_text(tmp / "inside.txt", "y")
    (tmp_path / "plain-dir").mkdir()
    assert _mode(tmp_path / "d") == _mode(tmp_path / "plain-dir") == 0o777 & ~umask
    assert _mode(tmp_path / "d" / "inside.txt") == 0o666 & ~umask

