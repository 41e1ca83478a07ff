"""The Transformer: shapes, counts, init, the KV cache, errors, compile-friendliness, HF oracles."""

import math
import warnings

import pytest
import torch
from hf_random import randomize

from scratchllm.errors import UserError
from scratchllm.model.config import ModelConfig
from scratchllm.model.transformer import Transformer


def test_param_count_equals_hand_count(gpt2_config, llama_config):
    d, V, T, h = 32, 61, 24, 128
    # GPT-2 style, per block: 2 LayerNorms (w+b), q/k/v/o (w+b), up and down (w+b).
    block = 2 * 2 * d + 4 * (d * d + d) + (d * h + h) + (h * d + d)
    expected = V * d + T * d + 2 * block + 2 * d           # tok_emb, pos_emb, blocks, norm_f; lm_head tied
    model = Transformer(gpt2_config())
    assert model.num_params() == expected
    assert model.num_params(exclude_embeddings=True) == expected - V * d - T * d
    # Llama style: RMSNorm (w), GQA with 2 of 4 heads for k/v, SwiGLU hidden 96 (8/3·32 → multiple of 16), untied.
    kv, h = 2 * 8, 96
    block = 2 * d + d * d + 2 * d * kv + d * d + 3 * d * h
    assert Transformer(llama_config()).num_params() == V * d + 2 * block + d + V * d


def test_gpt2_124m_param_count_and_flops():
    with torch.device("meta"):   # no memory, no init time: only shapes
        model = Transformer(ModelConfig(vocab_size=50257))
    assert model.num_params() == 124_439_808
    # Same as nanoGPT's estimate_mfu: N = params minus the position table (tied wte counted as lm_head).
    n = 124_439_808 - 1024 * 768
    assert model.flops_per_token(1024) == 6 * n + 12 * 12 * 12 * 64 * 1024


def test_init_is_gpt2_style(gpt2_config):
    model = Transformer(gpt2_config(n_layer=8, n_embd=256, n_head=4, init_std=0.02))
    assert model.lm_head.weight is model.tok_emb.weight
    assert model.blocks[0].attn.q.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert model.blocks[0].mlp.down.weight.std().item() == pytest.approx(0.02 / math.sqrt(16), rel=0.05)
    assert model.blocks[0].attn.o.bias.abs().max() == 0
    assert torch.equal(model.norm_f.weight, torch.ones(256))


def test_parameter_names_are_stable(llama_config):
    names = set(Transformer(llama_config(qk_norm=True)).state_dict())
    for name in ["tok_emb.weight", "norm_f.weight", "lm_head.weight", "blocks.1.attn_norm.weight",
                 "blocks.1.attn.q.weight", "blocks.1.attn.k.weight", "blocks.1.attn.v.weight",
                 "blocks.1.attn.o.weight", "blocks.1.attn.q_norm.weight", "blocks.1.attn.k_norm.weight",
                 "blocks.1.mlp_norm.weight", "blocks.1.mlp.gate.weight", "blocks.1.mlp.up.weight",
                 "blocks.1.mlp.down.weight"]:
        assert name in names
    assert not any("rope" in n for n in names)   # computed tables are not saved


@pytest.mark.parametrize("style", ["gpt2_config", "llama_config"])
def test_kv_cache_in_chunks_equals_full_forward(style, request):
    model = Transformer(request.getfixturevalue(style)()).eval()
    idx = torch.randint(0, 61, (2, 20))
    cache = model.make_kv_cache(batch_size=2)
    pieces = [model(idx[:, a:b], kv_cache=cache) for a, b in [(0, 9), (9, 13), (13, 14), (14, 20)]]
    assert cache.pos == 20
    assert torch.allclose(torch.cat(pieces, dim=1), model(idx), atol=1e-5)


def test_too_long_input_is_one_line_error(gpt2_config):
    model = Transformer(gpt2_config(block_size=8))
    with pytest.raises(UserError, match="block_size=8") as e:
        model(torch.zeros(1, 9, dtype=torch.long))
    assert "\n" not in str(e.value)
    cache = model.make_kv_cache()
    model(torch.zeros(1, 6, dtype=torch.long), kv_cache=cache)
    with pytest.raises(UserError, match="block_size"):
        model(torch.zeros(1, 3, dtype=torch.long), kv_cache=cache)


def test_gradient_checkpointing_gives_same_gradients(llama_config):
    model = Transformer(llama_config()).train()
    idx = torch.randint(0, 61, (2, 16))
    grads = []
    for flag in (False, True):
        model.zero_grad()
        model.gradient_checkpointing = flag
        model(idx).logsumexp(-1).mean().backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-6)


def test_dropout_is_active_only_in_training(gpt2_config):
    model = Transformer(gpt2_config(dropout=0.5))
    idx = torch.randint(0, 61, (1, 12))
    assert not torch.equal(model.train()(idx), model(idx))
    assert torch.equal(model.eval()(idx), model(idx))


@pytest.mark.parametrize("style", ["gpt2_config", "llama_config"])
def test_training_forward_compiles_without_graph_breaks(style, request):
    model = Transformer(request.getfixturevalue(style)(qk_norm=True)).train()
    model.gradient_checkpointing = True
    compiled = torch.compile(model, backend="eager", fullgraph=True)   # fullgraph: a graph break raises
    idx = torch.randint(0, 61, (2, 16))
    assert torch.allclose(compiled(idx), model(idx), atol=1e-5)


def test_bf16_autocast_forward_and_cache(llama_config):
    # init_std=0.1: logits spread enough (std ~0.6) that a tolerance tied to bf16 precision means something.
    model = Transformer(llama_config(qk_norm=True, init_std=0.1)).eval()
    idx = torch.randint(0, 61, (1, 10))
    with torch.no_grad():
        reference = model(idx)                  # fp32, no cache: the oracle
    # "error": a dtype mismatch that sends a kernel down its slow path warns, and fails here.
    with warnings.catch_warnings(), torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():
        warnings.simplefilter("error")
        full = model(idx)
        cache = model.make_kv_cache()           # fp32 cache under autocast: cast on read
        model(idx[:, :6], kv_cache=cache)
        step = model(idx[:, 6:], kv_cache=cache)
    assert full.dtype == step.dtype == torch.bfloat16
    # bf16 keeps 8 bits of mantissa (~0.4% per op); a few percent of the logits' spread is its error
    # budget, while a cache read at the wrong position or in the wrong dtype is off by ~the spread itself.
    budget = 0.06 * reference.std().item()
    assert (full.float() - reference).abs().max() <= budget
    assert (step.float() - reference[:, 6:]).abs().max() <= budget
    assert torch.equal(step.float().argmax(-1), reference[:, 6:].argmax(-1))


def _random_hf(model):
    """An HF model with every parameter random: HF's norms of one and biases of zero hide mapping errors."""
    randomize(model, seed=1)
    return model.eval()


def _copy(dst: torch.Tensor, src: torch.Tensor) -> None:
    with torch.no_grad():
        dst.copy_(src)


def test_llama_style_matches_transformers_llama(llama_config):
    transformers = pytest.importorskip("transformers")
    rope = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 8}
    hf = _random_hf(transformers.LlamaForCausalLM(transformers.LlamaConfig(
        vocab_size=61, hidden_size=32, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=24, rms_norm_eps=1e-5, rope_parameters=rope,
        tie_word_embeddings=False)))
    ours = Transformer(llama_config(rope_theta=500000.0, rope_scaling=rope)).eval()
    sd = hf.state_dict()
    _copy(ours.tok_emb.weight, sd["model.embed_tokens.weight"])
    _copy(ours.norm_f.weight, sd["model.norm.weight"])
    _copy(ours.lm_head.weight, sd["lm_head.weight"])
    for i, block in enumerate(ours.blocks):
        p = f"model.layers.{i}."
        _copy(block.attn_norm.weight, sd[p + "input_layernorm.weight"])
        _copy(block.mlp_norm.weight, sd[p + "post_attention_layernorm.weight"])
        for ours_name, hf_name in [("q", "q_proj"), ("k", "k_proj"), ("v", "v_proj"), ("o", "o_proj")]:
            _copy(getattr(block.attn, ours_name).weight, sd[p + f"self_attn.{hf_name}.weight"])
        for name in ("gate", "up", "down"):
            _copy(getattr(block.mlp, name).weight, sd[p + f"mlp.{name}_proj.weight"])
    idx = torch.randint(0, 61, (2, 20))
    with torch.no_grad():
        assert torch.allclose(ours(idx), hf(idx).logits, atol=1e-4)


def test_gpt2_style_matches_transformers_gpt2(gpt2_config):
    transformers = pytest.importorskip("transformers")
    hf = _random_hf(transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=61, n_positions=24, n_embd=32, n_layer=2, n_head=4, layer_norm_epsilon=1e-5,
        attn_implementation="eager")))
    ours = Transformer(gpt2_config()).eval()
    sd = hf.state_dict()
    _copy(ours.tok_emb.weight, sd["transformer.wte.weight"])
    _copy(ours.pos_emb.weight, sd["transformer.wpe.weight"])
    _copy(ours.norm_f.weight, sd["transformer.ln_f.weight"]); _copy(ours.norm_f.bias, sd["transformer.ln_f.bias"])
    for i, block in enumerate(ours.blocks):
        p = f"transformer.h.{i}."
        for ours_norm, hf_norm in [(block.attn_norm, "ln_1"), (block.mlp_norm, "ln_2")]:
            _copy(ours_norm.weight, sd[p + hf_norm + ".weight"]); _copy(ours_norm.bias, sd[p + hf_norm + ".bias"])
        # GPT-2 stores Conv1D weights transposed ([in, out]) and q, k, v fused in c_attn.
        qkv_w, qkv_b = sd[p + "attn.c_attn.weight"].t().chunk(3), sd[p + "attn.c_attn.bias"].chunk(3)
        for j, name in enumerate("qkv"):
            _copy(getattr(block.attn, name).weight, qkv_w[j]); _copy(getattr(block.attn, name).bias, qkv_b[j])
        for layer, hf_name in [(block.attn.o, "attn.c_proj"), (block.mlp.up, "mlp.c_fc"), (block.mlp.down, "mlp.c_proj")]:
            _copy(layer.weight, sd[p + hf_name + ".weight"].t()); _copy(layer.bias, sd[p + hf_name + ".bias"])
    idx = torch.randint(0, 61, (2, 20))
    with torch.no_grad():
        assert torch.allclose(ours(idx), hf(idx).logits, atol=1e-4)
