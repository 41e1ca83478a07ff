"""The shared-data gate itself: missing data skips on a laptop and fails in CI, naming where to put it."""

import pytest
import shared_data
from _pytest.outcomes import Failed, Skipped


def test_missing_shared_data_skips_locally_and_fails_in_ci(monkeypatch, tmp_path):
    monkeypatch.setattr(shared_data, "SHARED_DATA", tmp_path)
    (tmp_path / "here.txt").write_text("x")
    assert shared_data.require_shared("here.txt") == tmp_path / "here.txt"
    monkeypatch.setenv("CI", "false")
    with pytest.raises(Skipped, match=r"shared data missing: .*gone\.txt.*\.\./shared/data.*SCRATCHLLM_DATA"):
        shared_data.require_shared("here.txt", "gone.txt")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(Failed, match=r"gone\.txt is not there: .*\.\./shared/data.*SCRATCHLLM_DATA"):
        shared_data.require_shared("gone.txt")
