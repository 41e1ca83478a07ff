"""LoRA adapters in and out of PEFT's format (`adapter_config.json` + `adapter_model.safetensors`).

    scratchllm export hf runs/sft --out hf/          # base -> hf/, adapter -> hf/adapter/ (PEFT layout)
    scratchllm import hf path/to/peft_adapter --out runs/sft [--base path/to/hf_base]

PEFT names a tensor `base_model.model.<HF module>.lora_A.weight` ([r, in]) and `.lora_B.weight`
([out, r]), the same shapes as ours, for nn.Linear and GPT-2's Conv1D alike (PEFT's Conv1D
support transposes only the merged delta, `fan_in_fan_out`). Two things need translating:

- GPT-2 fuses q, k and v into `c_attn`. Our three rank-r adapters are one rank-3r adapter of
  c_attn exactly: A = [A_q; A_k; A_v] stacked, B block-diagonal. Coming back, PEFT's c_attn
  adapter splits into three with the same A and B's row blocks. Ranks then differ per layer,
  which PEFT writes as `rank_pattern` / `alpha_pattern`.
- Scaling: PEFT scales each module by its own alpha / r; ours is one number per model, so an
  imported module whose scaling differs has the ratio folded into its B (exact: s·B·A is linear).

The module-name translation is `interop/hf_weights.py`'s `weight_rules`; nothing here knows the
architectures beyond it.

>>> from scratchllm.model.config import ModelConfig
>>> modules = peft_modules(ModelConfig(n_layer=1, n_embd=8, n_head=2, vocab_size=16), {"model_type": "gpt2"})
>>> modules["blocks.0.attn.k"], modules["blocks.0.mlp.up"]
(('transformer.h.0.attn.c_attn', 1, 3), ('transformer.h.0.mlp.c_fc', 0, 1))
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from scratchllm.errors import UserError
from scratchllm.interop.hf import export_hf, import_hf
from scratchllm.interop.hf_config import config_to_hf
from scratchllm.interop.hf_files import read_hf_json
from scratchllm.interop.hf_weights import GPT2_PREFIX, weight_rules
from scratchllm.model.config import ModelConfig
from scratchllm.model.lora import ADAPTER_CONFIG, AdapterOnly, LoraConfig, adapter_spec, apply_lora, load_adapter_state
from scratchllm.train.checkpoint import find_checkpoint, load_run, save_checkpoint
from scratchllm.train.config import load_run_config
from scratchllm.train.finetune import base_of, is_lora_run
from scratchllm.utils.atomic import atomic_directory, atomic_write_text

PEFT_WEIGHTS = "adapter_model.safetensors"
PREFIX = "base_model.model."


def peft_modules(cfg: ModelConfig, hf_cfg: dict) -> dict[str, tuple[str, int, int]]:
    """Our linear layer -> (HF module name, its index in a fused module, parts of that module)."""
    prefix = GPT2_PREFIX if hf_cfg["model_type"] == "gpt2" else ""
    out = {}
    for rule in weight_rules(cfg, hf_cfg):
        if not rule.hf.endswith(".weight") or not all(n.endswith(".weight") for n in rule.ours):
            continue
        module = rule.hf.removesuffix(".weight")
        module = module if module == "lm_head" else prefix + module
        for i, ours in enumerate(rule.ours):
            out[ours.removesuffix(".weight")] = (module, i, len(rule.ours))
    return out


def _qkv_sizes(cfg: ModelConfig) -> list[int]:
    """Output rows of q, k and v: the blocks of a fused c_attn."""
    return [cfg.n_head * cfg.head_dim, cfg.kv_heads * cfg.head_dim, cfg.kv_heads * cfg.head_dim]


def _scale_alpha(scaling: float, rank: int, rslora: bool) -> float:
    """The alpha that gives `scaling` at `rank`: PEFT scales by alpha/r (rsLoRA: alpha/sqrt(r))."""
    return scaling * (math.sqrt(rank) if rslora else rank)


def adapter_to_peft(state: dict[str, torch.Tensor], spec: dict, cfg: ModelConfig, hf_cfg: dict,
                    base_name: str) -> tuple[dict[str, torch.Tensor], dict]:
    """(PEFT tensors, adapter_config.json) for our adapter tensors and adapter_spec."""
    lora = LoraConfig(r=spec["r"], alpha=spec["alpha"], rslora=spec["rslora"])
    modules = peft_modules(cfg, hf_cfg)
    layers = sorted({k.rsplit(".", 1)[0] for k in state})
    grouped: dict[str, dict[int, str]] = {}
    for layer in layers:
        if layer not in modules:
            raise UserError(f"adapted layer '{layer}' has no Hugging Face counterpart; export a run without it")
        module, index, _ = modules[layer]
        grouped.setdefault(module, {})[index] = layer
    if hf_cfg["model_type"] == "gpt2" and cfg.kv_heads != cfg.n_head and any(
            layer.endswith((".attn.k", ".attn.v")) for layer in layers):
        raise UserError("a GPT-2 export repeats grouped kv heads, which a LoRA on k or v cannot follow; "
                        "adapt q, o and the MLP only, or merge the run (scratchllm merge) and export that")
    tensors, ranks, alphas = {}, {}, {}
    for module, parts in grouped.items():
        count = modules[parts[next(iter(parts))]][2]
        a_parts, b_blocks, rank = [], [], 0
        for i in sorted(parts):
            a_parts.append(state[f"{parts[i]}.lora_A"])
            b_blocks.append((i, state[f"{parts[i]}.lora_B"]))
            rank += state[f"{parts[i]}.lora_A"].shape[0]
        A = torch.cat(a_parts)
        if count == 1:
            B = b_blocks[0][1]
        else:
            outs = _qkv_sizes(cfg)
            B = torch.zeros(sum(outs), rank, dtype=A.dtype)
            col = 0
            for i, b in b_blocks:
                row = sum(outs[:i])
                B[row:row + b.shape[0], col:col + b.shape[1]] = b
                col += b.shape[1]
        tensors[f"{PREFIX}{module}.lora_A.weight"] = A.contiguous()
        tensors[f"{PREFIX}{module}.lora_B.weight"] = B.contiguous()
        if rank != lora.r:
            ranks[module] = rank
            alphas[module] = _scale_alpha(lora.scaling, rank, lora.rslora)
    config = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": base_name,
              "r": lora.r, "lora_alpha": lora.alpha, "lora_dropout": spec["dropout"], "use_rslora": lora.rslora,
              "target_modules": sorted(grouped), "fan_in_fan_out": hf_cfg["model_type"] == "gpt2",
              "bias": "none", "rank_pattern": ranks, "alpha_pattern": alphas, "inference_mode": True,
              "init_lora_weights": True, "modules_to_save": None}
    return tensors, config


def _pattern_value(patterns: dict, module: str, default):
    """PEFT's rank_pattern / alpha_pattern lookup: a key matches a module name or its dotted suffix."""
    for key, value in patterns.items():
        if module == key or module.endswith("." + key):
            return value
    return default


def peft_to_adapter(tensors: dict[str, torch.Tensor], config: dict, cfg: ModelConfig,
                    hf_cfg: dict) -> tuple[dict[str, torch.Tensor], LoraConfig, dict[str, int]]:
    """(our adapter tensors, LoraConfig, per-layer ranks) from a PEFT adapter."""
    if config.get("peft_type", "LORA") != "LORA":
        raise UserError(f"the adapter is of PEFT type {config.get('peft_type')!r}; only LoRA adapters import")
    r, alpha, rslora = int(config["r"]), float(config["lora_alpha"]), bool(config.get("use_rslora", False))
    scaling = LoraConfig(r=r, alpha=alpha, rslora=rslora).scaling
    ours_of: dict[str, list[str]] = {}
    for layer, (module, index, count) in peft_modules(cfg, hf_cfg).items():
        ours_of.setdefault(module, [None] * count)[index] = layer
    state, ranks = {}, {}
    for key, A in tensors.items():
        if not key.endswith(".lora_A.weight"):
            continue
        module = key.removeprefix(PREFIX).removesuffix(".lora_A.weight")
        if module not in ours_of:
            raise UserError(f"PEFT tensor '{key}' adapts '{module}', which this base model has no layer for; "
                            "the adapter belongs to another architecture")
        B = tensors[key.replace(".lora_A.", ".lora_B.")]
        m_rank = _pattern_value(config.get("rank_pattern") or {}, module, r)
        m_alpha = _pattern_value(config.get("alpha_pattern") or {}, module, alpha)
        m_scaling = LoraConfig(r=m_rank, alpha=m_alpha, rslora=rslora).scaling
        B = B * (m_scaling / scaling)
        layers = ours_of[module]
        sizes = _qkv_sizes(cfg) if len(layers) == 3 else [B.shape[0]]
        for layer, b in zip(layers, B.split(sizes)):
            state[f"{layer}.lora_A"], state[f"{layer}.lora_B"] = A.clone(), b.contiguous()
            if A.shape[0] != r:
                ranks[layer] = A.shape[0]
    if not state:
        raise UserError("the PEFT adapter holds no lora_A/lora_B tensors; is it a LoRA adapter directory?")
    targets = sorted({k.rsplit(".", 1)[0] for k in state})
    return state, LoraConfig(r=r, alpha=alpha, dropout=float(config.get("lora_dropout", 0.0)), targets=targets,
                             rslora=rslora), ranks


def export_peft(run_dir: str | Path, out: str | Path, step: int | None = None) -> Path:
    """A LoRA run -> `out` (the base in HF format) + `out/adapter/` (PEFT), base_model_name_or_path = out."""
    run_dir, out = Path(run_dir), Path(out)
    if not is_lora_run(run_dir):
        raise UserError(f"'{run_dir}' is not a LoRA run; export it with scratchllm export hf (no adapter to write)")
    spec = read_hf_json(run_dir / ADAPTER_CONFIG)
    if spec.get("quantized"):
        raise UserError(f"'{run_dir}' is a QLoRA run on an NF4 base, which PEFT loads only through bitsandbytes; "
                        "merge it (scratchllm merge) and export the merged run")
    cfg = load_run_config(run_dir).model
    state = load_file(str(find_checkpoint(run_dir, step, weights_only=True).path / "model.safetensors"))
    tensors, config = adapter_to_peft(state, spec, cfg, config_to_hf(cfg), str(out.resolve()))
    export_hf(base_of(run_dir), out)
    with atomic_directory(out / "adapter") as tmp:
        save_file(tensors, str(tmp / PEFT_WEIGHTS), metadata={"format": "pt"})
        atomic_write_text(tmp / "adapter_config.json", json.dumps(config, indent=2))
    return out


def import_peft(adapter_dir: str | Path, out: str | Path, base: str | Path | None = None) -> Path:
    """A PEFT adapter directory (+ its HF base) -> LoRA run `out` with the base imported into `out/base`."""
    adapter_dir, out = Path(adapter_dir), Path(out)
    config = read_hf_json(adapter_dir / "adapter_config.json")
    base_dir = Path(base or config.get("base_model_name_or_path") or "")
    if not (base_dir / "config.json").is_file():
        raise UserError(f"the adapter's base model '{base_dir}' is not a local Hugging Face directory; "
                        "pass it with --base DIR")
    if not (adapter_dir / PEFT_WEIGHTS).is_file():
        raise UserError(f"'{adapter_dir}' has no {PEFT_WEIGHTS}; save the adapter with safe_serialization")
    with atomic_directory(out) as tmp:
        import_hf(base_dir, tmp / "base")
        base_run = load_run(tmp / "base")
        hf_cfg = read_hf_json(base_dir / "config.json")
        state, lora, ranks = peft_to_adapter(load_file(str(adapter_dir / PEFT_WEIGHTS)), config,
                                             base_run.config.model, hf_cfg)
        model = base_run.model
        apply_lora(model, lora, ranks)
        load_adapter_state(model, state)
        # The base sits inside the run and is named relative to it, so the run can move as a whole.
        atomic_write_text(tmp / ADAPTER_CONFIG, json.dumps(adapter_spec(lora, "base", ranks=ranks), indent=2))
        shutil.copyfile(tmp / "base" / "config.toml", tmp / "config.toml")
        if (tmp / "base" / "tokenizer.json").is_file():
            shutil.copyfile(tmp / "base" / "tokenizer.json", tmp / "tokenizer.json")
        save_checkpoint(tmp, 0, AdapterOnly(model))
    return out
