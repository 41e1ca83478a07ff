"""Fixtures of the serve tests: one tiny run, one live server (chat on: its tokenizer has the chat tokens)."""

import sys
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from serve_helpers import LiveServer, train_tiny_run, wait_ready  # noqa: E402

from scratchllm.serve import create_app  # noqa: E402


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory) -> Path:
    return train_tiny_run(tmp_path_factory.mktemp("serve"))


@pytest.fixture(scope="session")
def live(run_dir):
    """A server with 4 slots and room for 64 waiting requests; chat forced on (the run is a base run)."""
    with LiveServer(create_app(run_dir, max_batch=4, max_queue=64, chat=True)) as server:
        with httpx.Client(base_url=server.url) as client:
            wait_ready(client)
        yield server
