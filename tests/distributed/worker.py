"""Run by torchrun in the distributed tests (and in-process for the one-process reference):
train a tiny model on a fixed, resumable stream of global batches, each rank its share.

    python -m torch.distributed.run --standalone --nproc-per-node 2 worker.py OUT DP ACCUM STEPS [--resume] [--muon] [--tp K] [--sp] [--pp M SCHEDULE]
        [--sharded] [--async]      (DCP checkpoints after every step; --async: written in the background)
"""

import sys

import torch

from scratchllm.model.config import ModelConfig
from scratchllm.model.transformer import Transformer
from scratchllm.train import checkpoint as ckpt
from scratchllm.train import distributed
from scratchllm.train.config import ParallelConfig, RunConfig, TrainConfig
from scratchllm.train.loop import train

GLOBAL_ROWS, BLOCK, VOCAB = 8, 8, 64


class GlobalBatches:
    """Step s's global batch is fixed by s alone; a rank takes its rows, cut into `accum` micro-batches."""

    def __init__(self, rank: int, world: int, accum: int):
        self.rank, self.world, self.accum, self.calls = rank, world, accum, 0

    def __next__(self):
        step, micro = divmod(self.calls, self.accum)
        self.calls += 1
        g = torch.Generator().manual_seed(step)
        # counting sequences from random starts: learnable, so a few steps lower the loss
        rows = (torch.randint(0, VOCAB, (GLOBAL_ROWS, 1), generator=g) + torch.arange(BLOCK + 1)) % VOCAB
        per_rank = GLOBAL_ROWS // self.world
        mine = rows[self.rank * per_rank:(self.rank + 1) * per_rank]
        part = mine[micro * per_rank // self.accum:(micro + 1) * per_rank // self.accum]
        return part[:, :-1], part[:, 1:]

    def state_dict(self):
        return {"step": self.calls // self.accum}  # global steps: valid at any world size

    def load_state_dict(self, state):
        self.calls = state["step"] * self.accum


def run(out, dp="none", accum=1, steps=4, resume=False, optimizer="adamw", tp=1, sp=False, pp=1, schedule="1f1b",
        sharded=False, async_save=False):
    model_cfg = ModelConfig(vocab_size=VOCAB, block_size=BLOCK, n_layer=2, n_head=2, n_embd=16)
    cfg = RunConfig(model=model_cfg, parallel=ParallelConfig(dp=dp, tp=tp, sequence_parallel=sp, pp=pp, pp_schedule=schedule,
                                                      checkpoint="sharded" if sharded else "full",
                                                      async_checkpoint=async_save),
                    train=TrainConfig(device="cpu", batch_size=GLOBAL_ROWS // accum, grad_accum=accum,
                                      max_steps=steps, warmup_steps=1, schedule="constant", max_lr=1e-2, log_every=1,
                                      eval_every=0, checkpoint_every=1 if sharded else 0, progress=False, seed=0,
                                      keep_checkpoints=10, optimizer=optimizer))
    world = distributed.setup(cfg.parallel, GLOBAL_ROWS, torch.device("cpu"))
    ckpt.seed_everything(0)
    model = Transformer(model_cfg)
    return train(model, cfg, GlobalBatches(world.data_rank, world.data_size, accum), out, resume=resume, quiet=True)


if __name__ == "__main__":
    out, dp, accum, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    tp = int(sys.argv[sys.argv.index("--tp") + 1]) if "--tp" in sys.argv else 1
    pp, schedule = (int(sys.argv[sys.argv.index("--pp") + 1]), sys.argv[sys.argv.index("--pp") + 2]) \
        if "--pp" in sys.argv else (1, "1f1b")
    run(out, dp, accum, steps, resume="--resume" in sys.argv, optimizer="muon" if "--muon" in sys.argv else "adamw",
        tp=tp, sp="--sp" in sys.argv, pp=pp, schedule=schedule, sharded="--sharded" in sys.argv,
        async_save="--async" in sys.argv)
    distributed.shutdown()
