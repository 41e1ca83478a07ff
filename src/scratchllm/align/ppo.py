"""`scratchllm align ppo`: RLHF with PPO against a reward model (Ouyang et al. 2022).

The recipe of InstructGPT as "The N implementation details of RLHF with PPO" (Huang et al.
2024) spells it out: the policy (the SFT model) with a value head (`model/heads.py
PolicyValueModel`) samples one reply per prompt through the engine; the reward model
(`align reward`) scores the whole reply once, at its last token; every token pays a KL
penalty to the frozen reference, so the per-token reward is

    r_t = −β·(log π_old(y_t) − log π_ref(y_t))  (+ RM score at the reply's last token)

with β fixed or steered by Ziegler et al.'s adaptive controller toward `kl_target` (per reply,
nats). GAE(γ, λ) turns rewards and values into advantages, whitened over the rollout; then
`epochs` passes of shuffled minibatches minimise the clipped surrogate plus `vf_coef` × the
clipped value loss (`align/rl_math.py`). `PpoRollouts` feeds the one loop (`train/loop.py`),
as GRPO's do, so checkpoints, metrics.jsonl and exact `--resume` (β included) are the loop's.
Logged: score_mean (the RM's), kl (per reply), kl_coef, entropy, clip_frac, value_loss,
value_clip_frac, approx_kl (½·mean (log π − log π_old)²), response_len, rollout_tokens_per_s.

The reward model must read the same tokens as the policy (same tokenizer): one trained on
another tokenizer would score ids it never saw, so it is refused. The policy trains in full
(a LoRA SFT run is merged first); the saved run opens with `scratchllm.load` as the policy.

>>> cfg = apply_overrides(PpoRunConfig(), ["ppo.kl_coef=0.1", "ppo.kl_target=6"])
>>> cfg.ppo.kl_coef, cfg.ppo.kl_target, cfg.ppo.lam
(0.1, 6.0, 0.95)
>>> ppo("runs/sft", "runs/rm", "prompts.jsonl", "runs/ppo")  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

import torch

from scratchllm.align.grpo import check_rl_settings, resolve_template, rl_train_defaults
from scratchllm.align.pairs import same_tokens
from scratchllm.align.policy import load_policy
from scratchllm.align.rl_math import (AdaptiveKL, clipped_surrogate, clipped_value_loss, gae, masked_mean,
                                      token_entropy, token_logps, whiten)
from scratchllm.align.rollout import (PromptCodec, RolloutBatches, eval_mode, forward_rows, pack, pick_prompts,
                                      read_items, sample)
from scratchllm.config import apply_overrides, from_dict
from scratchllm.errors import UserError
from scratchllm.model.config import ModelConfig
from scratchllm.model.heads import PolicyValueModel, RewardModel
from scratchllm.model.lora import LoraConfig
from scratchllm.train import checkpoint as ckpt
from scratchllm.train.config import TrainConfig
from scratchllm.train.loop import TrainResult, check_out_dir, train
from scratchllm.utils.device import resolve_device
from scratchllm.utils.files import read_toml
from scratchllm.utils.outdir import check_output_dir, removed_on_failure


@dataclass
class PpoConfig:
    sft: str = ""                  # the SFT run: the policy's start and the reference
    reward: str = ""               # the reward model run (align reward)
    prompts: str = ""              # {"prompt": ...} lines
    prompts_per_rollout: int = 64  # one reply each
    epochs: int = 4                # passes over each rollout
    clip: float = 0.2              # ε of the policy ratio
    value_clip: float = 0.2        # how far a value may move from its rollout value per update
    vf_coef: float = 0.1           # weight of the value loss
    kl_coef: float = 0.05          # β (the start value when kl_target > 0)
    kl_target: float = 0.0         # > 0: adaptive β toward this KL per reply (Ziegler et al. used 6)
    kl_horizon: int = 10_000       # samples over which the adaptive β may move by ±20%
    gamma: float = 1.0
    lam: float = 0.95
    missing_eos_penalty: float = 0.0   # subtracted from the score of a reply that never stopped
    max_new_tokens: int = 64
    temperature: float = 1.0
    template: Literal["auto", "chat", "plain"] = "auto"


@dataclass
class PpoRunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=rl_train_defaults)
    ppo: PpoConfig = field(default_factory=PpoConfig)


def ppo_loss_fn(clip: float, value_clip: float, vf_coef: float) -> Callable:
    """The loop's loss on a rollout minibatch: clipped surrogate + vf_coef × clipped value loss."""
    def loss_fn(model: torch.nn.Module, batch: dict):
        ids, mask = batch["ids"], batch["mask"]
        logits, values = model(ids[:, :-1])
        logp = token_logps(logits, ids[:, 1:])
        surrogate, clipped = clipped_surrogate(logp, batch["old_logp"], batch["advantages"], clip)
        value_loss, value_clipped = clipped_value_loss(values, batch["old_values"], batch["returns"], value_clip)
        policy_loss, critic_loss = masked_mean(surrogate, mask), masked_mean(value_loss, mask)
        metrics = {"policy_loss": policy_loss.detach(), "value_loss": critic_loss.detach(),
                   "clip_frac": masked_mean(clipped.float(), mask),
                   "value_clip_frac": masked_mean(value_clipped.float(), mask),
                   "approx_kl": masked_mean(0.5 * (logp.detach() - batch["old_logp"]) ** 2, mask),
                   "entropy": masked_mean(token_entropy(logits.detach()), mask), "tokens": mask.sum(),
                   **batch["stats"]}
        return policy_loss + vf_coef * critic_loss, metrics
    return loss_fn


class PpoRollouts(RolloutBatches):
    """One reply per prompt, scored by the reward model, with KL-penalised per-token rewards and GAE."""

    def __init__(self, trainee: PolicyValueModel, reference, reward_model: RewardModel, items, prompt_ids,
                 codec: PromptCodec, cfg: PpoRunConfig, vocab_size: int):
        p, tc = cfg.ppo, cfg.train
        super().__init__(tc.batch_size, p.epochs, tc.seed)
        self.trainee, self.reference, self.reward_model = trainee, reference, reward_model
        self.items, self.prompt_ids, self.codec, self.p = items, prompt_ids, codec, p
        self.kl = AdaptiveKL(p.kl_coef, p.kl_target, p.kl_horizon)
        self.device, self.dtype, self.vocab_size = resolve_device(tc.device), tc.dtype, vocab_size

    def extra_state(self) -> dict:
        return {"kl_coef": self.kl.beta}

    def load_extra_state(self, state: dict) -> None:
        self.kl.beta = state.get("kl_coef", self.kl.beta)

    def _scores(self, ids: torch.Tensor, prompts, replies) -> torch.Tensor:
        """The RM's score of each (prompt, reply) without its stop token, as the RM was trained."""
        stop = self.codec.stop_id
        lengths = torch.tensor([len(p) + len(r) - (1 if r and r[-1] == stop else 0) for p, r in zip(prompts, replies)])
        out = []
        for start in range(0, ids.shape[0], self.batch_size):
            rows = slice(start, start + self.batch_size)
            out.append(self.reward_model(ids[rows].to(self.device), lengths=lengths[rows].to(self.device)).cpu())
        scores = torch.cat(out).float()
        unfinished = torch.tensor([not r or r[-1] != stop for r in replies])
        return scores - self.p.missing_eos_penalty * unfinished

    def make_rollout(self, index: int):
        p, codec = self.p, self.codec
        prompts = [self.prompt_ids[i] for i in pick_prompts(len(self.items), index, p.prompts_per_rollout, self.seed)]
        with eval_mode(self.trainee), torch.no_grad():
            replies, tok_s = sample(self.trainee.base, prompts, p.max_new_tokens, codec.stop_id, p.temperature,
                                    seed=self.seed * 1_000_003 + index * len(prompts), vocab_size=self.vocab_size)
            ids, mask = pack(prompts, replies)
            policy = forward_rows(lambda x: _logps_and_values(self.trainee(x[:, :-1]), x), ids, self.batch_size,
                                  self.device, self.dtype)
            ref = forward_rows(lambda x: token_logps(self.reference(x[:, :-1]), x[:, 1:]), ids, self.batch_size,
                               self.device, self.dtype)
            scores = self._scores(ids, prompts, replies)
        old_logp = torch.cat([lp for lp, _ in policy]) * mask
        values = torch.cat([v for _, v in policy]) * mask
        kl = (old_logp - torch.cat(ref) * mask) * mask          # per-token log-ratio: the penalty's estimate
        rewards = -self.kl.beta * kl
        last = mask.long().cumsum(1).argmax(1)                  # each reply's last token
        rewards[torch.arange(len(replies)), last] += scores
        advantages, returns = gae(rewards, values, mask, p.gamma, p.lam)
        kl_per_reply = kl.sum(1).mean().item()
        stats = {"score_mean": scores.mean().item(), "score_std": scores.std().item() if len(scores) > 1 else 0.0,
                 "kl": kl_per_reply, "kl_coef": self.kl.beta, "rollout_tokens_per_s": tok_s,
                 "response_len": sum(len(r) for r in replies) / len(replies)}
        self.kl.update(kl_per_reply, len(replies))
        tensors = {"ids": ids, "mask": mask, "old_logp": old_logp, "old_values": values, "returns": returns,
                   "advantages": whiten(advantages, mask)}
        return tensors, stats


def _logps_and_values(out, x):
    logits, values = out
    return token_logps(logits, x[:, 1:]), values


def _config(sft, reward, prompts, out_dir: Path, overrides: list[str], resume: bool) -> PpoRunConfig:
    if resume:
        return apply_overrides(from_dict(PpoRunConfig, read_toml(out_dir / "config.toml", "run config")), overrides)
    if not sft or not reward or not prompts:
        raise UserError("align ppo needs --run SFT (a fine-tuned run), --reward RM (a reward model run) and "
                        "--prompts FILE")
    sft_cfg = ckpt.load_run(sft).config
    return apply_overrides(PpoRunConfig(model=sft_cfg.model, ppo=PpoConfig(sft=str(sft), reward=str(reward),
                                                                          prompts=str(prompts))), overrides)


def load_reward_model(rm_dir: str, sft: str, tokenizer, device) -> RewardModel:
    """The frozen reward model, refused when it is not one or reads other tokens than the policy."""
    rm = ckpt.load_run(rm_dir)
    if not isinstance(rm.model, RewardModel):
        raise UserError(f"'{rm_dir}' is not a reward model; train one with scratchllm align reward")
    if rm.tokenizer is None or not same_tokens(tokenizer, rm.tokenizer):
        raise UserError(f"the reward model '{rm_dir}' uses another tokenizer than '{sft}'; train the reward "
                        f"model from this run (scratchllm align reward --run {sft} ...)")
    for param in rm.model.parameters():
        param.requires_grad_(False)
    return rm.model.to(device).eval()


def ppo(sft: str | None, reward: str | None, prompts: str | None, out_dir: str | Path, overrides: list[str] = (),
        resume: bool = False, force: bool = False, quiet: bool = False, verbose: bool = False) -> TrainResult:
    """PPO of SFT run `sft` against reward model `reward` on the prompts of `prompts`, into `out_dir`."""
    out_dir = check_output_dir(out_dir, ckpt.RUN_ENTRIES, force=force)
    with removed_on_failure(out_dir, keep=lambda d: bool(ckpt.list_steps(d))):
        check_out_dir(out_dir, resume)
        cfg = _config(sft, reward, prompts, out_dir, list(overrides), resume)
        cfg.train.validate()
        p, tc = cfg.ppo, cfg.train
        check_rl_settings(p.prompts_per_rollout, tc.batch_size, tc.grad_accum, p.epochs, p.clip, p.kl_coef, "ppo",
                          "kl_coef")
        tokenizer, model, _ = load_policy(p.sft, "full", LoraConfig(), "PPO")
        device = resolve_device(tc.device)
        reward_model = load_reward_model(p.reward, p.sft, tokenizer, device)
        p.template = resolve_template(p.template, p.sft, tokenizer)
        cfg = dataclasses.replace(cfg, model=model.config)
        codec = PromptCodec(tokenizer, p.template == "chat", cfg.model.block_size, p.max_new_tokens)
        items = read_items(p.prompts)
        prompt_ids = [codec.encode(item, f"item {n} of {p.prompts}") for n, item in enumerate(items, start=1)]
        trainee = PolicyValueModel(model).to(device)
        reference = copy.deepcopy(model).eval()
        for param in reference.parameters():
            param.requires_grad_(False)
        batches = PpoRollouts(trainee, reference, reward_model, items, prompt_ids, codec, cfg, tokenizer.vocab_size)
        out_dir.mkdir(parents=True, exist_ok=True)
        tokenizer.save(str(out_dir / "tokenizer.json"))
        return train(trainee, cfg, batches, out_dir, loss_fn=ppo_loss_fn(p.clip, p.value_clip, p.vf_coef),
                     resume=resume, quiet=quiet or not verbose)
