"""`scratchllm runs list|show|compare`, `reproduce` (bitwise on CPU) and the dashboard: its API, and the
page in headless Chromium (no console errors, a curve for each run), screenshot kept for the docs."""

from __future__ import annotations

import json
import shutil
import socket
import os
import subprocess
import threading
import time

import pytest
from runs_helpers import run_tiny

from scratchllm.cli import main
from scratchllm.runs.dashboard import make_app


@pytest.fixture(scope="module")
def runs_dir(token_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    run_tiny(token_dir, root / "small-lr", "train.max_steps=8", "train.max_lr=3e-3")
    run_tiny(token_dir, root / "big-lr", "train.max_steps=8", "train.max_lr=3e-2")
    return root


def test_list_show_compare(runs_dir, capsys, tmp_path):
    assert main(["runs", "list", str(runs_dir)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:4] == ["name", "preset", "params", "step"]
    assert sorted(line.split()[0] for line in table[2:]) == ["big-lr", "small-lr"]
    # tiny-cpu with model overrides: no shipped preset's model, so "custom"
    assert all(line.split()[-1] == "done" and line.split()[1:4:2] == ["custom", "8"] for line in table[2:])
    assert main(["runs", "show", str(runs_dir / "big-lr")]) == 0
    assert "seed         1337" in capsys.readouterr().out
    assert main(["runs", "compare", str(runs_dir / "small-lr"), str(runs_dir / "big-lr"),
                 "--out", str(tmp_path / "cmp.png")]) == 0
    out = capsys.readouterr().out
    assert "train.max_lr: small-lr=0.003, big-lr=0.03" in out
    assert (tmp_path / "cmp.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_reproduce_matches_bitwise_on_cpu(token_dir, tmp_path, capsys):
    # A run of the real pipeline (its own tokens/ and run_info), reproduced for its first steps.
    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(json.dumps({"text": f"document {i}: the quick brown fox jumps over the lazy dog."}) + "\n"
                            for i in range(200)))
    tiny = ["data.vocab_size=300", "data.workers=1", "data.val_fraction=0.2", "model.block_size=16", "model.n_layer=1", "model.n_head=2",
            "model.n_embd=16", "train.batch_size=2", "train.max_steps=6", "train.eval_every=3", "train.log_every=1",
            "train.eval_batches=1", "train.progress=false", "train.device=cpu", "train.max_minutes=0"]
    assert main(["train", "--data", str(docs), "--out", str(tmp_path / "a"), *tiny]) == 0
    capsys.readouterr()
    assert main(["reproduce", str(tmp_path / "a"), "--out", str(tmp_path / "b"), "--steps", "4"]) == 0
    out = capsys.readouterr().out
    assert "losses over 4 steps match bitwise on cpu" in out
    report = json.loads(out[: out.rindex("}") + 1])
    assert report["compared"] == 5 and report["max_rel_diff"] == 0.0  # 4 losses + the val_loss at step 3


def test_dashboard_api_serves_every_run(runs_dir):
    from fastapi.testclient import TestClient

    client = TestClient(make_app(runs_dir))
    runs = client.get("/api/runs").json()["runs"]
    assert sorted(r["summary"]["name"] for r in runs) == ["big-lr", "small-lr"]
    assert all(len(r["metrics"]) == 8 for r in runs)
    assert "<canvas" not in client.get("/").text and "fetch(\"/api/runs\")" in client.get("/").text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install -y chromium)")
def test_dashboard_in_headless_chromium(runs_dir, tmp_path):
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(make_app(runs_dir), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}/"
        common = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000",
                  "--enable-logging=stderr", "--v=0"]
        dom = subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True, timeout=120)
        shot = tmp_path / "dashboard.png"
        subprocess.run([*common, f"--screenshot={shot}", "--window-size=1400,1000", url],
                       capture_output=True, text=True, timeout=120)
    finally:
        server.should_exit = True
        thread.join(10)
    console_errors = [line for line in dom.stderr.splitlines() if "CONSOLE" in line and "ERROR" in line.upper()
                      or "Uncaught" in line]
    assert console_errors == []
    # one canvas per panel; the loss panel draws a series for each of the two runs
    assert dom.stdout.count("<canvas") == 7
    assert 'data-metric="loss"' in dom.stdout and 'data-series="2"' in dom.stdout
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("SCRATCHLLM_SCREENSHOT"):  # how docs/runs-dashboard.png was made
        shutil.copy(shot, os.environ["SCRATCHLLM_SCREENSHOT"])
