"""The loop's wiring under torchrun, as one process that believes it is rank 0 of two: which
layouts refuse a custom optimizer or another loss, what the layout check and the wrapper are
given, the pipeline built for parallel.pp, and the per-data-rank seed. (The real multi-process
runs are tests/distributed's, under torchrun with gloo.)"""

from __future__ import annotations

import pytest
import torch
from train_helpers import tiny_config

from scratchllm.errors import UserError
from scratchllm.model.transformer import Transformer
from scratchllm.train import distributed, loop
from scratchllm.train.step import next_token_loss


class _RankZeroOfTwo:
    def __init__(self, pc=None):
        self.rank, self.size, self.is_main, self.replicas = 0, 2, True, 1
        self.data_rank, self.data_size = 1, 2        # as if rank 1's data: the seed must follow it


class _Pipeline:
    def __init__(self, raw, pc, grad_accum, device):
        self.args, self.module = (raw, pc, grad_accum, device), torch.nn.Linear(2, 2)


@pytest.fixture
def wiring(monkeypatch):
    seen = {}
    monkeypatch.setattr(distributed, "World", _RankZeroOfTwo)
    monkeypatch.setattr(distributed, "check_layout", lambda *args: seen.setdefault("layout", args))
    monkeypatch.setattr(distributed, "wrap", lambda raw, pc, device: seen.setdefault("wrap", (raw, pc, device)) and raw)
    monkeypatch.setattr(loop, "Pipeline", _Pipeline)
    return seen


def _trainer(tmp_path, *overrides, loss_fn=next_token_loss, optimizer=None):
    cfg = tiny_config("train.device=cpu", *overrides)
    model = Transformer(cfg.model)
    return loop._Trainer(model, cfg, iter([]), tmp_path, loss_fn, None, None, optimizer), model, cfg


def test_data_parallel_checks_the_layout_wraps_the_model_and_seeds_per_data_rank(wiring, tmp_path):
    trainer, model, cfg = _trainer(tmp_path, "parallel.dp=ddp", "train.grad_accum=2", "train.seed=7")
    assert wiring["layout"] == (cfg.parallel, model.config, 2, cfg.train.optimizer)
    assert wiring["wrap"] == (model, cfg.parallel, torch.device("cpu"))
    assert trainer.no_sync is distributed.no_sync and trainer.pipeline is None
    assert torch.initial_seed() == 7 + 1


@pytest.mark.parametrize("layout", [["parallel.dp=fsdp"], ["parallel.tp=2"], ["parallel.pp=2"]])
def test_sharded_layouts_refuse_a_custom_optimizer(wiring, tmp_path, layout):
    with pytest.raises(UserError) as err:
        _trainer(tmp_path, *layout, optimizer=torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1))
    assert str(err.value) == ("parallel.dp=fsdp, parallel.tp and parallel.pp build their optimizer over this rank's "
                              "parameters; use parallel.dp=ddp with a custom optimizer")


def test_data_parallel_takes_a_custom_optimizer(wiring, tmp_path):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    assert _trainer(tmp_path, "parallel.dp=ddp", optimizer=opt)[0].optimizer is opt


def test_the_pipeline_trains_the_next_token_loss_only_and_steps_its_stage(wiring, tmp_path):
    message = ("parallel.pp trains with the next-token loss and without samples; use parallel.dp for other losses, "
               "or set train.sample_every=0")
    for extra, loss_fn in [((), lambda model, batch: next_token_loss(model, batch)), (("train.sample_every=5",), next_token_loss)]:
        with pytest.raises(UserError) as err:
            _trainer(tmp_path, "parallel.pp=2", *extra, loss_fn=loss_fn)
        assert str(err.value) == message
    trainer, model, cfg = _trainer(tmp_path, "parallel.pp=2", "train.grad_accum=4")
    assert trainer.pipeline.args == (model, cfg.parallel, 4, torch.device("cpu"))
    assert trainer.model is trainer.pipeline.module and "wrap" not in wiring
    assert trainer.saver.pipeline is trainer.pipeline            # checkpoints gather the stages
    held = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    assert held == {id(p) for p in trainer.pipeline.module.parameters()}      # this stage's parameters only


def test_the_parallel_table_reaches_the_checkpoint_writer(wiring, tmp_path):
    trainer = _trainer(tmp_path, "parallel.dp=fsdp", "parallel.checkpoint=sharded", "parallel.async_checkpoint=true")[0]
    assert (trainer.saver.sharded, trainer.saver.async_save) == (True, True)
