"""LoRA from scratch: zero B is the base, merge equals unmerged, only adapters learn, targets are checked."""

from __future__ import annotations

import math

import pytest
import torch
from ft_helpers import llama_config, tiny_config, tiny_model

from scratchllm.errors import UserError
from scratchllm.model.lora import (AdapterOnly, LoRALinear, LoraConfig, adapter_state, apply_lora,
                                   load_adapter_state, lora_layers, merge_lora, target_names)
from scratchllm.train.config import TrainConfig
from scratchllm.train.optim import make_optimizer

IDX = torch.randint(0, 320, (2, 16), generator=torch.Generator().manual_seed(0))


def randomize_b(model, seed=1):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in lora_layers(model).values():
            layer.lora_B.copy_(0.1 * torch.randn(layer.lora_B.shape, generator=gen))


@pytest.mark.parametrize("cfg", [tiny_config(), llama_config()], ids=["gpt2", "llama"])
def test_zero_b_is_the_base_and_merge_equals_unmerged(cfg):
    model = tiny_model(cfg)
    base = model(IDX)
    apply_lora(model, LoraConfig(r=4, alpha=8, targets=["q", "k", "v", "o", "up", "down"]))
    assert torch.equal(model(IDX), base)
    randomize_b(model)
    adapted = model(IDX)
    assert not torch.allclose(adapted, base, atol=1e-3)
    merged = merge_lora(model)(IDX)
    assert not lora_layers(model)
    assert torch.allclose(merged, adapted, atol=1e-5)


def test_forward_is_the_formula():
    torch.manual_seed(0)
    linear = torch.nn.Linear(8, 6)
    layer = LoRALinear(linear, r=2, scaling=3.0)
    torch.nn.init.normal_(layer.lora_B)
    x = torch.randn(4, 8)
    want = x @ linear.weight.T + linear.bias + 3.0 * (x @ layer.lora_A.T @ layer.lora_B.T)
    assert torch.allclose(layer(x), want, atol=1e-6)
    assert layer.lora_A.abs().max() <= 1 / math.sqrt(8)      # Kaiming uniform with a=sqrt(5): bound 1/sqrt(in)


def test_scaling_and_rslora():
    assert LoraConfig(r=16, alpha=32).scaling == 2.0
    assert LoraConfig(r=16, alpha=32, rslora=True).scaling == 8.0


def test_only_adapters_get_gradients_and_the_optimizer_holds_only_them():
    model = tiny_model(llama_config())
    names = apply_lora(model, LoraConfig(r=4, targets=["q", "v", "lm_head"]))
    assert "lm_head" in names
    randomize_b(model)
    model(IDX).sum().backward()
    for name, p in model.named_parameters():
        is_adapter = ".lora_" in name
        assert p.requires_grad == is_adapter, name
        assert (p.grad is not None) == is_adapter, name
    opt = make_optimizer(AdapterOnly(model), TrainConfig())
    held = {id(p) for g in opt.param_groups for p in g["params"]}
    assert held == {id(p) for n, p in model.named_parameters() if ".lora_" in n}


def test_target_patterns():
    model = tiny_model(llama_config(n_layer=3))
    assert apply_lora(model, LoraConfig(targets=["re:blocks\\.[01]\\.mlp\\.(up|gate)"])) == [
        "blocks.0.mlp.gate", "blocks.0.mlp.up", "blocks.1.mlp.gate", "blocks.1.mlp.up"]
    with pytest.raises(UserError, match="LoRA target 'qkv' matches no linear layer"):
        apply_lora(tiny_model(), LoraConfig(targets=["q", "qkv"]))
    with pytest.raises(UserError, match="tied embeddings"):
        apply_lora(tiny_model(tiny_config(tie_embeddings=True)), LoraConfig(targets=["lm_head"]))


def test_adapter_state_round_trip_and_checkpoint_view():
    model = tiny_model(llama_config())
    apply_lora(model, LoraConfig(r=2, targets=["q", "v"]))
    randomize_b(model)
    state = adapter_state(model)
    assert sorted(state)[:2] == ["blocks.0.attn.q.lora_A", "blocks.0.attn.q.lora_B"]
    view = AdapterOnly(model)
    assert view.state_dict().keys() == state.keys()        # a checkpoint holds the adapters only
    other = tiny_model(llama_config())
    apply_lora(other, LoraConfig(r=2, targets=["q", "v"]))
    load_adapter_state(other, state)
    assert torch.equal(other(IDX), model(IDX))
    wrong = tiny_model(llama_config())
    apply_lora(wrong, LoraConfig(r=2, targets=["q", "k"]))
    with pytest.raises(UserError, match="does not fit this model"):
        load_adapter_state(wrong, state)


def test_checkpoint_view_passes_gradient_checkpointing_through():
    model = tiny_model(llama_config())
    apply_lora(model, LoraConfig(r=2, targets=["q"]))
    view = AdapterOnly(model)
    view.gradient_checkpointing = True          # what the loop does with train.gradient_checkpointing
    assert model.gradient_checkpointing


def test_all_linear_is_every_block_linear_layer():
    for cfg, per_block in [(tiny_config(), 6), (llama_config(), 7)]:
        names = apply_lora(tiny_model(cfg), LoraConfig())
        assert len(names) == 2 * per_block and "lm_head" not in names


def test_lora_settings_are_checked_at_their_bounds_with_their_exact_messages():
    LoraConfig(r=1, dropout=0.99).validate()                              # the smallest rank, the largest dropout
    for cfg, message in [(LoraConfig(r=0), "lora.r must be a positive rank, got 0"),
                         (LoraConfig(dropout=1.0), "lora.dropout must be in [0, 1), got 1.0"),
                         (LoraConfig(targets=[]), "lora.targets is empty; name the layers to adapt, "
                                                  "e.g. lora.targets=['q','v']")]:
        with pytest.raises(UserError) as err:
            cfg.validate()
        assert str(err.value) == message


def test_an_unknown_target_lists_the_models_layer_names():
    model = tiny_model(llama_config())
    with pytest.raises(UserError) as err:
        target_names(model, ["q", "nope"])
    linears = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    short = ", ".join(sorted({n.split(".")[-1] for n in linears}))
    assert str(err.value) == (f"LoRA target 'nope' matches no linear layer of this model; use layer names {short} "
                              f"or a regular expression 're:...' over names like {linears[0]!r}")
