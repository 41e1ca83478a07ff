"""Fixtures of the runs tests: one tiny token directory for the session."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # runs_helpers, also run as a child process's script

from runs_helpers import make_tokens  # noqa: E402


@pytest.fixture(scope="session")
def token_dir(tmp_path_factory):
    return make_tokens(tmp_path_factory.mktemp("tokens"))
