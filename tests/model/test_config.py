"""ModelConfig: the derived sizes (head_dim, kv_heads, SwiGLU hidden width, qkv bias) and `validate`,
whose every refusal is one sentence naming the field and the fix."""

import pytest

from scratchllm.errors import UserError
from scratchllm.model.config import ModelConfig


def test_derived_sizes():
    cfg = ModelConfig(n_head=12, n_embd=768)
    assert (cfg.head_dim, cfg.kv_heads, cfg.hidden_dim, cfg.use_qkv_bias) == (64, 12, 3072, True)
    # Llama 2 7B's MLP: 8/3 * 4096 = 10922.67, rounded up to a multiple of 256 = 11008
    llama = ModelConfig(n_head=32, n_kv_head=8, n_embd=4096, mlp="swiglu", bias=False)
    assert (llama.kv_heads, llama.hidden_dim, llama.use_qkv_bias) == (8, 11008, False)
    assert ModelConfig(n_embd=96, mlp="swiglu", mlp_multiple_of=32).hidden_dim == 256   # 256 = ceil(256/32)*32
    assert ModelConfig(n_embd=96, mlp="swiglu", mlp_multiple_of=100).hidden_dim == 300
    assert ModelConfig(mlp_hidden=100, mlp="swiglu").hidden_dim == 100
    assert ModelConfig(bias=False, qkv_bias=True).use_qkv_bias is True       # Qwen2: q/k/v biases only


def test_a_consistent_config_passes():
    for cfg in (ModelConfig(), ModelConfig(n_head=4, n_kv_head=1, n_embd=32, position="rope"),
                ModelConfig(n_head=3, n_embd=6, position="rope", vocab_size=1, block_size=1, n_layer=1)):
        cfg.validate()


@pytest.mark.parametrize("fields, match", [
    (dict(n_embd=100, n_head=3), r"model.n_embd=100 is not divisible by model.n_head=3"),
    (dict(n_head=4, n_kv_head=3, n_embd=32), r"model.n_head=4 is not divisible by model.n_kv_head=3"),
    (dict(n_head=4, n_embd=12, position="rope"), r"RoPE needs an even head dimension, got 3"),
    (dict(vocab_size=0), r"model.vocab_size must be positive, got 0"),
    (dict(block_size=-1), r"model.block_size must be positive, got -1"),
    (dict(n_layer=0), r"model.n_layer must be positive, got 0"),
])
def test_inconsistent_configs_are_one_sentence_errors(fields, match):
    with pytest.raises(UserError, match=match) as e:
        ModelConfig(**fields).validate()
    assert "\n" not in str(e.value)
