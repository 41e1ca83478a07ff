"""Sharded checkpoints (torch.distributed.checkpoint): exact resume at another world size, async saves,
and consolidation to the usual files that every other command reads."""

import shutil
import sys
from pathlib import Path

import pytest
import torch

from scratchllm.cli import main
from scratchllm.train import checkpoint as ckpt

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import worker  # noqa: E402
from test_data_parallel import losses, torchrun  # noqa: E402


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One process, the whole global batch of 8 rows a step, the usual checkpoint."""
    out = tmp_path_factory.mktemp("one") / "run"
    worker.run(out, "none", 1, 4)
    return losses(out)


def test_one_process_sharded_save_resumes_exactly_and_consolidates(tmp_path, reference):
    run = tmp_path / "run"
    worker.run(run, "none", 1, 2, sharded=True)
    step = ckpt.find_checkpoint(run)
    assert step.state["kind"] == "sharded" and (step.path / "dcp" / ".metadata").is_file()
    assert not (step.path / "model.safetensors").exists()
    sharded_weights = ckpt.load_run(run).model.state_dict()  # generate/eval read DCP directly
    assert main(["consolidate", "--run", str(run)]) == 0
    plain = ckpt.find_checkpoint(run)
    assert "kind" not in plain.state and plain.has_optimizer
    for name, tensor in ckpt.load_run(run).model.state_dict().items():
        assert torch.equal(tensor, sharded_weights[name]), name
    worker.run(run, "none", 1, 4, resume=True)  # the consolidated optimizer state continues exactly
    assert losses(run) == pytest.approx(reference, abs=1e-6)


def test_consolidating_twice_is_one_sentence(tmp_path, capsys):
    worker.run(tmp_path / "run", "none", 1, 1)
    assert main(["consolidate", "--run", str(tmp_path / "run")]) == 2
    assert "already consolidated" in capsys.readouterr().err


@pytest.mark.slow  # torchrun at 2 and at 4 processes: ~3 min on a busy 2-core machine
def test_fsdp_sharded_async_save_at_2_resumes_at_1_and_at_4(tmp_path, reference):
    run = tmp_path / "at2"
    # a DCP save after every step, each written in the background while the next step runs
    torchrun(run, "fsdp", 1, 2, "--sharded", "--async")
    assert ckpt.list_steps(run) == [1, 2] and ckpt.find_checkpoint(run).state["kind"] == "sharded"
    assert losses(run) == pytest.approx(reference[:2], abs=1e-5)
    at4 = tmp_path / "at4"
    shutil.copytree(run, at4)
    worker.run(run, "none", 1, 4, resume=True, sharded=True)  # one plain process reads the 2 ranks' shards
    assert losses(run) == pytest.approx(reference, abs=1e-5)
    torchrun(at4, "fsdp", 1, 4, "--sharded", "--resume", nproc=4)  # 4 ranks re-cut them
    assert losses(at4) == pytest.approx(reference, abs=1e-5)
