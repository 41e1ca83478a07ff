"""Supervised fine-tuning (SFT) of a trained run on conversations: full, LoRA or QLoRA.

What `scratchllm finetune` runs. The one loop (`train/loop.py`) does the training; this module
supplies what differs from pretraining:

- data: `data/chat.py` reads the conversations, holds out a split, packs rows; the loss is
  `chat_loss`, cross-entropy on the assistant's tokens only, so `val_loss` in metrics.jsonl is
  the held-out assistant-token loss.
- the model: `full` trains every weight (and writes a plain run); `lora` freezes the base and
  trains `model/lora.py` adapters; `qlora` stores the frozen base in NF4 (`model/nf4.py`) first.
  A LoRA run's checkpoints hold the adapters only, and `adapter_config.json` names the base run,
  which `scratchllm.load` (kind "lora") opens underneath.
- chat tokens: a base tokenizer without them (a GPT-2 import) gets them added for `full`
  (new embedding rows set to the mean embedding, so they start as an "average token" rather than
  noise); LoRA/QLoRA cannot grow a frozen base, so they say to fine-tune fully first.

>>> cfg = apply_overrides(FinetuneRunConfig(), ["finetune.method=qlora", "finetune.lora.r=8"])
>>> cfg.finetune.method, cfg.finetune.lora.r, cfg.finetune.lora.targets, cfg.train.max_lr
('qlora', 8, ['all-linear'], 0.001)
>>> finetune("runs/base", "alpaca.json", "lora", "runs/sft", ["finetune.lora.r=8"])  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F

from scratchllm.config import apply_overrides, from_dict
from scratchllm.data import chat
from scratchllm.errors import UserError
from scratchllm.model.config import ModelConfig
from scratchllm.model.lora import ADAPTER_CONFIG, AdapterOnly, LoraConfig, adapter_spec, apply_lora, merge_lora
from scratchllm.model.nf4 import block_linears, quantize_linears
from scratchllm.model.transformer import Transformer
from scratchllm.tokenizer.bpe import Tokenizer
from scratchllm.tokenizer.special import CHAT_TOKENS
from scratchllm.train.checkpoint import find_checkpoint, load_run, save_run_weights
from scratchllm.train.config import TrainConfig, short_run_defaults
from scratchllm.train.loop import TrainResult, check_out_dir, train
from scratchllm.train.step import evaluate
from scratchllm.utils.atomic import atomic_directory, atomic_write_text
from scratchllm.utils.device import resolve_device
from scratchllm.utils.files import read_toml
from scratchllm.utils.outdir import check_output_dir

@dataclass
class FinetuneConfig:
    method: Literal["full", "lora", "qlora"] = "lora"
    base: str = ""                 # the base run directory
    data: str = ""                 # conversations: .json / .jsonl[.gz]
    format: Literal["auto", "alpaca", "gpteacher", "sharegpt", "openai"] = "auto"
    val_fraction: float = 0.05     # conversations held out (by a hash of seed and index)
    split_seed: int = 0
    placeholders: dict = field(default_factory=lambda: {"name": "Scratch", "author": "the scratchllm project"})
    lora: LoraConfig = field(default_factory=LoraConfig)


def sft_train_defaults() -> TrainConfig:
    """Fine-tuning's defaults: short, a constant-then-cosine lr an order below pretraining's, no decay."""
    return short_run_defaults(max_steps=300, max_lr=1e-3, min_lr=1e-4)


@dataclass
class FinetuneRunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=sft_train_defaults)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)


def chat_loss(model: torch.nn.Module, batch: dict) -> torch.Tensor:
    """Mean cross-entropy on the assistant tokens of packed rows (each conversation attends to itself)."""
    logits = model(batch["inputs"], positions=batch["positions"], attn_mask=chat.block_diagonal_mask(batch["doc"]))
    return F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), batch["targets"].reshape(-1), ignore_index=-100)


def add_chat_tokens(tokenizer: Tokenizer, model: Transformer) -> tuple[Tokenizer, Transformer]:
    """A tokenizer with the chat tokens appended after its last id, and a model whose embedding fits it.

    New rows are the mean of the existing embeddings (and lm_head rows, if untied): a neutral
    start whose logit is no larger than an average token's, instead of random rows that could
    dominate the first steps.
    """
    missing = [t for t in CHAT_TOKENS if t not in tokenizer.special_tokens]
    if not missing:
        return tokenizer, model
    specials = dict(tokenizer.special_tokens)
    specials.update({t: tokenizer.vocab_size + i for i, t in enumerate(missing)})
    grown = Tokenizer(tokenizer.ranks, tokenizer.pattern, specials, tokenizer.name)
    old = model.config.vocab_size
    if grown.vocab_size <= old:
        return grown, model   # the padding rows past the tokenizer already cover them
    new = -(-grown.vocab_size // 64) * 64
    cfg = dataclasses.replace(model.config, vocab_size=new)
    state = model.state_dict()
    for name in ("tok_emb.weight", "lm_head.weight"):
        w = state[name]
        state[name] = torch.cat([w, w.mean(dim=0, keepdim=True).expand(new - old, -1)])
    bigger = Transformer(cfg)
    bigger.load_state_dict(state)
    return grown, bigger


def adapt(model: Transformer, ft: FinetuneConfig) -> torch.nn.Module:
    """The module the loop trains: the model itself (full) or an adapter view of it (LoRA, QLoRA)."""
    if ft.method == "full":
        return model
    if ft.method == "qlora":
        quantize_linears(model, block_linears(model))
    apply_lora(model, ft.lora)
    return AdapterOnly(model)


def write_adapter_config(out_dir: Path, ft: FinetuneConfig) -> None:
    """`adapter_config.json`: the base run (absolute path) and the LoRA settings, for `load_lora_run`."""
    spec = adapter_spec(ft.lora, str(Path(ft.base).resolve()), quantized=ft.method == "qlora")
    atomic_write_text(out_dir / ADAPTER_CONFIG, json.dumps(spec, indent=2))


def _config(base: str | None, data: str | None, method: str | None, out_dir: Path, overrides: list[str],
            resume: bool) -> FinetuneRunConfig:
    if resume:
        saved = from_dict(FinetuneRunConfig, read_toml(out_dir / "config.toml", "config file"))
        return apply_overrides(saved, overrides)
    if not base or not data:
        raise UserError("finetune needs --run BASE (a trained run) and --data FILE (conversations)")
    base_cfg = load_run(base).config   # checks the base exists before anything else
    cfg = FinetuneRunConfig(model=base_cfg.model, finetune=FinetuneConfig(method=method or "lora", base=base, data=data))
    return apply_overrides(cfg, overrides)


def load_data(cfg: FinetuneRunConfig, tokenizer, quiet: bool = False):
    """(train batches, fixed held-out batches) of packed rows; prints what was truncated."""
    ft, tc, block = cfg.finetune, cfg.train, cfg.model.block_size
    convs = chat.load_conversations(ft.data, ft.format, ft.placeholders)
    train_convs, held_convs = chat.split_heldout(convs, ft.val_fraction, ft.split_seed)
    train_ex, train_stats = chat.encode_conversations(tokenizer, train_convs, block)
    held_ex, held_stats = chat.encode_conversations(tokenizer, held_convs, block)
    if not quiet:
        print(f"train: {train_stats.summary()}\nheld out: {held_stats.summary()}", flush=True)
    batches = chat.ChatBatches(chat.pack(train_ex, block), tc.batch_size, seed=tc.seed)
    val = chat.fixed_batches(chat.pack(held_ex, block), tc.batch_size)[: tc.eval_batches]
    if held_convs and not val:
        raise UserError(f"none of the {len(held_convs)} held-out conversations keeps an assistant token within "
                        f"model.block_size={block}; use shorter conversations or another finetune.val_fraction "
                        "or finetune.split_seed")
    return batches, val


def finetune(base: str | None, data: str | None, method: str | None, out_dir: str | Path,
             overrides: list[str] = (), resume: bool = False, quiet: bool = False,
             verbose: bool = False) -> tuple[TrainResult, dict]:
    """Fine-tune run `base` on conversations in `data` into `out_dir`; returns (result, figures).

    `verbose` prints the resolved config (it is saved to config.toml either way).

    figures: {"base_val_loss": held-out assistant-token loss before training} (new runs only).
    """
    out_dir = Path(out_dir)
    check_out_dir(out_dir, resume)
    cfg = _config(base, data, method, out_dir, list(overrides), resume)
    ft = cfg.finetune
    cfg.train.validate()
    run = load_run(ft.base)
    tokenizer, model = run.tokenizer, run.model
    if not isinstance(tokenizer, Tokenizer):
        raise UserError(f"base run '{ft.base}' has no BPE tokenizer.json; fine-tuning needs one to render chats")
    if ft.method != "full" and any(t not in tokenizer.special_tokens for t in CHAT_TOKENS):
        raise UserError(f"the tokenizer of '{ft.base}' has no chat tokens and a frozen LoRA base cannot grow its "
                        "embedding; run finetune --method full first (which adds them), then LoRA on that run")
    tokenizer, model = add_chat_tokens(tokenizer, model)
    cfg = dataclasses.replace(cfg, model=model.config)
    batches, val = load_data(cfg, tokenizer, quiet)
    device = resolve_device(cfg.train.device)
    figures = {}
    if not resume:
        figures["base_val_loss"] = evaluate(model.to(device), val, chat_loss, device, cfg.train.dtype)["loss"]
        if not quiet:
            print(f"held-out assistant-token loss of the base: {figures['base_val_loss']:.4f}", flush=True)
    model.train()
    trainee = adapt(model, ft)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(out_dir / "tokenizer.json"))
    if ft.method != "full":
        write_adapter_config(out_dir, ft)
    result = train(trainee, cfg, batches, out_dir, loss_fn=chat_loss, val_batches=val, resume=resume,
                   quiet=quiet or not verbose)
    return result, figures


def merge_run(run_dir: str | Path, out: str | Path) -> Path:
    """Write `out`, a plain run holding a LoRA run's base with its adapters folded in (built aside, renamed)."""
    if not Path(run_dir).is_dir():
        raise UserError(f"run directory '{run_dir}' does not exist; pass the --out directory of a LoRA fine-tune")
    out = check_output_dir(out)   # the merged run replaces the directory whole: nothing in it may be foreign
    if not is_lora_run(run_dir):
        raise UserError(f"'{run_dir}' is not a LoRA run (its checkpoint holds whole weights); it needs no merge")
    run = load_run(run_dir)
    model = merge_lora(run.model)
    # The [finetune] table stays: the merged run is still a chat model (scratchllm chat).
    saved = from_dict(FinetuneRunConfig, read_toml(Path(run_dir) / "config.toml", "config file"))
    with atomic_directory(out) as tmp:
        save_run_weights(tmp, model, run.tokenizer, dataclasses.replace(saved, model=model.config))
    return out


def base_of(run_dir: str | Path) -> Path | None:
    """The base run a LoRA run names (its adapter_config.json), or None for a plain run."""
    path = Path(run_dir) / ADAPTER_CONFIG
    if not path.is_file():
        return None
    base = Path(json.loads(path.read_text(encoding="utf-8"))["base"])
    return base if base.is_absolute() else Path(run_dir) / base


def is_chat_run(run_dir: str | Path) -> bool:
    """Whether a run was tuned on conversations: its config.toml has a [finetune] table, or a [dpo]
    one (DPO starts from an SFT run and keeps its chat template), or RL (align grpo/ppo) rendered
    its prompts with the chat template (`template = "chat"` in its [grpo] or [ppo] table)."""
    try:
        tables = read_toml(Path(run_dir) / "config.toml", "config file")
    except UserError:
        return False
    return bool({"finetune", "dpo"} & set(tables)) or any(
        isinstance(tables.get(t), dict) and tables[t].get("template") == "chat" for t in ("grpo", "ppo"))


def is_lora_run(run_dir: str | Path) -> bool:
    try:
        return find_checkpoint(run_dir, weights_only=True).state.get("kind") == "lora"
    except UserError:
        return False
