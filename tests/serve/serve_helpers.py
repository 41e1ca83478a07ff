"""A tiny trained run and a live uvicorn server on a free localhost port, shared by the serve tests."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import uvicorn

from scratchllm.cli import main

# A run that trains in a few seconds on one CPU thread, with a context long enough for chat turns.
TINY_RUN = ["model.block_size=64", "model.n_layer=1", "model.n_head=2", "model.n_embd=32", "train.batch_size=2",
            "train.max_steps=20", "train.eval_every=0", "train.eval_batches=1", "train.log_every=10",
            "train.warmup_steps=0", "train.progress=false", "train.device=cpu", "train.checkpoint_every=0",
            "data.vocab_size=300", "data.workers=1", "data.val_fraction=0.3"]


def train_tiny_run(root: Path) -> Path:
    docs = root / "corpus"
    docs.mkdir()
    source = Path(os.__file__).read_text(encoding="utf-8")
    for i in range(4):
        (docs / f"doc{i}.txt").write_text(source[i * 4000:(i + 1) * 4000], encoding="utf-8")
    assert main(["train", "--data", str(docs), "--out", str(root / "run"), *TINY_RUN]) == 0
    return root / "run"


class LiveServer:
    """uvicorn on its own thread, bound to a free port of 127.0.0.1; `url` once it is up."""

    def __init__(self, app):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> "LiveServer":
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started:
            assert time.time() < deadline, "the server did not start within 30 s"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


def wait_ready(client, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while client.get("/ready").status_code != 200:
        assert time.time() < deadline, "/ready did not turn 200"
        time.sleep(0.05)
