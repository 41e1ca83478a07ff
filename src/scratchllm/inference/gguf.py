"""GGUF export: a run as one `.gguf` file that llama.cpp (and so Ollama, LM Studio) loads and runs.

GGUF holds key/value metadata (architecture, hyperparameters, the tokenizer) and named
tensors. We write it with the `gguf` package's `GGUFWriter` (the llama.cpp project's own writer)
and map our two shapes onto llama.cpp's architectures:

- GPT-2 style (layernorm + learned positions + gelu) → `gpt2`: q, k, v fused into `attn_qkv`;
  a missing bias (bias = false) is written as zeros, which is what "no bias" computes.
- Llama style (rmsnorm + rope + swiglu, no biases) → `llama`: q and k rows are permuted, because
  llama.cpp's llama rotates interleaved pairs (x0, x1), (x2, x3) ... where we (and Hugging Face)
  rotate halves (x_i, x_{i+d/2}); the permutation makes both compute the same scores.

Tied embeddings: no `output.weight` is written and llama.cpp reuses `token_embd`.

The tokenizer is written as llama.cpp's `gpt2` BPE model: tokens in GPT-2's byte-to-unicode
spelling, merges that make merge-order BPE act as our rank BPE (tokenizer/formats.py's
`hf_merges`), special tokens as control tokens, and the pre-tokenizer whose regex is ours:
`gpt-2` for the gpt2 pattern, `llama-bpe` (Llama 3's, which is cl100k's) for gpt4/cl100k,
`gpt-4o` for o200k. Embedding rows beyond the tokenizer's ids become unused `[PAD<i>]` tokens.
(llama.cpp's `gpt-4o` ends a word before a combining mark, \\p{M}, where o200k keeps it in: o200k text
with marks gets other ids in llama.cpp; its limit, not the file's.)

`--type`: f16 (2-D weights in fp16), q8_0 or q4_0 (llama.cpp's blocks of 32: q8_0 =
int8 codes + one fp16 scale, q4_0 = 4-bit codes around 8 + one fp16 scale; packed by
`gguf.quants`). Norms, biases and learned positions always stay f32. `as_exported(model, type)` is our
model holding exactly the file's weights (what llama.cpp computes with), to measure what a type costs.

Boundary: reads a run through `load_run`, writes one file atomically; knows nothing of llama.cpp's
runtime (tests/inference/test_gguf_llamacpp.py loads our files in llama.cpp, through node-llama-cpp, as the oracle).

>>> gguf_style(ModelConfig(norm="rmsnorm", position="rope", mlp="swiglu", bias=False))
'llama'
>>> gguf_style(ModelConfig(position="rope"))
Traceback (most recent call last):
scratchllm.errors.UserError: GGUF export supports GPT-2 style (model.norm='layernorm', model.position='learned', model.mlp='gelu') or Llama style (model.norm='rmsnorm', model.position='rope', model.mlp='swiglu', model.bias=false); model.position='rope' blocks this layernorm model
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np
import torch

from scratchllm.errors import UserError
from scratchllm.model.config import ModelConfig
from scratchllm.model.quant import QuantizedLinear
from scratchllm.tokenizer.formats import bytes_to_unicode, hf_merges
from scratchllm.tokenizer.patterns import GPT2_PATTERN, GPT4_PATTERN, O200K_PATTERN
from scratchllm.train.checkpoint import load_run

GGUF_TYPES = ("f16", "q8_0", "q4_0")
_STYLES = {"gpt2": {"norm": "layernorm", "position": "learned", "mlp": "gelu"},
           "llama": {"norm": "rmsnorm", "position": "rope", "mlp": "swiglu", "bias": False}}
_PRE_TOKENIZERS = {GPT2_PATTERN: "gpt-2", GPT4_PATTERN: "llama-bpe", O200K_PATTERN: "gpt-4o"}


def _show(value) -> str:
    return repr(value) if not isinstance(value, bool) else str(value).lower()


def gguf_style(cfg: ModelConfig) -> str:
    """"gpt2" or "llama", the llama.cpp architecture for this shape; else the option that blocks it."""
    style = "gpt2" if cfg.norm == "layernorm" else "llama"
    want = _STYLES[style]
    blocking = [f"model.{k}={_show(getattr(cfg, k))}" for k, v in want.items() if getattr(cfg, k) != v]
    for name, off in (("qk_norm", False), ("logit_softcap", None), ("rope_scaling", None), ("value_embeds", 0)):
        if getattr(cfg, name) != off:
            blocking.append(f"model.{name}={_show(getattr(cfg, name))}")
    if style == "llama" and cfg.use_qkv_bias:
        blocking.append("model.qkv_bias=true")
    if blocking:
        options = lambda s: ", ".join(f"model.{k}={_show(v)}" for k, v in _STYLES[s].items())  # noqa: E731
        raise UserError(f"GGUF export supports GPT-2 style ({options('gpt2')}) or Llama style ({options('llama')}); "
                        f"{blocking[0]} blocks this {cfg.norm} model")
    return style


def _permute_rope(w: torch.Tensor, n_head: int) -> torch.Tensor:
    """Reorder each head's rows from rotate-half order to interleaved pairs (llama.cpp's llama RoPE)."""
    out = w.shape[0]
    return w.reshape(n_head, 2, out // n_head // 2, *w.shape[1:]).transpose(1, 2).reshape(w.shape)


def _gpt2_tensors(model, cfg: ModelConfig) -> dict[str, torch.Tensor]:
    t = {"token_embd.weight": model.tok_emb.weight, "position_embd.weight": model.pos_emb.weight}
    bias = lambda lin: lin.bias if lin.bias is not None else torch.zeros(lin.out_features)  # noqa: E731
    norm_b = lambda n: n.bias if n.bias is not None else torch.zeros(n.weight.shape)  # noqa: E731
    for i, b in enumerate(model.blocks):
        a, p = b.attn, f"blk.{i}."
        t[p + "attn_norm.weight"], t[p + "attn_norm.bias"] = b.attn_norm.weight, norm_b(b.attn_norm)
        t[p + "attn_qkv.weight"] = torch.cat([a.q.weight, a.k.weight, a.v.weight])
        t[p + "attn_qkv.bias"] = torch.cat([bias(a.q), bias(a.k), bias(a.v)])
        t[p + "attn_output.weight"], t[p + "attn_output.bias"] = a.o.weight, bias(a.o)
        t[p + "ffn_norm.weight"], t[p + "ffn_norm.bias"] = b.mlp_norm.weight, norm_b(b.mlp_norm)
        t[p + "ffn_up.weight"], t[p + "ffn_up.bias"] = b.mlp.up.weight, bias(b.mlp.up)
        t[p + "ffn_down.weight"], t[p + "ffn_down.bias"] = b.mlp.down.weight, bias(b.mlp.down)
    t["output_norm.weight"], t["output_norm.bias"] = model.norm_f.weight, norm_b(model.norm_f)
    return t


def _llama_tensors(model, cfg: ModelConfig) -> dict[str, torch.Tensor]:
    t = {"token_embd.weight": model.tok_emb.weight}
    for i, b in enumerate(model.blocks):
        a, p = b.attn, f"blk.{i}."
        t[p + "attn_norm.weight"] = b.attn_norm.weight
        t[p + "attn_q.weight"] = _permute_rope(a.q.weight, cfg.n_head)
        t[p + "attn_k.weight"] = _permute_rope(a.k.weight, cfg.kv_heads)
        t[p + "attn_v.weight"], t[p + "attn_output.weight"] = a.v.weight, a.o.weight
        t[p + "ffn_norm.weight"] = b.mlp_norm.weight
        t[p + "ffn_gate.weight"], t[p + "ffn_up.weight"] = b.mlp.gate.weight, b.mlp.up.weight
        t[p + "ffn_down.weight"] = b.mlp.down.weight
    t["output_norm.weight"] = model.norm_f.weight
    return t


def _add_hparams(w, style: str, cfg: ModelConfig, name: str) -> None:
    w.add_name(name)
    w.add_context_length(cfg.block_size)
    w.add_embedding_length(cfg.n_embd)
    w.add_block_count(cfg.n_layer)
    w.add_feed_forward_length(cfg.hidden_dim)
    w.add_head_count(cfg.n_head)
    w.add_head_count_kv(cfg.kv_heads)
    w.add_vocab_size(cfg.vocab_size)
    if style == "gpt2":
        w.add_layer_norm_eps(cfg.norm_eps)
    else:
        w.add_layer_norm_rms_eps(cfg.norm_eps)
        w.add_rope_dimension_count(cfg.head_dim)
        w.add_rope_freq_base(cfg.rope_theta)


def _add_tokenizer(w, gguf, tokenizer, vocab_size: int) -> str:
    pre = _PRE_TOKENIZERS.get(tokenizer.pattern)
    if pre is None:
        raise UserError("the run's tokenizer splits with a custom regex that no llama.cpp pre-tokenizer matches; "
                        "GGUF export needs a tokenizer trained with pattern gpt2, gpt4 (cl100k) or o200k")
    enc = bytes_to_unicode()
    spell = lambda b: "".join(enc[x] for x in b)  # noqa: E731
    tokens = [f"[PAD{i}]" for i in range(vocab_size)]
    types = [gguf.TokenType.UNUSED] * vocab_size
    for b, i in tokenizer.ranks.items():
        tokens[i], types[i] = spell(b), gguf.TokenType.NORMAL
    for s, i in tokenizer.special_tokens.items():
        tokens[i], types[i] = s, gguf.TokenType.CONTROL
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges([f"{spell(x)} {spell(y)}" for x, y in hf_merges(tokenizer.ranks)])
    if tokenizer.eot_id is not None:
        w.add_bos_token_id(tokenizer.eot_id)
        w.add_eos_token_id(tokenizer.eot_id)
    w.add_add_bos_token(False)   # we never prepend a BOS; a document starts after end-of-text at most
    return pre


def _encode_tensor(gguf, name: str, t: torch.Tensor, gguf_type: str):
    """(array, raw ggml type or None) for one tensor: matrices in `gguf_type`, everything else f32."""
    a = t.detach().float().cpu().numpy()
    if a.ndim == 1 or name == "position_embd.weight":
        return a, None
    if gguf_type == "f16":
        return a.astype(np.float16), None
    qtype = gguf.GGMLQuantizationType.Q8_0 if gguf_type == "q8_0" else gguf.GGMLQuantizationType.Q4_0
    if a.shape[1] % 32:
        raise UserError(f"tensor {name} has {a.shape[1]} columns, not a multiple of llama.cpp's block of 32; "
                        f"export with --type f16")
    return gguf.quants.quantize(a, qtype), qtype


def _import_gguf():
    try:
        import gguf  # optional dependency: pip install 'scratchllm[gguf]'
    except ImportError:
        raise UserError("GGUF export needs the gguf package; install it with pip install 'scratchllm[gguf]'") from None
    return gguf


def as_exported(model, gguf_type: str):
    """A copy of `model` holding the weights a `gguf_type` file holds (fp16 matrices, or the q8_0 / q4_0 blocks
    dequantized): what llama.cpp computes with, in our forward. Row permutation (RoPE) and row concatenation
    (qkv) keep each row's blocks of 32 whole, so quantizing our tensors gives the file's blocks."""
    gguf = _import_gguf()
    out = copy.deepcopy(model)
    with torch.no_grad():
        for name, p in out.named_parameters():
            if p.dim() == 2 and name != "pos_emb.weight":
                array, raw = _encode_tensor(gguf, name, p, gguf_type)
                back = array.astype(np.float32) if raw is None else gguf.quants.dequantize(array, raw)
                p.copy_(torch.from_numpy(back.reshape(p.shape)))
    return out


def export_gguf(run_dir: str | Path, out: str | Path, gguf_type: str = "f16", step: int | None = None) -> dict:
    """Write run `run_dir` as GGUF file `out` (atomically); returns {arch, pre_tokenizer, tensors, bytes}."""
    gguf = _import_gguf()
    if gguf_type not in GGUF_TYPES:
        raise UserError(f"--type {gguf_type} is not supported; use one of {', '.join(GGUF_TYPES)}")
    run = load_run(run_dir, step=step)
    cfg = run.config.model
    if any(isinstance(m, QuantizedLinear) for m in run.model.modules()):
        raise UserError(f"run '{run_dir}' is quantized with scratchllm's own format; export the full-precision run "
                        "it was made from, with --type q8_0 or q4_0 for llama.cpp's quantized formats")
    if run.tokenizer is None:
        raise UserError(f"run '{run_dir}' has no tokenizer.json, and a GGUF file must carry one; copy it into the run")
    style = gguf_style(cfg)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    writer = gguf.GGUFWriter(str(tmp), style)
    _add_hparams(writer, style, cfg, Path(run_dir).name)
    writer.add_file_type({"f16": gguf.LlamaFileType.MOSTLY_F16, "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
                          "q4_0": gguf.LlamaFileType.MOSTLY_Q4_0}[gguf_type])
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    pre = _add_tokenizer(writer, gguf, run.tokenizer, cfg.vocab_size)
    tensors = (_gpt2_tensors if style == "gpt2" else _llama_tensors)(run.model, cfg)
    if not cfg.tie_embeddings:
        tensors["output.weight"] = run.model.lm_head.weight
    with torch.no_grad():
        for name, t in tensors.items():
            array, raw = _encode_tensor(gguf, name, t, gguf_type)
            writer.add_tensor(name, array, raw_dtype=raw)
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return {"arch": style, "pre_tokenizer": pre, "tensors": len(tensors), "bytes": out.stat().st_size}
