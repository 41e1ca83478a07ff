"""A layout the launch cannot run fails on every rank with one sentence, before any collective (no hang)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.mark.slow  # a torchrun launch: ~45 s on a busy 2-core machine (the check itself is instant)
def test_batch_that_does_not_divide_over_the_ranks_fails_on_every_rank(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "--tee=3",
           "-m", "scratchllm", "train", "--out", str(tmp_path / "run"), "parallel.dp=ddp", "train.batch_size=3",
           "train.progress=false"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    said = [line for line in done.stdout.splitlines() + done.stderr.splitlines()
            if "error: train.batch_size=3 does not divide over 2 ranks" in line]
    # Every rank checks before any collective; torchrun stops the others once the first exits, so
    # one or both lines are printed (a race), and no rank is left waiting.
    assert {line.split("]")[0] for line in said} & {"[default0", "[default1"}, done.stderr[-2000:]
    from_ranks = [line for line in done.stderr.splitlines() if line.startswith("[default")]
    assert not any("Traceback" in line for line in from_ranks)  # torchrun's own summary may have one
    assert not (tmp_path / "run").exists()
