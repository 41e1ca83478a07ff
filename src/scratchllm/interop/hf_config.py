"""Hugging Face `config.json` <-> our `ModelConfig`.

GPT-2 and the Llama family (Llama 2/3, Mistral, Qwen2, Qwen3) are settings of our one `ModelConfig`:
this module translates the field names both ways and refuses, with one sentence naming the file
and the field, anything our `Transformer` would compute differently.

>>> cfg, arch = config_from_hf({"model_type": "llama", "vocab_size": 128, "hidden_size": 64,
...     "intermediate_size": 160, "num_hidden_layers": 2, "num_attention_heads": 4,
...     "num_key_value_heads": 2, "max_position_embeddings": 256, "rope_theta": 500000.0})
>>> arch, cfg.position, cfg.mlp, cfg.kv_heads, cfg.rope_theta, cfg.tie_embeddings
('llama', 'rope', 'swiglu', 2, 500000.0, False)
>>> hf = config_to_hf(cfg)
>>> hf["model_type"], hf["num_key_value_heads"], hf["rope_parameters"]["rope_theta"]
('llama', 2, 500000.0)
"""

from __future__ import annotations

from typing import Any

from scratchllm.errors import UserError
from scratchllm.model.config import ModelConfig

SUPPORTED = ("gpt2", "llama", "mistral", "qwen2", "qwen3")
# HF's names for GPT-2's tanh-approximated GELU (our "gelu" MLP), and Llama's SiLU gate.
GPT2_ACTIVATIONS = ("gelu_new", "gelu_pytorch_tanh", "gelu_fast")
ARCHITECTURES = {"gpt2": "GPT2LMHeadModel", "llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM",
                 "qwen3": "Qwen3ForCausalLM"}


def _need(hf: dict, key: str, where: str) -> Any:
    if key not in hf:
        raise UserError(f"{where}: field '{key}' is missing; the file is not a complete {hf.get('model_type')} config")
    return hf[key]


def _rope(hf: dict, where: str) -> tuple[float, dict | None]:
    """(theta, scaling) from either the new `rope_parameters` or the older `rope_theta`/`rope_scaling`."""
    params = dict(hf.get("rope_parameters") or {})
    legacy = dict(hf.get("rope_scaling") or {})
    theta = float(params.get("rope_theta", hf.get("rope_theta", 10000.0)))
    scaling = {k: v for k, v in {**legacy, **params}.items() if k != "rope_theta"}
    kind = scaling.pop("rope_type", None) or scaling.pop("type", None) or "default"
    scaling.pop("type", None)
    if kind == "default":
        return theta, None
    needed = {"linear": ("factor",),
              "llama3": ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings")}
    if kind not in needed:
        raise UserError(f"{where}: field 'rope_scaling' type '{kind}' is not supported; "
                        "only 'default', 'linear' and 'llama3' RoPE are implemented")
    missing = [k for k in needed[kind] if k not in scaling]
    if missing:
        raise UserError(f"{where}: {kind} rope scaling is missing {', '.join(missing)}; add them to 'rope_parameters'")
    return theta, {"type": kind, **{k: scaling[k] for k in needed[kind]}}


def _gpt2(hf: dict, where: str) -> ModelConfig:
    act = hf.get("activation_function", "gelu_new")
    if act not in GPT2_ACTIVATIONS:
        raise UserError(f"{where}: field 'activation_function' is '{act}'; only the tanh GELU "
                        f"({', '.join(GPT2_ACTIVATIONS)}) matches our gelu MLP")
    for key, ok in (("scale_attn_weights", True), ("scale_attn_by_inverse_layer_idx", False),
                    ("add_cross_attention", False)):
        if hf.get(key, ok) != ok:
            raise UserError(f"{where}: field '{key}' is {hf[key]}; only {ok} is supported")
    return ModelConfig(
        vocab_size=_need(hf, "vocab_size", where), block_size=hf.get("n_positions", 1024),
        n_layer=_need(hf, "n_layer", where), n_head=_need(hf, "n_head", where),
        n_embd=_need(hf, "n_embd", where), mlp_hidden=hf.get("n_inner"),
        norm="layernorm", norm_eps=float(hf.get("layer_norm_epsilon", 1e-5)), position="learned",
        mlp="gelu", bias=True, tie_embeddings=hf.get("tie_word_embeddings", True),
    )


def _llama_family(hf: dict, where: str, model_type: str) -> ModelConfig:
    act = hf.get("hidden_act", "silu")
    if act != "silu":
        raise UserError(f"{where}: field 'hidden_act' is '{act}'; only 'silu' (SwiGLU) is supported")
    n_embd, n_head = _need(hf, "hidden_size", where), _need(hf, "num_attention_heads", where)
    head_dim = hf.get("head_dim") or n_embd // n_head
    if head_dim * n_head != n_embd:
        raise UserError(f"{where}: field 'head_dim' is {head_dim} but hidden_size/num_attention_heads is "
                        f"{n_embd // n_head}; our model needs head_dim = hidden_size / num_attention_heads")
    if hf.get("partial_rotary_factor", 1.0) != 1.0:
        raise UserError(f"{where}: field 'partial_rotary_factor' must be 1.0; partial RoPE is not supported")
    theta, scaling = _rope(hf, where)
    block_size = hf.get("max_position_embeddings", 2048)
    if model_type in ("qwen2", "qwen3") and hf.get("use_sliding_window"):
        raise UserError(f"{where}: field 'use_sliding_window' is true; sliding-window attention is not supported")
    if model_type == "qwen2":
        bias, qkv_bias = False, True  # Qwen2: biases on q/k/v only
    elif model_type == "qwen3":
        if hf.get("attention_bias"):
            raise UserError(f"{where}: field 'attention_bias' is true; only Qwen3 without attention biases is supported")
        bias, qkv_bias = False, None
    else:
        attn_bias, mlp_bias = hf.get("attention_bias", False), hf.get("mlp_bias", False)
        if attn_bias != mlp_bias:
            raise UserError(f"{where}: fields 'attention_bias'={attn_bias} and 'mlp_bias'={mlp_bias} differ; "
                            "our model has biases everywhere or nowhere")
        bias, qkv_bias = attn_bias, None
        # subtle: within the window, sliding-window attention is full attention; so cap the context there.
        if model_type == "mistral" and hf.get("sliding_window"):
            block_size = min(block_size, hf["sliding_window"])
    return ModelConfig(
        vocab_size=_need(hf, "vocab_size", where), block_size=block_size,
        n_layer=_need(hf, "num_hidden_layers", where), n_head=n_head,
        n_kv_head=hf.get("num_key_value_heads") or n_head, n_embd=n_embd,
        mlp_hidden=_need(hf, "intermediate_size", where), norm="rmsnorm",
        norm_eps=float(hf.get("rms_norm_eps", 1e-6)), position="rope", rope_theta=theta,
        rope_scaling=scaling, mlp="swiglu", bias=bias, qkv_bias=qkv_bias, qk_norm=model_type == "qwen3",
        tie_embeddings=hf.get("tie_word_embeddings", False),
    )


def config_from_hf(hf: dict, where: str = "config.json") -> tuple[ModelConfig, str]:
    """Our `ModelConfig` for a Hugging Face config dict, and the HF `model_type` it came from."""
    model_type = hf.get("model_type")
    if model_type not in SUPPORTED:
        raise UserError(f"{where}: field 'model_type' is {model_type!r}; supported: {', '.join(SUPPORTED)}")
    cfg = _gpt2(hf, where) if model_type == "gpt2" else _llama_family(hf, where, model_type)
    cfg.validate()
    return cfg, model_type


def hf_arch(cfg: ModelConfig) -> str:
    """The HF `model_type` that computes exactly what `cfg` does, or a UserError naming the option to change."""
    if cfg.logit_softcap is not None:
        raise UserError("model.logit_softcap has no Hugging Face GPT-2/Llama/Qwen equivalent; train with it unset")
    if cfg.value_embeds:
        raise UserError("model.value_embeds has no Hugging Face GPT-2/Llama/Qwen equivalent; train with model.value_embeds=0")
    gpt2_style = (cfg.norm, cfg.position, cfg.mlp) == ("layernorm", "learned", "gelu")
    llama_style = (cfg.norm, cfg.position, cfg.mlp) == ("rmsnorm", "rope", "swiglu")
    # A bias our model lacks is exported as zeros, and GQA's kv heads as repeated copies for GPT-2:
    # the HF model then computes exactly what ours does, so only real differences are refused.
    if cfg.qk_norm:
        if not llama_style or cfg.bias:
            raise UserError("model.qk_norm=true exports only as Qwen3 (rmsnorm, rope, swiglu, no MLP biases); "
                            "train with model.qk_norm=false or that Llama-style shape with model.bias=false")
        return "qwen3"
    if gpt2_style:
        return "gpt2"
    if llama_style:
        return "qwen2" if cfg.use_qkv_bias and not cfg.bias else "llama"
    raise UserError(
        f"model.norm={cfg.norm!r}, model.position={cfg.position!r}, model.mlp={cfg.mlp!r} matches no Hugging Face "
        "class; export supports GPT-2 style (layernorm, learned, gelu) or Llama style (rmsnorm, rope, swiglu)")


def _legacy_rope_scaling(cfg: ModelConfig) -> dict | None:
    """HF's `rope_scaling` for our `rope_scaling` (whose kind may be spelled "type" or "rope_type")."""
    scaling = dict(cfg.rope_scaling or {})
    kind = scaling.pop("type", None) or scaling.pop("rope_type", None) or "default"
    scaling.pop("rope_type", None)
    return None if kind == "default" else {"rope_type": kind, **scaling}


def _hf_rope(cfg: ModelConfig) -> dict:
    return {"rope_theta": cfg.rope_theta, "rope_type": "default", **(_legacy_rope_scaling(cfg) or {})}


def config_to_hf(cfg: ModelConfig, bos_id: int | None = None, eos_id: int | None = None) -> dict:
    """The Hugging Face `config.json` dict for `cfg` (GPT-2, Llama, Qwen2 or Qwen3 by `hf_arch`)."""
    arch = hf_arch(cfg)
    common = {"architectures": [ARCHITECTURES[arch]], "model_type": arch, "vocab_size": cfg.vocab_size,
              "tie_word_embeddings": cfg.tie_embeddings, "bos_token_id": bos_id, "eos_token_id": eos_id,
              "initializer_range": cfg.init_std, "dtype": "float32"}
    if arch == "gpt2":
        return {**common, "n_positions": cfg.block_size, "n_embd": cfg.n_embd, "n_layer": cfg.n_layer,
                "n_head": cfg.n_head, "n_inner": cfg.hidden_dim, "activation_function": "gelu_new",
                "layer_norm_epsilon": cfg.norm_eps, "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}
    out = {**common, "hidden_size": cfg.n_embd, "intermediate_size": cfg.hidden_dim,
           "num_hidden_layers": cfg.n_layer, "num_attention_heads": cfg.n_head,
           "num_key_value_heads": cfg.kv_heads, "head_dim": cfg.head_dim, "hidden_act": "silu",
           "max_position_embeddings": cfg.block_size, "rms_norm_eps": cfg.norm_eps,
           "attention_dropout": 0.0, "rope_parameters": _hf_rope(cfg),
           # transformers < 5 reads these two instead of rope_parameters; same values, both spellings.
           "rope_theta": cfg.rope_theta, "rope_scaling": _legacy_rope_scaling(cfg)}
    if arch == "llama":
        out.update(attention_bias=cfg.bias, mlp_bias=cfg.bias)
    else:
        out.update(use_sliding_window=False, sliding_window=None, max_window_layers=cfg.n_layer)
        if arch == "qwen3":
            out.update(attention_bias=cfg.use_qkv_bias)
    return out
