"""Where the real data sets under `../shared/data` are, and what a test does when they are absent.

The one way a test reaches shared data: `require_shared("tokenizer/gpt2/encoder.json")` returns the
path, or, when it is missing, skips the test on a developer machine and FAILS it in CI (env
`CI=true`), where a silent skip would hide that the data-backed oracles never ran. A skip is then
left only for optional extras (`pytest.importorskip`). The library itself never needs these files.

Set SCRATCHLLM_DATA to use a copy elsewhere (e.g. a worktree whose parent has no `shared/`):

    SCRATCHLLM_DATA=/work/shared/data pytest tests/tokenizer
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SCRATCHLLM_DATA", REPO_ROOT.parent / "shared" / "data"))
SKIP_PREFIX = "shared data missing: "


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def require_shared(*relative: str) -> Path:
    """SHARED_DATA / relative[0] (all of `relative` must exist); skip or, in CI, fail when one is missing."""
    paths = [SHARED_DATA / r for r in relative]
    missing = [p for p in paths if not p.exists()]
    if missing:
        message = (f"{missing[0]} is not there: put the shared data at ../shared/data next to the "
                   f"repository or point SCRATCHLLM_DATA at a copy")
        if in_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(SKIP_PREFIX + message)
    return paths[0]
