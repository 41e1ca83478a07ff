"""`scratchllm align dpo`: a DPO run from an SFT run and a preference file, through the one loop.

What differs from fine-tuning is supplied here; the loop (`train/loop.py`) does the rest:

- data: `data/preference.py` reads and encodes the pairs; a held-out split (or `--val-data`)
  gives the validation batches, so metrics.jsonl's `val_rewards/accuracies` is held-out.
- the reference: the SFT model's log-probs of every pair, computed once before the first step
  and carried in each batch ("ref"), so no second model sits in memory during training. A
  resumed run recomputes them from the same SFT run (they are a pure function of it).
- the model: `full` trains every weight of the SFT run (a LoRA SFT run is merged first);
  `lora` trains fresh adapters on a plain SFT run through `train/finetune.py`'s `adapt`, so the
  reference is exactly that run with the adapters off (B = 0 at the start).

>>> cfg = apply_overrides(DpoRunConfig(), ["dpo.beta=0.2", "dpo.loss=ipo"])
>>> cfg.dpo.beta, cfg.dpo.loss, cfg.train.max_lr
(0.2, 'ipo', 1e-05)
>>> dpo("runs/sft", "pairs.jsonl", "runs/dpo", ["train.max_steps=100"])  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

from scratchllm.align.dpo import check_settings, dpo_loss_fn, pair_logps
from scratchllm.align.policy import load_policy
from scratchllm.config import apply_overrides, from_dict
from scratchllm.data import preference
from scratchllm.errors import UserError
from scratchllm.model.config import ModelConfig
from scratchllm.model.lora import ADAPTER_CONFIG, LoraConfig
from scratchllm.train import checkpoint as ckpt
from scratchllm.train.config import TrainConfig, short_run_defaults
from scratchllm.train.finetune import FinetuneConfig, write_adapter_config
from scratchllm.train.loop import TrainResult, check_out_dir, train
from scratchllm.utils.device import resolve_device
from scratchllm.utils.files import read_toml
from scratchllm.utils.outdir import check_output_dir, removed_on_failure


@dataclass
class DpoConfig:
    sft: str = ""                  # the SFT run: the policy's start and the reference
    data: str = ""                 # preference pairs (data/preference.py layouts)
    val_data: str = ""             # held-out pairs; empty: a val_fraction split of `data`
    format: Literal["auto", "pairs", "hh", "llamafactory", "openai"] = "auto"
    beta: float = 0.1
    loss: Literal["sigmoid", "ipo", "hinge"] = "sigmoid"
    label_smoothing: float = 0.0   # > 0 with sigmoid: conservative DPO
    drop_identical: bool = False   # skip pairs whose replies are equal (else they are an error)
    val_fraction: float = 0.05
    split_seed: int = 0
    method: Literal["full", "lora"] = "full"
    lora: LoraConfig = field(default_factory=LoraConfig)


def dpo_train_defaults() -> TrainConfig:
    """DPO's defaults: the paper's small constant-ish lr (1e-5 full; LoRA runs want ~1e-4), no decay."""
    return short_run_defaults(max_lr=1e-5, min_lr=1e-6)


@dataclass
class DpoRunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=dpo_train_defaults)
    dpo: DpoConfig = field(default_factory=DpoConfig)


@torch.no_grad()
def reference_logps(model: torch.nn.Module, examples: list, batch_size: int, device: torch.device,
                    average: bool = False) -> torch.Tensor:
    """[N, 2] (chosen, rejected) log-probs of each pair under `model` (eval mode), on the CPU."""
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, len(examples), batch_size):
        batch = preference.collate_pairs(examples[start:start + batch_size])
        chosen, rejected = pair_logps(model, {k: v.to(device) for k, v in batch.items()}, average)
        out.append(torch.stack([chosen, rejected], dim=1).cpu())
    model.train(was_training)
    return torch.cat(out)


def _config(sft, data, out_dir: Path, overrides: list[str], resume: bool) -> DpoRunConfig:
    if resume:
        return apply_overrides(from_dict(DpoRunConfig, read_toml(out_dir / "config.toml", "run config")), overrides)
    if not sft or not data:
        raise UserError("align dpo needs --run SFT (a fine-tuned run) and --data FILE (preference pairs)")
    sft_cfg = ckpt.load_run(sft).config      # checks the SFT run exists before anything else
    return apply_overrides(DpoRunConfig(model=sft_cfg.model, dpo=DpoConfig(sft=str(sft), data=str(data))), overrides)


def dpo(sft: str | None, data: str | None, out_dir: str | Path, overrides: list[str] = (), resume: bool = False,
        force: bool = False, quiet: bool = False, verbose: bool = False) -> TrainResult:
    """DPO of SFT run `sft` on preference pairs `data` into run directory `out_dir`.

    `verbose` prints the resolved config (it is saved to config.toml either way)."""
    out_dir = check_output_dir(out_dir, (*ckpt.RUN_ENTRIES, ADAPTER_CONFIG), force=force)
    with removed_on_failure(out_dir, keep=lambda d: bool(ckpt.list_steps(d))):
        check_out_dir(out_dir, resume)
        cfg = _config(sft, data, out_dir, list(overrides), resume)
        cfg.train.validate()
        d, tc = cfg.dpo, cfg.train
        check_settings(d.beta, d.loss, d.label_smoothing)   # before any work
        tokenizer, model, trainee = load_policy(d.sft, d.method, d.lora, "DPO")
        cfg = dataclasses.replace(cfg, model=model.config)
        train_ex, held_ex = preference.encoded_splits(d, tokenizer, cfg.model.block_size, quiet)
        device = resolve_device(tc.device)
        model.to(device)
        average = d.loss == "ipo"
        # Before the adapters or weights move: the reference is the SFT model itself.
        train_refs = reference_logps(model, train_ex, tc.batch_size, device, average)
        held_refs = reference_logps(model, held_ex, tc.batch_size, device, average)
        batches = preference.PairBatches(train_ex, tc.batch_size, seed=tc.seed, refs=train_refs)
        val = preference.fixed_pair_batches(held_ex, tc.batch_size, held_refs)[: tc.eval_batches]
        out_dir.mkdir(parents=True, exist_ok=True)
        tokenizer.save(str(out_dir / "tokenizer.json"))
        if d.method == "lora":
            write_adapter_config(out_dir, FinetuneConfig(method="lora", base=d.sft, lora=d.lora))
        return train(trainee, cfg, batches, out_dir, loss_fn=dpo_loss_fn(d.beta, d.loss, d.label_smoothing),
                     val_batches=val, resume=resume, quiet=quiet or not verbose)

