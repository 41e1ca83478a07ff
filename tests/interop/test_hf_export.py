"""Export oracle: our random-init models, exported, load in `transformers` and compute the same logits;
our tokenizer, exported, encodes like ours in `AutoTokenizer`; unsupported models fail with one sentence."""

from __future__ import annotations

import json

import pytest
import torch
from interop_helpers import MIXED_TEXT, random_batch, randomize, tiny_tokenizer

from scratchllm.errors import UserError
from scratchllm.interop.hf import export_hf, load_hf
from scratchllm.model.config import ModelConfig
from scratchllm.model.transformer import Transformer
from scratchllm.train.checkpoint import save_checkpoint, save_run_weights

transformers = pytest.importorskip("transformers")

VOCAB = 320
SMALL = dict(n_layer=2, n_head=4, n_embd=32, vocab_size=VOCAB, block_size=64)
LLAMA = dict(SMALL, norm="rmsnorm", position="rope", mlp="swiglu", bias=False, tie_embeddings=False)
# name -> (our config, the HF class it must become). Biases our model lacks are exported as zeros
# and GPT-2 gets each kv head repeated, so those round trips agree in logits, not in tensor names.
OURS = {
    "gpt2": (ModelConfig(**SMALL), "GPT2LMHeadModel"),
    "gpt2-nobias-gqa": (ModelConfig(**SMALL, bias=False, n_kv_head=2), "GPT2LMHeadModel"),
    "gpt2-qkv-bias-only": (ModelConfig(**SMALL, bias=False, qkv_bias=True), "GPT2LMHeadModel"),
    "gpt2-untied": (ModelConfig(**SMALL, tie_embeddings=False, mlp_hidden=72, norm_eps=1e-6), "GPT2LMHeadModel"),
    "llama": (ModelConfig(**LLAMA, n_kv_head=2, mlp_hidden=72, rope_theta=500000.0,
                          rope_scaling={"type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                        "high_freq_factor": 4.0, "original_max_position_embeddings": 32}),
              "LlamaForCausalLM"),
    "llama-bias": (ModelConfig(**{**LLAMA, "bias": True}, rope_scaling={"rope_type": "linear", "factor": 2.0}),
                   "LlamaForCausalLM"),
    "qwen2": (ModelConfig(**{**LLAMA, "tie_embeddings": True}, n_kv_head=1, qkv_bias=True), "Qwen2ForCausalLM"),
    "llama-bias-no-qkv-bias": (ModelConfig(**{**LLAMA, "bias": True}, qkv_bias=False), "LlamaForCausalLM"),
    "qwen3": (ModelConfig(**LLAMA, n_kv_head=2, qk_norm=True, rope_theta=1e6), "Qwen3ForCausalLM"),
    "qwen3-qkv-bias": (ModelConfig(**LLAMA, qk_norm=True, qkv_bias=True), "Qwen3ForCausalLM"),
}
EXACT_NAMES = {"gpt2", "gpt2-untied", "llama", "llama-bias", "qwen2", "qwen3"}


def make_run(tmp_path, cfg: ModelConfig, tok=None, seed: int = 0):
    torch.manual_seed(seed)
    model = Transformer(cfg)
    randomize(model, seed)
    run = tmp_path / "run"
    save_run_weights(run, model, tok)
    return run, model.eval()


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_tokenizer()


@pytest.mark.parametrize("name", list(OURS))
def test_round_trip_through_transformers(tmp_path, cli_main, name):
    cfg, hf_class = OURS[name]
    run, ours = make_run(tmp_path, cfg)
    out = tmp_path / "hf"
    assert cli_main(["export", "hf", str(run), "--out", str(out)]) == 0
    hf_model = transformers.AutoModelForCausalLM.from_pretrained(out).eval()
    assert type(hf_model).__name__ == hf_class
    idx = random_batch(VOCAB, length=48, seed=7)
    with torch.no_grad():
        want = ours(idx)
        assert want.abs().max() > 0.5
        assert (hf_model(idx).logits - want).abs().max().item() <= 1e-4
    if name in EXACT_NAMES:            # and back again: every tensor bit-identical
        back, _ = load_hf(out)
        for key, value in ours.state_dict().items():
            assert torch.equal(back.state_dict()[key], value), key


@pytest.mark.parametrize("name", ["gpt2", "llama"])
def test_exported_tokenizer_matches_ours(tmp_path, tokenizer, name):
    run, _ = make_run(tmp_path, OURS[name][0], tokenizer)
    out = export_hf(run, tmp_path / "hf")
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
            "generation_config.json"} <= {p.name for p in out.iterdir()}
    hf_tok = transformers.AutoTokenizer.from_pretrained(out)
    for text in MIXED_TEXT:
        ids = tokenizer.encode(text, allowed_special="all")
        assert hf_tok(text)["input_ids"] == ids, text
        assert hf_tok.decode(ids) == text
    assert hf_tok.eos_token == "<|endoftext|>" and hf_tok.eos_token_id == tokenizer.eot_id
    assert json.loads((out / "config.json").read_text())["eos_token_id"] == tokenizer.eot_id


def test_qwen2_tokenizer_loads_as_tokenizers_backend(tmp_path, tokenizer):
    """transformers >= 5 rebuilds any qwen2 tokenizer with Qwen's own regex, so the faithful loader
    for a qwen2-architecture export is PreTrainedTokenizerFast (docs/interop.md says so)."""
    run, _ = make_run(tmp_path, OURS["qwen2"][0], tokenizer)
    out = export_hf(run, tmp_path / "hf")
    hf_tok = transformers.PreTrainedTokenizerFast.from_pretrained(out)
    for text in MIXED_TEXT:
        assert hf_tok(text)["input_ids"] == tokenizer.encode(text, allowed_special="all"), text


UNSUPPORTED = [
    (dict(SMALL, position="sinusoidal"), "model.position"),
    (dict(SMALL, position="none"), "model.position"),
    (dict(SMALL, mlp="relu2"), "model.mlp"),
    (dict(LLAMA, norm="layernorm"), "model.norm"),
    (dict(SMALL, qk_norm=True), "model.qk_norm"),
    (dict(LLAMA, qk_norm=True, bias=True), "model.qk_norm"),
    (dict(SMALL, logit_softcap=30.0), "model.logit_softcap"),
]


@pytest.mark.parametrize("fields,option", UNSUPPORTED, ids=[o for _, o in UNSUPPORTED])
def test_unsupported_models_name_the_option(tmp_path, fields, option):
    run, _ = make_run(tmp_path, ModelConfig(**fields))
    with pytest.raises(UserError, match=option.replace(".", r"\.")):
        export_hf(run, tmp_path / "hf")
    assert not (tmp_path / "hf").exists()          # nothing half-written


def test_unsupported_export_on_the_command_line(tmp_path, cli_main, capsys):
    run, _ = make_run(tmp_path, ModelConfig(**SMALL, mlp="relu2"))
    assert cli_main(["export", "hf", str(run), "--out", str(tmp_path / "hf")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "model.mlp" in err and "Traceback" not in err


def test_character_tokenizer_cannot_be_exported(tmp_path):
    from scratchllm.tokenizer.char import CharTokenizer

    run, _ = make_run(tmp_path, ModelConfig(**SMALL), CharTokenizer.from_text("hello world"))
    with pytest.raises(UserError, match="character-level tokenizer"):
        export_hf(run, tmp_path / "hf")


def test_export_refuses_a_non_empty_out_and_leaves_it_alone(tmp_path, cli_main, capsys):
    run, _ = make_run(tmp_path, OURS[next(iter(OURS))][0])
    out = tmp_path / "hf"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert cli_main(["export", "hf", str(run), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: --out '{out}' already exists and is not empty; choose a new directory or delete it"
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    (tmp_path / "file").write_text("x")                       # a file in the way is refused the same way
    assert cli_main(["export", "hf", str(run), "--out", str(tmp_path / "file")]) == 2
    empty = tmp_path / "empty"
    empty.mkdir()                                             # an empty directory is fine
    assert cli_main(["export", "hf", str(run), "--out", str(empty)]) == 0
    assert (empty / "config.json").is_file()


def test_export_step_picks_that_checkpoint(tmp_path, cli_main):
    run, first = make_run(tmp_path, OURS["gpt2"][0])
    later = Transformer(first.config).eval()
    randomize(later, seed=5)
    save_checkpoint(run, 9, later)                    # a newer step with other weights
    idx = random_batch(VOCAB, length=16, seed=3)
    for step, ours in ((None, later), (0, first)):
        out = tmp_path / f"hf-{step}"
        assert cli_main(["export", "hf", str(run), "--out", str(out), *(["--step", str(step)] if step is not None else [])]) == 0
        hf_model = transformers.AutoModelForCausalLM.from_pretrained(out).eval()
        with torch.no_grad():
            assert (hf_model(idx).logits - ours(idx)).abs().max().item() <= 1e-4
    assert cli_main(["export", "hf", str(run), "--out", str(tmp_path / "x"), "--step", "4"]) == 2
