"""Pipeline parallelism on PyTorch's own `torch.distributed.pipelining`: the blocks split into M stages, one a rank.

    torchrun --nproc-per-node 2 -m scratchllm train --preset tiny-cpu parallel.pp=2 train.grad_accum=4
    torchrun --nproc-per-node 4 -m scratchllm train ... parallel.pp=4 parallel.pp_schedule=gpipe

Stage s holds a contiguous run of blocks (the first stages one more when they do not divide
evenly); the embeddings ride with the first stage, the final norm and the head with the last.
An optimizer step's `train.grad_accum` micro-batches are the pipeline's micro-batches: stage s
sends its activations to s+1 and receives their gradients back. GPipe runs every forward, then
every backward (all micro-batches' activations alive at once); 1F1B starts backward as soon as
the last stage can, so a stage keeps at most M micro-batches' activations (it needs grad_accum ≥ M).

`Pipeline.step` replaces `accumulate_gradients` inside the one loop's step; the loop still clips,
schedules and steps the optimizer (over this stage's parameters). Tied embeddings (GPT-2: one
matrix read by the first stage and written by the last) live on both; their two gradients are
summed after every step, so the copies stay equal. Every rank builds the whole model (same seed,
same weights) and keeps its stage's modules: checkpoints gather the stages into the usual
consolidated files, so a pipelined run resumes at any layout, and every other command reads it.

This module knows stages, schedules and point-to-point traffic; it knows nothing of data or files.

>>> [list(r) for r in stage_blocks(n_layer=5, stages=2)]
[[0, 1, 2], [3, 4]]
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.pipelining import PipelineStage, Schedule1F1B, ScheduleGPipe

from scratchllm.errors import UserError
from scratchllm.train.config import ParallelConfig
from scratchllm.train.optim import param_groups
from scratchllm.train.step import token_cross_entropy


def stage_blocks(n_layer: int, stages: int) -> list[range]:
    """Contiguous block ranges, one per stage; the first `n_layer % stages` stages take one more."""
    base, extra = divmod(n_layer, stages)
    out, start = [], 0
    for s in range(stages):
        size = base + (s < extra)
        out.append(range(start, start + size))
        start += size
    return out


def check_pipeline(pc: ParallelConfig, n_layer: int, grad_accum: int) -> None:
    """Refuse a pipeline the model cannot run (every rank checks, before any collective)."""
    if pc.pp > n_layer:
        raise UserError(f"parallel.pp={pc.pp} is larger than model.n_layer={n_layer}: every stage needs a block; "
                        f"pass parallel.pp of at most {n_layer}")
    if pc.pp_schedule == "1f1b" and grad_accum < pc.pp:
        raise UserError(f"parallel.pp_schedule=1f1b needs train.grad_accum >= parallel.pp={pc.pp} micro-batches, "
                        f"got {grad_accum}; raise train.grad_accum or pass parallel.pp_schedule=gpipe")


class StageModule(nn.Module):
    """One stage of a `Transformer`: its blocks, with the embeddings (first) or final norm and head (last).

    Its parameter names are the whole model's (`blocks.3.attn.q.weight`), so a stage's state
    dict is a part of the model's.
    """

    def __init__(self, model: nn.Module, blocks: range, first: bool, last: bool):
        super().__init__()
        self._model = [model]  # a list: the whole model's position helpers, not registered as a submodule
        self.first, self.last = first, last
        self.blocks = nn.ModuleDict({str(i): model.blocks[i] for i in blocks})
        if first:
            self.tok_emb, self.drop = model.tok_emb, model.drop
            if hasattr(model, "pos_emb"):
                self.pos_emb = model.pos_emb
        if last:
            self.norm_f, self.lm_head = model.norm_f, model.lm_head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """token ids [B, T] (first stage) or the residual stream [B, T, d] → the stream, or logits (last)."""
        model = self._model[0]
        T = x.shape[1]
        if self.first:
            ids, x = x, self.tok_emb(x)
            if model.config.position in ("learned", "sinusoidal"):
                x = x + model._position_embedding(None, 0, T, ids.device)
            x = self.drop(x)
        rope = model._rope(None, 0, T)
        for block in self.blocks.values():
            x, _ = block(x, rope)
        if not self.last:
            return x
        logits = self.lm_head(self.norm_f(x))
        cap = model.config.logit_softcap
        return cap * torch.tanh(logits / cap) if cap else logits


class Pipeline:
    """This rank's stage of the model and the schedule that runs a step's micro-batches through all stages."""

    def __init__(self, model: nn.Module, pc: ParallelConfig, grad_accum: int, device: torch.device):
        self.rank, self.stages = dist.get_rank(), pc.pp
        self.first, self.last = self.rank == 0, self.rank == self.stages - 1
        mine = stage_blocks(len(model.blocks), self.stages)[self.rank]
        self.module = StageModule(model, mine, self.first, self.last)
        self.stage = PipelineStage(self.module, self.rank, self.stages, device)
        schedule = {"gpipe": ScheduleGPipe, "1f1b": Schedule1F1B}[pc.pp_schedule]
        # scale_grads: each micro-batch's gradient divided by their number, as accumulate_gradients does
        self.schedule = schedule(self.stage, n_microbatches=grad_accum, loss_fn=token_cross_entropy, scale_grads=True)
        self.eval_schedule = ScheduleGPipe(self.stage, n_microbatches=1, loss_fn=token_cross_entropy)
        self.tied = model.lm_head.weight if model.config.tie_embeddings else None
        # first and last stage both hold a tied matrix; their group sums its gradient
        self.tied_group = dist.new_group([0, self.stages - 1]) if self.tied is not None else None

    def _run(self, run, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """One pass through all stages (`run`: the schedule's step or eval); the mean loss on every rank.

        Only the first stage reads the inputs and only the last the targets (it computes the loss
        and broadcasts it, one small collective a step)."""
        losses: list[torch.Tensor] = []
        if self.first:
            run(inputs)
        elif self.last:
            run(target=targets, losses=losses)
        else:
            run()
        loss = torch.stack(losses).mean().detach() if losses else torch.zeros((), device=inputs.device)
        dist.broadcast(loss, src=self.stages - 1)
        return loss

    def step(self, micro_batches: list) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward and backward of one optimizer step's micro-batches; (mean loss, tokens counted)."""
        inputs = torch.cat([b[0] for b in micro_batches])
        targets = torch.cat([b[1] for b in micro_batches])
        loss = self._run(self.schedule.step, inputs, targets)
        if self.tied_group is not None and self.tied.grad is not None:
            dist.all_reduce(self.tied.grad, group=self.tied_group)
        return loss, (targets != -100).sum()

    @torch.no_grad()
    def evaluate(self, val_batches, device: torch.device) -> dict[str, float]:
        """Token-weighted mean loss over fixed validation batches (each one forward pass through the stages)."""
        was_training = self.module.training
        self.module.eval()
        total = count = 0.0
        for inputs, targets in val_batches:
            n = int((targets != -100).sum())
            total += float(self._run(self.eval_schedule.eval, inputs.to(device), targets.to(device))) * n
            count += n
        self.module.train(was_training)
        return {"loss": total / max(count, 1)}

    def clip_grad_norm_(self, max_norm: float) -> torch.Tensor:
        """The global gradient norm over all stages (a tied matrix counted once), clipped to `max_norm`."""
        grads = [p.grad for p in self.module.parameters() if p.grad is not None]
        # the tied matrix's gradient (already summed) sits on the first and the last stage: count it on the first
        counted = [g for g in grads if self.first or self.tied is None or g is not self.tied.grad]
        square = torch.stack([g.float().square().sum() for g in counted]).sum()
        dist.all_reduce(square)
        total = square.sqrt()
        scale = (max_norm / (total + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(scale.to(g.dtype))
        return total

    def gather_state(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
        """Every stage's weights and AdamW state, keyed by the whole model's names, on rank 0 ({} elsewhere)."""
        full_name = {id(p): n for n, p in model.named_parameters()}  # a tied matrix: its first name
        weights = {n: t.detach().cpu() for n, t in self.module.state_dict().items()}
        moments = {full_name[id(p)]: {k: v.cpu() for k, v in optimizer.state[p].items()}
                   for group in optimizer.param_groups for p in group["params"] if p in optimizer.state}
        parts: list[Any] = [None] * self.stages
        dist.gather_object((weights, moments), parts if self.rank == 0 else None, dst=0)
        if self.rank:
            return {}, {}
        return {k: v for w, _ in parts for k, v in w.items()}, {k: v for _, m in parts for k, v in m.items()}


def one_process_optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer, moments: dict) -> dict:
    """The gathered AdamW state as a one-process `make_optimizer(model)` would save it (parameters numbered).

    The stages' optimizers have the same groups (decayed, not decayed) and settings as a one-process
    optimizer over the whole model; only which parameters each group holds differs.
    """
    order = [n for group in param_group_names(model) for n in group]
    index = {n: i for i, n in enumerate(order)}
    groups = [{**{k: v for k, v in g.items() if k != "params"}, "params": [index[n] for n in names]}
              for g, names in zip(optimizer.param_groups, param_group_names(model))]
    return {"state": {index[n]: s for n, s in moments.items()}, "param_groups": groups}


def stage_optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer, saved: dict) -> dict:
    """A one-process optimizer file's state cut down to this stage's optimizer (the inverse of the above)."""
    order = [n for group in param_group_names(model) for n in group]
    full_name = {id(p): n for n, p in model.named_parameters()}
    mine = [full_name[id(p)] for group in optimizer.param_groups for p in group["params"]]
    by_name = {order[int(i)]: s for i, s in saved["state"].items()}
    groups, i = [], 0
    for saved_group, group in zip(saved["param_groups"], optimizer.param_groups):
        groups.append({**{k: v for k, v in saved_group.items() if k != "params"},
                       "params": list(range(i, i + len(group["params"])))})
        i += len(group["params"])
    return {"state": {j: by_name[n] for j, n in enumerate(mine) if n in by_name}, "param_groups": groups}


def param_group_names(model: nn.Module) -> list[list[str]]:
    """The names in each of `make_optimizer(model)`'s groups, in its order (a tied matrix by its first name)."""
    full_name = {id(p): n for n, p in model.named_parameters()}
    return [[full_name[id(p)] for p in group["params"]] for group in param_groups(model, 0.0)]
