"""A layout the launch cannot run fails on every rank with one sentence, before any collective (no hang)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"


LAYOUTS = [
    (["parallel.dp=ddp", "train.batch_size=3"], "train.batch_size=3 does not divide over 2 ranks"),
    (["parallel.tp=2", "model.n_head=3", "model.n_embd=48"], "parallel.tp=2 does not divide model.n_head=3"),
    (["parallel.pp=2", "model.n_layer=1"], "parallel.pp=2 is larger than model.n_layer=1"),
]


@pytest.mark.slow  # a torchrun launch each: ~45 s on a busy 2-core machine (the check itself is instant)
@pytest.mark.parametrize("overrides, said", LAYOUTS, ids=["batch", "tp-heads", "pp-blocks"])
def test_a_layout_the_launch_cannot_run_fails_on_every_rank(tmp_path, overrides, said):
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "--tee=3",
           "-m", "scratchllm", "train", "--out", str(tmp_path / "run"), *overrides, "train.progress=false"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode != 0
    lines = [line for line in done.stdout.splitlines() + done.stderr.splitlines() if f"error: {said}" in line]
    # Every rank checks before any collective; torchrun stops the others once the first exits, so
    # one or both lines are printed (a race), and no rank is left waiting.
    assert {line.split("]")[0] for line in lines} & {"[default0", "[default1"}, done.stderr[-2000:]
    from_ranks = [line for line in done.stderr.splitlines() if line.startswith("[default")]
    assert not any("Traceback" in line for line in from_ranks)  # torchrun's own summary may have one
    assert not (tmp_path / "run").exists()
