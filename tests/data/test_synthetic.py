"""Synthetic sources: deterministic templates, and samples from a trained run (tiny random model)."""

import pytest

from scratchllm.data.cli import model_samplers
from scratchllm.data.recipe import Recipe, SourceConfig
from scratchllm.data.synthetic import synthetic_documents
from scratchllm.errors import UserError


def test_templates_are_deterministic_and_fill_every_slot():
    cfg = SourceConfig(name="t", type="templates", count=50, seed=3, templates=["{a} and {b}.", "{b} or {a}!"],
                       slots={"a": ["x", "y"], "b": ["p", "q", "r"]})
    first = [d.text for d in synthetic_documents(cfg)]
    assert first == [d.text for d in synthetic_documents(cfg)]
    assert len(set(first)) > 5 and not any("{" in t for t in first)
    cfg.seed = 4
    assert first != [d.text for d in synthetic_documents(cfg)]


def test_template_with_unknown_slot_is_a_clear_error():
    cfg = SourceConfig(name="t", type="templates", count=1, templates=["{missing}"])
    with pytest.raises(UserError, match="slot '{missing}'"):
        list(synthetic_documents(cfg))


def test_model_source_samples_a_run(tmp_path, tokenizer_path):
    torch = pytest.importorskip("torch")
    from scratchllm.model.config import ModelConfig
    from scratchllm.model.transformer import Transformer
    from scratchllm.tokenizer import load_tokenizer
    from scratchllm.train.checkpoint import save_run_weights

    tok = load_tokenizer(tokenizer_path)
    torch.manual_seed(0)
    model = Transformer(ModelConfig(vocab_size=tok.vocab_size, block_size=32, n_layer=1, n_head=2, n_embd=16))
    save_run_weights(tmp_path / "run", model, tok)
    cfg = SourceConfig(name="gen", type="model", run=str(tmp_path / "run"), count=3, prompts=["The river"],
                       max_new_tokens=8, seed=1)
    with pytest.raises(UserError, match="needs a sampler"):
        list(synthetic_documents(cfg))
    sample = model_samplers(Recipe(sources=[cfg]))["gen"]
    docs = list(synthetic_documents(cfg, sample))
    assert [d.id for d in docs] == ["gen:synthetic:0", "gen:synthetic:1", "gen:synthetic:2"]
    assert all(d.text.startswith("The river") for d in docs)
    assert [d.text for d in docs] == [d.text for d in synthetic_documents(cfg, sample)]
