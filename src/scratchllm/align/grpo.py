"""`scratchllm align grpo`: Group Relative Policy Optimization with verifiable rewards (Shao et al. 2024).

DeepSeekMath's recipe, with no value model: for each prompt q the policy samples a group of G
replies o_1..o_G, a rule scores them (`align/rewards.py`), and each reply's advantage is its
reward standardised within its group, A_i = (r_i − mean r) / (std r + eps), for every token of
it. The objective, maximised over several inner steps on the same samples, is

    J = mean_i 1/|o_i| Σ_t [ min(ρ_t A_i, clip(ρ_t, 1−ε, 1+ε) A_i) − β·KL_t ],   ρ_t = π(o_t)/π_old(o_t)

with KL_t the k3 estimator against the frozen reference π_ref (the SFT model; for a LoRA policy
the same weights with the adapters off), `align/rl_math.py`. The loss is −J.

How it runs: `GrpoRollouts` feeds the one loop (`train/loop.py`): every `epochs × rows /
batch_size` optimizer steps it samples a fresh rollout through the engine (`align/rollout.py`),
so the loop's optimizer, schedule, accumulation, checkpoints, metrics.jsonl and exact `--resume`
are the same as for every other run. Logged per step: reward_mean, reward_std, kl, clip_frac,
entropy, response_len, rollout_tokens_per_s, groups_with_signal (share of groups whose replies
did not all score the same: only those teach anything).

>>> cfg = apply_overrides(GrpoRunConfig(), ["grpo.group_size=4", "grpo.beta=0.0"])
>>> cfg.grpo.group_size, cfg.grpo.beta, cfg.train.schedule
(4, 0.0, 'constant')
>>> grpo("runs/sft", "gsm8k_train.jsonl", "runs/grpo", ["train.max_steps=50"])  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

import torch

from scratchllm.align.policy import load_policy
from scratchllm.align.rewards import resolve_reward, required_field
from scratchllm.align.rl_math import (clipped_surrogate, group_advantages, k3_kl, masked_mean, token_entropy,
                                      token_logps)
from scratchllm.align.rollout import (PromptCodec, RolloutBatches, eval_mode, forward_rows, pack, pick_prompts,
                                      read_items, sample)
from scratchllm.config import apply_overrides, from_dict
from scratchllm.errors import UserError
from scratchllm.model.config import ModelConfig
from scratchllm.model.lora import ADAPTER_CONFIG, LoraConfig, adapters_disabled
from scratchllm.tokenizer.special import CHAT_TOKENS
from scratchllm.train import checkpoint as ckpt
from scratchllm.train.config import TrainConfig
from scratchllm.train.finetune import FinetuneConfig, is_chat_run, write_adapter_config
from scratchllm.train.loop import TrainResult, check_out_dir, train
from scratchllm.utils.device import resolve_device
from scratchllm.utils.files import read_toml
from scratchllm.utils.outdir import check_output_dir, removed_on_failure


@dataclass
class GrpoConfig:
    sft: str = ""                  # the SFT run: the policy's start and the reference
    data: str = ""                 # {"question", "answer"} (GSM8K) or {"prompt", "answer", ...} lines
    reward: str = "gsm8k"          # align/rewards.py names, summed with "+"
    group_size: int = 8            # G replies per prompt
    prompts_per_rollout: int = 8   # prompts per rollout: rows = prompts_per_rollout × group_size
    epochs: int = 2                # inner passes over each rollout (μ in the paper)
    clip: float = 0.2              # ε of the clipped ratio
    beta: float = 0.04             # weight of the KL to the reference (the paper's 0.04)
    eps: float = 1e-4              # in the group std's denominator
    max_new_tokens: int = 256
    temperature: float = 1.0
    template: Literal["auto", "chat", "plain"] = "auto"   # auto: chat when the SFT run is a chat run
    method: Literal["full", "lora"] = "full"
    lora: LoraConfig = field(default_factory=LoraConfig)


def rl_train_defaults() -> TrainConfig:
    """RL's defaults (GRPO and PPO): a small constant lr (the paper's 1e-6 is for 7B; small models take more), a step a log line."""
    return TrainConfig(batch_size=16, max_steps=100, max_lr=1e-5, min_lr=1e-5, schedule="constant",
                       warmup_steps=0, weight_decay=0.0, eval_every=0, log_every=1, checkpoint_every=50,
                       keep_checkpoints=1, spike_factor=0.0)   # RL losses hover near 0: "spikes" mean nothing


@dataclass
class GrpoRunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=rl_train_defaults)
    grpo: GrpoConfig = field(default_factory=GrpoConfig)


def check_rl_settings(rows: int, batch_size: int, grad_accum: int, epochs: int, clip: float, beta: float,
                      table: str = "grpo", beta_name: str = "beta") -> None:
    """Rollout rows must cut into whole optimizer steps; the clip and β must make sense."""
    if rows % batch_size:
        raise UserError(f"a rollout has {rows} rows, which train.batch_size={batch_size} does not divide; "
                        "make the rows (prompts per rollout × group size) a multiple of the batch size")
    if epochs < 1 or (rows // batch_size * epochs) % grad_accum:
        raise UserError(f"{table}.epochs={epochs} passes of {rows // batch_size} minibatches do not cut into steps of "
                        f"train.grad_accum={grad_accum}; change one of them")
    if not 0 < clip < 1:
        raise UserError(f"{table}.clip must be in (0, 1), got {clip}")
    if beta < 0:
        raise UserError(f"{table}.{beta_name} (the KL weight) must be ≥ 0, got {beta}")


def grpo_loss_fn(clip: float, beta: float) -> Callable:
    """The loop's loss on a rollout minibatch: −J above, and the metrics named in the module docstring."""
    def loss_fn(model: torch.nn.Module, batch: dict):
        ids, mask = batch["ids"], batch["mask"]
        logits = model(ids[:, :-1])
        logp = token_logps(logits, ids[:, 1:])
        surrogate, clipped = clipped_surrogate(logp, batch["old_logp"], batch["advantages"][:, None], clip)
        kl = k3_kl(logp, batch["ref_logp"])
        loss = masked_mean(surrogate + beta * kl, mask, dim=1).mean()   # 1/|o_i| per reply, then mean
        metrics = {"kl": masked_mean(kl.detach(), mask), "clip_frac": masked_mean(clipped.float(), mask),
                   "entropy": masked_mean(token_entropy(logits.detach()), mask), "tokens": mask.sum(),
                   **batch["stats"]}
        return loss, metrics
    return loss_fn


class GrpoRollouts(RolloutBatches):
    """Rollouts of G replies for each of `prompts_per_rollout` prompts, scored, with old and reference log-probs."""

    def __init__(self, trainee, reference: Callable, items: list[dict], prompt_ids: list[list[int]],
                 codec: PromptCodec, cfg: GrpoRunConfig, vocab_size: int):
        g, tc = cfg.grpo, cfg.train
        super().__init__(tc.batch_size, g.epochs, tc.seed)
        self.trainee, self.reference = trainee, reference
        self.engine_model = getattr(trainee, "model", trainee)   # the Transformer under a LoRA view
        self.items, self.prompt_ids, self.codec, self.g = items, prompt_ids, codec, g
        self.reward_fn = resolve_reward(g.reward)
        self.device, self.dtype, self.vocab_size = resolve_device(tc.device), tc.dtype, vocab_size

    def make_rollout(self, index: int):
        g, codec = self.g, self.codec
        picked = [i for i in pick_prompts(len(self.items), index, g.prompts_per_rollout, self.seed)
                  for _ in range(g.group_size)]
        prompts = [self.prompt_ids[i] for i in picked]
        with eval_mode(self.trainee):
            replies, tok_s = sample(self.engine_model, prompts, g.max_new_tokens, codec.stop_id, g.temperature,
                                    seed=self.seed * 1_000_003 + index * len(prompts), vocab_size=self.vocab_size)
            texts = [codec.tokenizer.decode([t for t in r if t != codec.stop_id]) for r in replies]
            rewards = torch.tensor([self.reward_fn(t, self.items[i]) for t, i in zip(texts, picked)])
            ids, mask = pack(prompts, replies)
            bs = self.batch_size
            old = forward_rows(lambda x: token_logps(self.trainee(x[:, :-1]), x[:, 1:]), ids, bs, self.device,
                               self.dtype)
            ref = forward_rows(lambda x: token_logps(self.reference(x[:, :-1]), x[:, 1:]), ids, bs, self.device,
                               self.dtype)
        groups = rewards.view(-1, g.group_size)
        stats = {"reward_mean": rewards.mean().item(), "reward_std": rewards.std().item() if len(rewards) > 1 else 0.0,
                 "response_len": sum(len(r) for r in replies) / len(replies), "rollout_tokens_per_s": tok_s,
                 "groups_with_signal": (groups.max(1).values > groups.min(1).values).float().mean().item()}
        tensors = {"ids": ids, "mask": mask, "old_logp": torch.cat(old) * mask, "ref_logp": torch.cat(ref) * mask,
                   "advantages": group_advantages(rewards, g.group_size, g.eps)}
        return tensors, stats


def frozen_reference(model: torch.nn.Module, trainee: torch.nn.Module, device: torch.device) -> Callable:
    """ids -> logits of π_ref: the base with the adapters off (LoRA), else a frozen copy of the SFT model."""
    if trainee is not model:   # an adapter view: the same weights with every adapter's scaling at 0
        def adapters_off(x):
            with adapters_disabled(model):
                return model(x)
        return adapters_off
    ref = copy.deepcopy(model).to(device).eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    return ref


def resolve_template(template: str, sft: str, tokenizer) -> str:
    """"chat" or "plain": auto picks chat for a chat run whose tokenizer has the chat tokens."""
    if template != "auto":
        return template
    has_chat = all(t in tokenizer.special_tokens for t in CHAT_TOKENS)
    return "chat" if has_chat and is_chat_run(sft) else "plain"


def encode_items(path: str, reward: str, codec: PromptCodec) -> tuple[list[dict], list[list[int]]]:
    """The data lines and their prompts as ids (every prompt checked against the context first)."""
    resolve_reward(reward)   # an unknown reward name fails before the file is read
    items = read_items(path, required_field(reward))
    return items, [codec.encode(item, f"item {n} of {path}") for n, item in enumerate(items, start=1)]


def _config(sft, data, out_dir: Path, overrides: list[str], resume: bool) -> GrpoRunConfig:
    if resume:
        return apply_overrides(from_dict(GrpoRunConfig, read_toml(out_dir / "config.toml", "run config")), overrides)
    if not sft or not data:
        raise UserError("align grpo needs --run SFT (a fine-tuned run) and --data FILE (prompts with answers)")
    sft_cfg = ckpt.load_run(sft).config
    return apply_overrides(GrpoRunConfig(model=sft_cfg.model, grpo=GrpoConfig(sft=str(sft), data=str(data))),
                           overrides)


def grpo(sft: str | None, data: str | None, out_dir: str | Path, overrides: list[str] = (), resume: bool = False,
         force: bool = False, quiet: bool = False, verbose: bool = False) -> TrainResult:
    """GRPO of SFT run `sft` on the prompts of `data` into run directory `out_dir`."""
    out_dir = check_output_dir(out_dir, (*ckpt.RUN_ENTRIES, ADAPTER_CONFIG), force=force)
    with removed_on_failure(out_dir, keep=lambda d: bool(ckpt.list_steps(d))):
        check_out_dir(out_dir, resume)
        cfg = _config(sft, data, out_dir, list(overrides), resume)
        cfg.train.validate()
        g, tc = cfg.grpo, cfg.train
        if g.group_size < 2:
            raise UserError(f"grpo.group_size must be at least 2 (advantages compare replies within a group), "
                            f"got {g.group_size}")
        check_rl_settings(g.group_size * g.prompts_per_rollout, tc.batch_size, tc.grad_accum, g.epochs, g.clip,
                          g.beta)
        tokenizer, model, trainee = load_policy(g.sft, g.method, g.lora, "GRPO")
        g.template = resolve_template(g.template, g.sft, tokenizer)
        cfg = dataclasses.replace(cfg, model=model.config)
        codec = PromptCodec(tokenizer, g.template == "chat", cfg.model.block_size, g.max_new_tokens)
        items, prompt_ids = encode_items(g.data, g.reward, codec)
        device = resolve_device(tc.device)
        model.to(device)
        reference = frozen_reference(model, trainee, device)
        batches = GrpoRollouts(trainee, reference, items, prompt_ids, codec, cfg, tokenizer.vocab_size)
        out_dir.mkdir(parents=True, exist_ok=True)
        tokenizer.save(str(out_dir / "tokenizer.json"))
        if g.method == "lora":
            write_adapter_config(out_dir, FinetuneConfig(method="lora", base=g.sft, lora=g.lora))
        return train(trainee, cfg, batches, out_dir, loss_fn=grpo_loss_fn(g.clip, g.beta), resume=resume,
                     quiet=quiet or not verbose)
