"""Import oracle: HF checkpoints built locally at random init load into our Transformer and agree with
`transformers` (logits to 1e-4, greedy generation token for token)."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch
from interop_helpers import (HF_CASES, MIXED_TEXT, VOCAB, greedy_hf, greedy_ours, make_hf_model, random_batch,
                             tiny_tokenizer)
from shared_data import require_shared

import scratchllm
from scratchllm.interop.hf import load_hf
from scratchllm.model.transformer import Transformer

pytest.importorskip("transformers")

ARCH = {"gpt2": "gpt2", "gpt2-untied": "gpt2", "llama-gqa": "llama", "llama3-scaled": "llama",
        "llama-linear": "llama", "qwen2": "qwen2", "mistral": "mistral", "qwen3": "qwen3"}


@pytest.mark.parametrize("case", list(HF_CASES))
def test_logits_match_transformers(hf_dirs, case):
    path, hf_model = hf_dirs[case]
    ours, arch = load_hf(path)
    assert arch == ARCH[case]
    idx = random_batch(VOCAB, seed=1)
    with torch.no_grad():
        want = hf_model(idx).logits
        got = ours(idx)
    assert want.abs().max() > 0.5                       # random weights: logits are far from zero
    assert (got - want).abs().max().item() <= 1e-4


@pytest.mark.parametrize("case", ["gpt2", "llama-gqa", "llama3-scaled", "qwen2", "mistral", "qwen3"])
def test_greedy_generation_matches_transformers(hf_dirs, case):
    path, hf_model = hf_dirs[case]
    ours, _ = load_hf(path)
    prompt = random_batch(VOCAB, batch=2, length=8, seed=2)
    assert torch.equal(greedy_ours(ours, prompt, 32), greedy_hf(hf_model, prompt, 32))


@pytest.mark.parametrize("case", ["gpt2", "qwen2", "llama-gqa"])
def test_imported_model_is_an_ordinary_trainable_model(hf_dirs, case):
    """Built on the meta device and filled: no tensor is left on meta, a tied matrix is one Parameter."""
    path, hf_model = hf_dirs[case]
    ours, _ = load_hf(path)
    assert ours.num_params() == hf_model.num_parameters()
    assert all(not t.is_meta for t in [*ours.parameters(), *ours.buffers()])
    assert all(p.requires_grad for p in ours.parameters())
    assert (ours.lm_head.weight is ours.tok_emb.weight) == ours.config.tie_embeddings
    ours(random_batch(VOCAB, seed=8)).sum().backward()
    assert ours.tok_emb.weight.grad is not None


def test_imported_config_fields(hf_dirs):
    gqa, _ = load_hf(hf_dirs["llama-gqa"][0])
    cfg = gqa.config
    assert (cfg.kv_heads, cfg.rope_theta, cfg.tie_embeddings, cfg.bias) == (2, 500000.0, False, False)
    qwen = load_hf(hf_dirs["qwen2"][0])[0].config
    assert (qwen.bias, qwen.use_qkv_bias, qwen.tie_embeddings) == (False, True, True)
    assert load_hf(hf_dirs["mistral"][0])[0].config.block_size == 48   # capped at the sliding window
    scaled = load_hf(hf_dirs["llama3-scaled"][0])[0].config
    assert scaled.rope_scaling == {"type": "llama3", "factor": 4.0, "low_freq_factor": 1.0,
                                   "high_freq_factor": 4.0, "original_max_position_embeddings": 32}


def test_rope_scaling_changes_the_result(hf_dirs):
    """The llama3 case only proves something if dropping the scaling would break the match."""
    path, hf_model = hf_dirs["llama3-scaled"]
    ours, _ = load_hf(path)
    unscaled = Transformer(dataclasses.replace(ours.config, rope_scaling=None))
    unscaled.load_state_dict(ours.state_dict())
    idx = random_batch(VOCAB, seed=3)
    with torch.no_grad():
        assert (unscaled.eval()(idx) - hf_model(idx).logits).abs().max() > 1e-2


def test_sharded_checkpoint(tmp_path):
    hf_model = make_hf_model("llama-gqa", seed=5)
    hf_model.save_pretrained(tmp_path, max_shard_size="60KB")
    assert (tmp_path / "model.safetensors.index.json").is_file()
    assert len(list(tmp_path.glob("model-*.safetensors"))) > 1
    ours, _ = load_hf(tmp_path)
    idx = random_batch(VOCAB, seed=4)
    with torch.no_grad():
        assert (ours(idx) - hf_model(idx).logits).abs().max() <= 1e-4


@pytest.mark.parametrize("case", ["gpt2", "llama-gqa"])
def test_import_command_writes_a_loadable_run(hf_dirs, tmp_path, cli_main, case):
    from scratchllm.tokenizer.formats import export_hf as export_tokenizer

    src = tmp_path / "hf"
    shutil.copytree(hf_dirs[case][0], src)
    tok = tiny_tokenizer()
    export_tokenizer(tok, src / "tokenizer.json")
    out = tmp_path / "runs" / "imported"
    assert cli_main(["import", "hf", str(src), "--out", str(out)]) == 0
    run = scratchllm.load(out)
    idx = random_batch(VOCAB, seed=6)
    with torch.no_grad():
        assert (run.model(idx) - hf_dirs[case][1](idx).logits).abs().max() <= 1e-4
    for text in MIXED_TEXT:
        assert run.tokenizer.encode(text, allowed_special="all") == tok.encode(text, allowed_special="all")


def _gpt2_files() -> tuple[Path, Path]:
    return (require_shared("tokenizer/gpt2/encoder.json"), require_shared("tokenizer/gpt2/vocab.bpe"))


def test_import_real_gpt2_tokenizer_json(tmp_path):
    """GPT-2's real tokenizer, saved by `transformers` as tokenizer.json, imports with identical ids."""
    from transformers import AutoTokenizer, GPT2Tokenizer

    from scratchllm.interop.hf import load_hf_tokenizer

    encoder, merges = _gpt2_files()
    shutil.copy(encoder, tmp_path / "vocab.json")
    shutil.copy(merges, tmp_path / "merges.txt")
    GPT2Tokenizer.from_pretrained(tmp_path).save_pretrained(tmp_path / "hf")
    hf_tok = AutoTokenizer.from_pretrained(tmp_path / "hf")
    ours = load_hf_tokenizer(tmp_path / "hf")
    assert ours.vocab_size == 50257 and ours.eot_id == 50256
    for text in MIXED_TEXT:
        assert ours.encode(text, allowed_special="all") == hf_tok(text)["input_ids"], text


def test_sentencepiece_style_tokenizer_is_skipped_with_a_note(hf_dirs, tmp_path, cli_main, capsys):
    """Llama 2 / Mistral ship Metaspace (SentencePiece-style) tokenizers: the model imports, the tokenizer not."""
    src = tmp_path / "hf"
    shutil.copytree(hf_dirs["mistral"][0], src)
    metaspace = {"version": "1.0", "added_tokens": [], "normalizer": None,
                 "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": False},
                 "model": {"type": "BPE", "vocab": {"<unk>": 0, "\u2581a": 1}, "merges": [], "byte_fallback": True}}
    (src / "tokenizer.json").write_text(json.dumps(metaspace))
    out = tmp_path / "run"
    assert cli_main(["import", "hf", str(src), "--out", str(out)]) == 0
    assert "not a byte-level BPE tokenizer" in capsys.readouterr().err
    assert scratchllm.load(out).tokenizer is None


def test_original_gpt2_layout(hf_dirs, tmp_path):
    """openai-community/gpt2's file: no "transformer." prefix, plus causal-mask buffers (ignored)."""
    from safetensors.torch import load_file, save_file

    src, hf_model = hf_dirs["gpt2"]
    tensors = {k.removeprefix("transformer."): v for k, v in load_file(src / "model.safetensors").items()}
    for i in range(2):
        tensors[f"h.{i}.attn.bias"] = torch.ones(1, 1, 64, 64).tril()
    shutil.copy(src / "config.json", tmp_path / "config.json")
    save_file(tensors, tmp_path / "model.safetensors")
    ours, _ = load_hf(tmp_path)
    idx = random_batch(VOCAB, seed=9)
    with torch.no_grad():
        assert (ours(idx) - hf_model(idx).logits).abs().max() <= 1e-4
