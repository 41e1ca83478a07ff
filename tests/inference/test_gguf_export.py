"""`scratchllm export gguf`: the file holds what llama.cpp reads (checked with the gguf package's reader),
RoPE's row permutation computes the same attention scores, and unsupported shapes name their option.

The llama.cpp oracle (logits and token ids, through node-llama-cpp's prebuilt llama.cpp) is in test_gguf_llamacpp.py."""

import numpy as np
import pytest
import torch
from quant_helpers import byte_tokenizer

from scratchllm import cli
from scratchllm.errors import UserError
from scratchllm.inference.gguf import _permute_rope, as_exported, export_gguf
from scratchllm.model.config import ModelConfig
from scratchllm.model.position import apply_rope, rope_tables
from scratchllm.model.transformer import Transformer
from scratchllm.tokenizer.bpe import Tokenizer
from scratchllm.train.checkpoint import save_run_weights

gguf = pytest.importorskip("gguf")

GPT2 = dict(n_layer=2, n_head=2, n_embd=64, vocab_size=264, block_size=64)
LLAMA = dict(GPT2, norm="rmsnorm", position="rope", mlp="swiglu", bias=False, n_kv_head=1, tie_embeddings=False,
             mlp_hidden=96)


def make_run(path, **cfg):
    torch.manual_seed(0)
    model = Transformer(ModelConfig(**cfg)).eval()
    save_run_weights(path, model, byte_tokenizer())
    return model


def read(path):
    reader = gguf.GGUFReader(str(path))
    fields = {k: f.contents() for k, f in reader.fields.items()}
    return fields, {t.name: t for t in reader.tensors}


@pytest.mark.parametrize("style,cfg", [("gpt2", GPT2), ("llama", LLAMA)])
def test_f16_file_holds_hyperparameters_tokenizer_and_weights(tmp_path, style, cfg):
    model = make_run(tmp_path / "run", **cfg)
    info = export_gguf(tmp_path / "run", tmp_path / "m.gguf")
    assert info["arch"] == style and info["pre_tokenizer"] == "gpt-2"
    fields, tensors = read(tmp_path / "m.gguf")
    assert fields["general.architecture"] == style
    assert fields[f"{style}.block_count"] == 2 and fields[f"{style}.embedding_length"] == 64
    assert fields[f"{style}.context_length"] == 64 and fields[f"{style}.attention.head_count_kv"] == model.config.kv_heads
    assert fields[f"{style}.feed_forward_length"] == model.config.hidden_dim
    tokens = fields["tokenizer.ggml.tokens"]
    assert len(tokens) == 264 and tokens[256] == "<|endoftext|>" and tokens[32] == "Ġ" and tokens[260] == "[PAD260]"
    assert fields["tokenizer.ggml.model"] == "gpt2" and fields["tokenizer.ggml.eos_token_id"] == 256
    emb = tensors["token_embd.weight"]
    assert emb.tensor_type == gguf.GGMLQuantizationType.F16
    np.testing.assert_allclose(emb.data, model.tok_emb.weight.detach().numpy(), atol=1e-3)
    assert tensors["output_norm.weight"].tensor_type == gguf.GGMLQuantizationType.F32
    if style == "gpt2":
        qkv = torch.cat([model.blocks[0].attn.q.weight, model.blocks[0].attn.k.weight, model.blocks[0].attn.v.weight])
        np.testing.assert_allclose(tensors["blk.0.attn_qkv.weight"].data, qkv.detach().numpy(), atol=1e-3)
        assert not tensors["blk.1.ffn_up.bias"].data.any()          # bias=False is a zero bias
        assert "output.weight" not in tensors                      # tied: llama.cpp reuses token_embd
    else:
        assert "output.weight" in tensors and "blk.1.ffn_gate.weight" in tensors


def test_permuted_rows_with_interleaved_rope_give_the_same_scores():
    # llama.cpp's llama rotates pairs (0,1),(2,3)...; we rotate halves. Same scores after the permutation.
    torch.manual_seed(0)
    n_head, hd, d, T = 2, 8, 16, 5
    wq, wk, x = torch.randn(n_head * hd, d), torch.randn(n_head * hd, d), torch.randn(T, d)
    cos, sin = rope_tables(hd, T)

    def halves(w):
        return apply_rope((x @ w.T).view(T, n_head, hd).transpose(0, 1), cos, sin)

    def interleaved(w):
        q = (x @ w.T).view(T, n_head, hd // 2, 2).transpose(0, 1)
        c, s = cos[:, : hd // 2], sin[:, : hd // 2]
        return torch.stack([q[..., 0] * c - q[..., 1] * s, q[..., 0] * s + q[..., 1] * c], -1).flatten(-2)

    ref = halves(wq) @ halves(wk).transpose(-1, -2)
    ours = interleaved(_permute_rope(wq, n_head)) @ interleaved(_permute_rope(wk, n_head)).transpose(-1, -2)
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(interleaved(wq) @ interleaved(wk).transpose(-1, -2), ref, atol=1e-2)


@pytest.mark.parametrize("gguf_type,qtype", [("q8_0", "Q8_0"), ("q4_0", "Q4_0")])
def test_block_quantized_types_dequantize_close_to_the_weights(tmp_path, gguf_type, qtype):
    model = make_run(tmp_path / "run", **LLAMA)
    export_gguf(tmp_path / "run", tmp_path / "m.gguf", gguf_type)
    _, tensors = read(tmp_path / "m.gguf")
    t = tensors["blk.0.ffn_down.weight"]
    assert t.tensor_type == getattr(gguf.GGMLQuantizationType, qtype)
    w = model.blocks[0].mlp.down.weight.detach().numpy()
    back = gguf.quants.dequantize(t.data, t.tensor_type).reshape(w.shape)
    # per block of 32, step s = absmax/127 (q8_0) or absmax/8 (q4_0). q8_0: half a step, plus the fp16
    # rounding of s times up to 127 steps (2^-11·127 ≈ 0.06 s); q4_0: one step (codes -8..7, so the side
    # opposite the largest value can be clamped by a whole step).
    absmax = np.abs(w.reshape(w.shape[0], -1, 32)).max(-1, keepdims=True)
    bound = absmax / 127 * 0.57 if gguf_type == "q8_0" else absmax / 8 * 1.01
    assert (np.abs(back.reshape(absmax.shape[0], -1, 32) - w.reshape(absmax.shape[0], -1, 32)) <= bound + 1e-6).all()


@pytest.mark.parametrize("gguf_type", ["f16", "q8_0", "q4_0"])
def test_as_exported_holds_the_files_weights(tmp_path, gguf_type):
    model = make_run(tmp_path / "run", **LLAMA)
    export_gguf(tmp_path / "run", tmp_path / "m.gguf", gguf_type)
    _, tensors = read(tmp_path / "m.gguf")
    exported = as_exported(model, gguf_type)
    for ours, name in [(exported.blocks[1].mlp.down.weight, "blk.1.ffn_down.weight"), (exported.lm_head.weight, "output.weight"),
                       (exported.blocks[0].attn.v.weight, "blk.0.attn_v.weight")]:
        t = tensors[name]
        back = gguf.quants.dequantize(t.data, t.tensor_type).reshape(ours.shape)
        np.testing.assert_array_equal(back, ours.detach().numpy())
    assert not torch.equal(exported.blocks[1].mlp.down.weight, model.blocks[1].mlp.down.weight)
    torch.testing.assert_close(exported.blocks[0].attn_norm.weight, model.blocks[0].attn_norm.weight, rtol=0, atol=0)


@pytest.mark.parametrize("override,option", [
    (dict(position="rope"), "model.position='rope' blocks this layernorm model"),
    (dict(norm="rmsnorm", position="rope", mlp="gelu", bias=False), "model.mlp='gelu' blocks"),
    (dict(norm="rmsnorm", position="rope", mlp="swiglu", bias=True), "model.bias=true blocks"),
    (dict(qk_norm=True), "model.qk_norm=true blocks"),
    (dict(logit_softcap=30.0), "model.logit_softcap=30.0 blocks"),
])
def test_unsupported_shape_names_the_option_that_blocks_it(tmp_path, monkeypatch, capsys, override, option):
    make_run(tmp_path / "run", **{**GPT2, **override})
    monkeypatch.setattr(cli, "COMMAND_MODULES", ["scratchllm.interop.cli"])
    assert cli.main(["export", "gguf", str(tmp_path / "run"), "--out", str(tmp_path / "m.gguf")]) == 2
    err = capsys.readouterr().err
    assert option in err and err.count("\n") == 1
    assert not list(tmp_path.glob("*.gguf*"))                      # nothing half-written


def test_bad_type_and_custom_regex_are_one_sentence(tmp_path):
    make_run(tmp_path / "run", **GPT2)
    with pytest.raises(UserError, match="--type q2_k is not supported"):
        export_gguf(tmp_path / "run", tmp_path / "m.gguf", "q2_k")
    torch.manual_seed(0)
    tok = Tokenizer({bytes([i]): i for i in range(256)}, r"\w+|\s+|.", {"<|endoftext|>": 256})
    save_run_weights(tmp_path / "custom", Transformer(ModelConfig(**GPT2)), tok)
    with pytest.raises(UserError, match="custom regex that no llama.cpp pre-tokenizer matches"):
        export_gguf(tmp_path / "custom", tmp_path / "m.gguf")


def test_docstring_examples():
    import doctest

    from scratchllm.inference import gguf as gguf_module

    result = doctest.testmod(gguf_module)
    assert result.attempted > 0 and result.failed == 0
