"""DDP and FSDP2 under torchrun (gloo, 2 CPU processes) against one process on the same global batch."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from scratchllm.train.tracking import read_metrics

HERE = Path(__file__).parent
SRC = HERE.parents[1] / "src"
sys.path.insert(0, str(HERE))
import worker  # noqa: E402


def torchrun(*args, nproc=2, script="worker.py"):
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           str(HERE / script), *map(str, args)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def losses(run_dir):
    return [r["loss"] for r in read_metrics(Path(run_dir) / "metrics.jsonl")]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One process, the whole global batch of 8 rows a step, no accumulation."""
    out = tmp_path_factory.mktemp("one") / "run"
    worker.run(out, "none", 1, 4)
    return losses(out)


def test_ddp_with_accumulation_equals_one_process(tmp_path, reference):
    # 2 ranks x 2 micro-batches of 2 rows (the sync skipped on the first) = one batch of 8 rows
    torchrun(tmp_path / "ddp", "ddp", 2, 4)
    assert losses(tmp_path / "ddp") == pytest.approx(reference, abs=1e-5)
    assert len(reference) == 4 and reference[-1] < reference[0]


@pytest.mark.slow  # one torchrun launch: ~50 s on a busy 2-core machine
def test_ddp_with_muon_equals_one_process_with_muon(tmp_path):
    # every rank orthogonalises the same all-reduced gradient: the update is the one-process one
    worker.run(tmp_path / "one", "none", 1, 4, optimizer="muon")
    torchrun(tmp_path / "ddp", "ddp", 1, 4, "--muon")
    one = losses(tmp_path / "one")
    assert losses(tmp_path / "ddp") == pytest.approx(one, abs=1e-5) and one[-1] < one[0]


@pytest.mark.slow  # two torchrun launches: about two minutes on a busy 2-core machine
def test_fsdp_equals_one_process_and_resumes_at_another_world_size(tmp_path, reference):
    run = tmp_path / "fsdp"
    torchrun(run, "fsdp", 1, 2)
    assert losses(run) == pytest.approx(reference[:2], abs=1e-5)
    # the consolidated checkpoint written by FSDP at 2 ranks continues in one plain process ...
    worker.run(run, "none", 1, 3, resume=True)
    # ... and that one's checkpoint is sharded again over 2 ranks: the losses never notice
    torchrun(run, "fsdp", 1, 4, "--resume")
    assert losses(run) == pytest.approx(reference, abs=1e-5)
