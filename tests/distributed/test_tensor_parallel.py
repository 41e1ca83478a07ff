"""Tensor parallel (and TP + FSDP2 on a 2-D mesh) under torchrun, gloo on CPU, against one whole model."""

import json
import sys
from pathlib import Path

import pytest

from scratchllm.train.memory import plan_memory

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import worker  # noqa: E402
from tp_worker import CONFIGS  # noqa: E402
from test_data_parallel import losses, torchrun  # noqa: E402


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One process, the whole global batch of 8 rows a step."""
    out = tmp_path_factory.mktemp("one") / "run"
    worker.run(out, "none", 1, 4)
    return losses(out)


@pytest.mark.slow  # a torchrun launch of 2 processes: ~50 s on a busy 2-core machine
def test_tp2_forward_and_backward_equal_one_device(tmp_path):
    torchrun(tmp_path / "diff.json", script="tp_worker.py")
    found = json.loads((tmp_path / "diff.json").read_text())
    assert set(found) == {"gpt2/sp=False", "gpt2/sp=True", "llama/sp=False", "llama/sp=True"}
    for name, d in found.items():
        # fp32: the cut model sums the same products in another order (two partial sums + all-reduce)
        assert d["logits"] < 1e-6, name
        assert d["grads"] < 1e-5, name  # relative to the largest gradient; QK-norm's gains included
        assert d["local_q_rows"] == 16  # 4 heads of 8 over 2 ranks: each holds 2 heads' rows of q
        assert d["sharded_params"] > 0
        # the memory planner's tp row: exactly the bytes one rank of the really cut model holds
        planned = {r.layout: r for r in plan_memory(CONFIGS[name.split("/")[0]], batch_size=2, gpus=2)}["tp"]
        assert planned.params_bytes == d["local_param_bytes"], name


@pytest.mark.slow  # a torchrun launch plus a resume: ~45 s
def test_tp2_training_equals_one_process_and_resumes_in_one_process(tmp_path, reference):
    run = tmp_path / "tp"
    # tp=2 with sequence parallel: both ranks see the same 8 rows and compute one model together
    torchrun(run, "none", 1, 2, "--tp", 2, "--sp")
    assert losses(run) == pytest.approx(reference[:2], abs=1e-5)
    # the checkpoint holds whole (gathered) tensors: one plain process continues it
    worker.run(run, "none", 1, 4, resume=True)
    assert losses(run) == pytest.approx(reference, abs=1e-5)


@pytest.mark.slow  # 4 processes on 2 cores: ~60 s
def test_tp2_with_fsdp2_on_a_2d_mesh_equals_one_process(tmp_path, reference):
    # 2 data ranks (FSDP2 shards over them) x 2 tp ranks; gloo has every collective this needs
    torchrun(tmp_path / "2d", "fsdp", 1, 4, "--tp", 2, nproc=4)
    assert losses(tmp_path / "2d") == pytest.approx(reference, abs=1e-5)
