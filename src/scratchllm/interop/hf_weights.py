"""Tensor names and layouts: Hugging Face GPT-2 / Llama / Qwen2 / Qwen3 checkpoints <-> our `Transformer`.

Llama-family checkpoints are a pure renaming: HF keeps q, k, v separate, and its RoPE rotates
(x[i], x[i + d/2]) pairs ("rotate half") exactly as our `position.apply_rope` does, so the q/k
rows need no permutation. GPT-2 takes two more steps: its `Conv1D` stores weights as
[in, out] (the transpose of `nn.Linear`), and `c_attn` fuses q, k and v into one matrix.

One `Rule` per HF tensor says which of our tensors it holds and how:

>>> from scratchllm.model.config import ModelConfig
>>> rules = weight_rules(ModelConfig(n_layer=1, n_embd=8, n_head=2, vocab_size=16), {"model_type": "gpt2"})
>>> r = next(r for r in rules if r.hf.endswith("c_attn.weight"))
>>> r.hf, r.ours, r.conv1d
('h.0.attn.c_attn.weight', ('blocks.0.attn.q.weight', 'blocks.0.attn.k.weight', 'blocks.0.attn.v.weight'), True)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from scratchllm.errors import UserError
from scratchllm.model.config import ModelConfig

# Tensors some HF checkpoints carry that are not weights (causal masks, RoPE frequencies).
IGNORED_SUFFIXES = (".attn.bias", ".attn.masked_bias", "rotary_emb.inv_freq")
GPT2_PREFIX = "transformer."   # newer GPT-2 checkpoints prefix the body with it, the original does not


@dataclass(frozen=True)
class Rule:
    hf: str                  # the HF tensor name (GPT-2 names without the "transformer." prefix)
    ours: tuple[str, ...]    # our tensor(s) it holds; several = fused along dim 0 of our layout
    conv1d: bool = False     # stored [in, out] by HF's Conv1D: transpose


def _gpt2_rules(cfg: ModelConfig) -> list[Rule]:
    rules = [Rule("wte.weight", ("tok_emb.weight",)), Rule("wpe.weight", ("pos_emb.weight",)),
             Rule("ln_f.weight", ("norm_f.weight",)), Rule("ln_f.bias", ("norm_f.bias",))]
    for i in range(cfg.n_layer):
        h, b = f"h.{i}", f"blocks.{i}"
        for p in ("weight", "bias"):
            rules += [
                Rule(f"{h}.ln_1.{p}", (f"{b}.attn_norm.{p}",)),
                Rule(f"{h}.ln_2.{p}", (f"{b}.mlp_norm.{p}",)),
                Rule(f"{h}.attn.c_attn.{p}", tuple(f"{b}.attn.{x}.{p}" for x in "qkv"), conv1d=True),
                Rule(f"{h}.attn.c_proj.{p}", (f"{b}.attn.o.{p}",), conv1d=True),
                Rule(f"{h}.mlp.c_fc.{p}", (f"{b}.mlp.up.{p}",), conv1d=True),
                Rule(f"{h}.mlp.c_proj.{p}", (f"{b}.mlp.down.{p}",), conv1d=True),
            ]
    return rules


def hf_biases(hf_cfg: dict) -> tuple[bool, bool, bool]:
    """Which projections of the HF class carry biases: (q/k/v, o, MLP)."""
    kind = hf_cfg["model_type"]
    if kind == "gpt2":
        return True, True, True
    if kind == "qwen2":
        return True, False, False
    attn = bool(hf_cfg.get("attention_bias", False))   # llama, qwen3 (mistral has none)
    return attn, attn, kind == "llama" and bool(hf_cfg.get("mlp_bias", False))


def _llama_rules(cfg: ModelConfig, hf_cfg: dict) -> list[Rule]:
    rules = [Rule("model.embed_tokens.weight", ("tok_emb.weight",)), Rule("model.norm.weight", ("norm_f.weight",))]
    qkv, o, mlp = hf_biases(hf_cfg)
    projections = [("self_attn.q_proj", "attn.q", qkv), ("self_attn.k_proj", "attn.k", qkv),
                   ("self_attn.v_proj", "attn.v", qkv), ("self_attn.o_proj", "attn.o", o),
                   ("mlp.gate_proj", "mlp.gate", mlp), ("mlp.up_proj", "mlp.up", mlp),
                   ("mlp.down_proj", "mlp.down", mlp)]
    for i in range(cfg.n_layer):
        h, b = f"model.layers.{i}", f"blocks.{i}"
        rules += [Rule(f"{h}.input_layernorm.weight", (f"{b}.attn_norm.weight",)),
                  Rule(f"{h}.post_attention_layernorm.weight", (f"{b}.mlp_norm.weight",))]
        if cfg.qk_norm:  # Qwen3: RMSNorm over each head's q and k, before RoPE
            rules += [Rule(f"{h}.self_attn.q_norm.weight", (f"{b}.attn.q_norm.weight",)),
                      Rule(f"{h}.self_attn.k_norm.weight", (f"{b}.attn.k_norm.weight",))]
        for theirs, ours, has_bias in projections:
            rules.append(Rule(f"{h}.{theirs}.weight", (f"{b}.{ours}.weight",)))
            if has_bias:
                rules.append(Rule(f"{h}.{theirs}.bias", (f"{b}.{ours}.bias",)))
    return rules


def weight_rules(cfg: ModelConfig, hf_cfg: dict) -> list[Rule]:
    """Every tensor of the HF model `hf_cfg` (a config.json dict) describes, with where it is in ours."""
    rules = _gpt2_rules(cfg) if hf_cfg["model_type"] == "gpt2" else _llama_rules(cfg, hf_cfg)
    if not cfg.tie_embeddings:
        rules.append(Rule("lm_head.weight", ("lm_head.weight",)))
    return rules


# Which config.json field sizes a tensor (first match wins), to name it when shapes disagree.
_SIZE_FIELDS = {
    "gpt2": [("wte", "vocab_size' or 'n_embd"), ("lm_head", "vocab_size"), ("wpe", "n_positions"),
             ("mlp", "n_inner"), ("", "n_embd")],
    "llama": [("embed_tokens", "vocab_size' or 'hidden_size"), ("lm_head", "vocab_size"),
              ("k_proj", "num_key_value_heads"), ("v_proj", "num_key_value_heads"),
              ("mlp", "intermediate_size"), ("", "hidden_size")],
}


def _shape_error(name: str, got, want, source: str, arch: str) -> UserError:
    field = next(f for key, f in _SIZE_FIELDS["gpt2" if arch == "gpt2" else "llama"] if key in name)
    return UserError(f"'{source}': tensor '{name}' has shape {list(got)} but config.json implies {list(want)}; "
                     f"the weights and config.json disagree (check config.json field '{field}')")


def _strip_gpt2_prefix(named: dict) -> dict:
    return {k.removeprefix(GPT2_PREFIX): v for k, v in named.items()}


def hf_to_ours(tensors: dict[str, torch.Tensor], sources: dict[str, str], model: torch.nn.Module,
               hf_cfg: dict) -> dict[str, torch.Tensor]:
    """Our state dict for `model` from an HF checkpoint's tensors (checked name by name, shape by shape)."""
    cfg, arch = model.config, hf_cfg["model_type"]
    if arch == "gpt2":
        tensors, sources = _strip_gpt2_prefix(tensors), _strip_gpt2_prefix(sources)
    target = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    rules = weight_rules(cfg, hf_cfg)
    for rule in rules:
        if rule.hf not in tensors:
            where = ", ".join(sorted(set(sources.values()))) or "the checkpoint"
            fix = ("if the output matrix is the embedding, set config.json field 'tie_word_embeddings' to true"
                   if rule.hf == "lm_head.weight" else "the weights belong to a different model or config.json is wrong")
            raise UserError(f"'{where}' has no tensor '{rule.hf}' that config.json implies; {fix}")
        t = tensors[rule.hf]
        if rule.conv1d and t.ndim == 2:
            t = t.T
        want = [target[name].shape for name in rule.ours]
        expected = (sum(s[0] for s in want), *want[0][1:])
        if tuple(t.shape) != expected:
            shown = tuple(reversed(expected)) if rule.conv1d and t.ndim == 2 else expected
            raise _shape_error(rule.hf, tensors[rule.hf].shape, shown, sources.get(rule.hf, "weights"), arch)
        for name, part in zip(rule.ours, t.split([s[0] for s in want], dim=0)):
            part = part.to(target[name].dtype)
            # subtle: split parts are views of one storage; each parameter needs its own to be saved.
            out[name] = part.clone() if len(rule.ours) > 1 else part.contiguous()
    known = {r.hf for r in rules} | {"lm_head.weight"}
    extra = [k for k in tensors if k not in known and not k.endswith(IGNORED_SUFFIXES)]
    if extra:
        raise UserError(f"'{sources.get(extra[0], 'weights')}' holds tensor '{extra[0]}' (and {len(extra) - 1} more) "
                        "that config.json does not account for; check config.json fields such as 'num_hidden_layers'")
    if cfg.tie_embeddings:
        out["lm_head.weight"] = out["tok_emb.weight"]
    return out


def _ours(state: dict[str, torch.Tensor], name: str) -> torch.Tensor:
    """Our tensor `name`; a bias our model was built without is zeros (adding zero changes nothing)."""
    if name not in state and name.endswith(".bias"):
        weight = state[name.removesuffix("bias") + "weight"]
        return torch.zeros(weight.shape[0], dtype=weight.dtype)
    return state[name]


def _repeat_kv_heads(state: dict[str, torch.Tensor], cfg: ModelConfig) -> dict[str, torch.Tensor]:
    """MHA weights computing what our GQA computes: each query head gets its own copy of its kv head.

    Query head h reads kv head h // group; repeat_interleave puts copies in exactly that order.
    """
    group, out = cfg.n_head // cfg.kv_heads, dict(state)
    for name, t in state.items():
        if name.endswith((".attn.k.weight", ".attn.k.bias", ".attn.v.weight", ".attn.v.bias")):
            heads = t.view(cfg.kv_heads, cfg.head_dim, *t.shape[1:])
            out[name] = heads.repeat_interleave(group, dim=0).flatten(0, 1)
    return out


def ours_to_hf(state: dict[str, torch.Tensor], cfg: ModelConfig, hf_cfg: dict) -> dict[str, torch.Tensor]:
    """The tensors of the HF model `hf_cfg` describes (contiguous, on the CPU: ready for save_file)."""
    out = {}
    arch = hf_cfg["model_type"]
    prefix = GPT2_PREFIX if arch == "gpt2" else ""
    if arch == "gpt2" and cfg.kv_heads != cfg.n_head:   # HF GPT-2 has no grouped-query attention
        state = _repeat_kv_heads(state, cfg)
    for rule in weight_rules(cfg, hf_cfg):
        parts = [_ours(state, name) for name in rule.ours]
        t = parts[0] if len(parts) == 1 else torch.cat(parts, dim=0)
        if rule.conv1d and t.ndim == 2:
            t = t.T
        name = rule.hf if rule.hf == "lm_head.weight" else prefix + rule.hf
        out[name] = t.detach().to("cpu").contiguous()
    return out
