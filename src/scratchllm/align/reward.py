"""`scratchllm align reward`: a reward model from an SFT run and preference pairs (Bradley–Terry).

RLHF's first step (Ouyang et al. 2022): learn r(prompt, reply) such that people's choices are
likely under the Bradley–Terry model, P(chosen ≻ rejected) = σ(r(c) − r(r)); the loss per pair
is −log σ(r(c) − r(r)). The model is the SFT run with a scalar head (`model/heads.py`), trained
through the one loop (`train/loop.py`); its held-out pair accuracy is `val_accuracy` on the
last line of metrics.jsonl (`--val-data` when given, else a held-out split of `--data`).
The run opens with `scratchllm.load(RM)` (checkpoint kind "reward"): `.model.score(tokenizer,
prompt, reply)`.

>>> import torch
>>> loss, metrics = bradley_terry(torch.tensor([2.0, 0.0]), torch.tensor([0.0, 1.0]))
>>> round(loss.item(), 4), metrics["accuracy"].item(), metrics["margin"].item()
(0.7201, 0.5, 0.5)
>>> reward("runs/sft", "pairs.jsonl", "runs/rm")  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F

from scratchllm.config import apply_overrides, from_dict
from scratchllm.data import preference
from scratchllm.errors import UserError
from scratchllm.model.config import ModelConfig
from scratchllm.model.heads import RewardModel
from scratchllm.model.lora import merge_lora
from scratchllm.tokenizer.bpe import Tokenizer
from scratchllm.train import checkpoint as ckpt
from scratchllm.train.config import TrainConfig, short_run_defaults
from scratchllm.train.finetune import is_lora_run
from scratchllm.train.loop import TrainResult, check_out_dir, train
from scratchllm.utils.files import read_toml
from scratchllm.utils.outdir import check_output_dir, removed_on_failure


@dataclass
class RewardConfig:
    sft: str = ""                  # the run the reward model starts from (its transformer)
    data: str = ""
    val_data: str = ""             # held-out pairs; empty: a val_fraction split of `data`
    format: Literal["auto", "pairs", "hh", "llamafactory", "openai"] = "auto"
    drop_identical: bool = False
    val_fraction: float = 0.1
    split_seed: int = 0


def reward_train_defaults() -> TrainConfig:
    """One epoch-ish at a fine-tuning lr (InstructGPT trained its RM for one epoch: more overfits)."""
    return short_run_defaults(max_lr=1e-4, min_lr=1e-5, eval_batches=16)


@dataclass
class RewardRunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=reward_train_defaults)
    reward: RewardConfig = field(default_factory=RewardConfig)


def bradley_terry(chosen: torch.Tensor, rejected: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """Mean −log σ(r(c) − r(r)) and {"accuracy": share with r(c) > r(r), "margin": mean r(c) − r(r)}."""
    diff = chosen - rejected
    return -F.logsigmoid(diff).mean(), {"accuracy": (diff > 0).float().mean(), "margin": diff.detach().mean()}


def last_token_lengths(targets: torch.Tensor) -> torch.Tensor:
    """Real tokens per right-padded row: one past the last target that counts (the reply's end)."""
    positions = torch.arange(targets.shape[1], device=targets.device).expand_as(targets)
    return torch.where(targets != -100, positions, -1).amax(dim=1) + 1


def reward_loss(model: torch.nn.Module, batch: dict):
    """The loop's loss on a pair batch (`data/preference.py`): Bradley–Terry, counted in pairs."""
    scores = model(batch["inputs"], lengths=last_token_lengths(batch["targets"]))
    half = scores.shape[0] // 2
    loss, metrics = bradley_terry(scores[:half], scores[half:])
    return loss, {**metrics, "tokens": half}


def _config(sft, data, out_dir: Path, overrides: list[str], resume: bool) -> RewardRunConfig:
    if resume:
        return apply_overrides(from_dict(RewardRunConfig, read_toml(out_dir / "config.toml", "run config")), overrides)
    if not sft or not data:
        raise UserError("align reward needs --run SFT (a trained run) and --data FILE (preference pairs)")
    sft_cfg = ckpt.load_run(sft).config
    return apply_overrides(RewardRunConfig(model=sft_cfg.model, reward=RewardConfig(sft=str(sft), data=str(data))),
                           overrides)


def reward(sft: str | None, data: str | None, out_dir: str | Path, overrides: list[str] = (), resume: bool = False,
           force: bool = False, quiet: bool = False, verbose: bool = False) -> TrainResult:
    """Train a reward model from run `sft` on pairs `data` into `out_dir`; `verbose` prints the config."""
    out_dir = check_output_dir(out_dir, ckpt.RUN_ENTRIES, force=force)
    with removed_on_failure(out_dir, keep=lambda d: bool(ckpt.list_steps(d))):
        check_out_dir(out_dir, resume)
        cfg = _config(sft, data, out_dir, list(overrides), resume)
        cfg.train.validate()
        run = ckpt.load_run(cfg.reward.sft)
        if not isinstance(run.tokenizer, Tokenizer):
            raise UserError(f"run '{cfg.reward.sft}' has no BPE tokenizer.json; the reward model needs one to render pairs")
        base = merge_lora(run.model) if is_lora_run(cfg.reward.sft) else run.model
        model = RewardModel(base).train()
        cfg = dataclasses.replace(cfg, model=base.config)
        tc = cfg.train
        train_ex, held_ex = preference.encoded_splits(cfg.reward, run.tokenizer, cfg.model.block_size, quiet)
        batches = preference.PairBatches(train_ex, tc.batch_size, seed=tc.seed)
        val = preference.fixed_pair_batches(held_ex, tc.batch_size)[: tc.eval_batches]
        out_dir.mkdir(parents=True, exist_ok=True)
        run.tokenizer.save(str(out_dir / "tokenizer.json"))
        return train(model, cfg, batches, out_dir, loss_fn=reward_loss, val_batches=val, resume=resume,
                     quiet=quiet or not verbose)
