"""A trained run and its HF export carry the usual 0644/0755 permissions, so they can be shared or mounted."""

from __future__ import annotations

import os
import stat

from hardening_helpers import TINY, corpus

from scratchllm.cli import main


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_whole_run_is_shareable(tmp_path):
    old = os.umask(0o022)
    try:
        assert main(["train", "--data", str(corpus(tmp_path)), "--out", str(tmp_path / "run"), *TINY]) == 0
        assert main(["export", "hf", str(tmp_path / "run"), "--out", str(tmp_path / "hf")]) == 0
    finally:
        os.umask(old)
    for root in (tmp_path / "run", tmp_path / "hf"):
        for p in [root, *root.rglob("*")]:
            assert _mode(p) == (0o755 if p.is_dir() else 0o644), p
