"""LoRA from scratch: zero B is the base, merge equals unmerged, only adapters learn, targets are checked."""

from __future__ import annotations

import math

import pytest
import torch
from ft_helpers import llama_config, tiny_config, tiny_model

from scratchllm.errors import UserError
from scratchllm.model.lora import (AdapterOnly, LoRALinear, LoraConfig, adapt_from_spec, adapter_spec, adapter_state,
                                   apply_lora, load_adapter_state, lora_layers, merge_lora, target_names)
from scratchllm.model.nf4 import NF4Linear
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


def test_a_is_kaiming_uniform_with_a_sqrt5_and_the_base_is_frozen():
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 4)
    layer = LoRALinear(linear, r=512, scaling=1.0, dropout=0.25)
    # U(-b, b) with b = gain * sqrt(3 / fan_in), gain = sqrt(2 / (1 + a^2)): a = sqrt(5) gives b = 1/sqrt(64);
    # 32,768 draws reach within 1% of it (a = sqrt(6) would stop at 0.926 b).
    assert 0.99 / 8 < layer.lora_A.abs().max() <= 1 / 8
    assert not linear.weight.requires_grad and not linear.bias.requires_grad     # frozen by the wrapper itself
    assert layer.dropout.p == 0.25


def test_a_meta_base_gets_real_adapters_on_the_default_device():
    with torch.device("meta"):
        linear = torch.nn.Linear(8, 6)
    layer = LoRALinear(linear, r=2, scaling=1.0)
    assert layer.lora_A.device.type == "cpu" and layer.lora_B.device.type == "cpu"
    assert torch.isfinite(layer.lora_A).all() and layer.lora_A.abs().sum() > 0


def test_apply_lora_passes_dropout_and_needs_no_config_on_the_model():
    model = tiny_model(llama_config())
    apply_lora(model, LoraConfig(r=2, dropout=0.3, targets=["q"]))
    assert {layer.dropout.p for layer in lora_layers(model).values()} == {0.3}
    # any module with linear layers: no `config`, so no tied embeddings to protect, even on lm_head
    plain = torch.nn.Module()
    plain.body, plain.lm_head = torch.nn.Linear(4, 4), torch.nn.Linear(4, 9)
    assert apply_lora(plain, LoraConfig(r=2, targets=["lm_head"])) == ["lm_head"]
    assert isinstance(plain.lm_head, LoRALinear) and isinstance(plain.body, torch.nn.Linear)


def test_lora_on_a_tied_lm_head_is_refused_with_its_exact_message():
    with pytest.raises(UserError) as err:
        apply_lora(tiny_model(tiny_config(tie_embeddings=True)), LoraConfig(targets=["lm_head"]))
    assert str(err.value) == ("LoRA on lm_head of a model with tied embeddings would also change the input "
                              "embeddings when merged; drop lm_head from lora.targets")


def test_the_adapter_spec_rebuilds_the_trained_adapters():
    cfg = LoraConfig(r=4, alpha=8.0, dropout=0.1, targets=["q", "v"], rslora=True)
    spec = adapter_spec(cfg, "runs/base", quantized=False, ranks={"blocks.0.attn.q": 2})
    assert spec == {"base": "runs/base", "quantized": False, "r": 4, "alpha": 8.0, "dropout": 0.1,
                    "targets": ["q", "v"], "rslora": True, "ranks": {"blocks.0.attn.q": 2}}
    trained = tiny_model(llama_config())
    apply_lora(trained, cfg, ranks=spec["ranks"])
    randomize_b(trained)
    rebuilt = adapt_from_spec(tiny_model(llama_config()), spec, adapter_state(trained))
    layers = lora_layers(rebuilt)
    assert {n: layer.lora_A.shape[0] for n, layer in layers.items()} == {
        "blocks.0.attn.q": 2, "blocks.0.attn.v": 4, "blocks.1.attn.q": 4, "blocks.1.attn.v": 4}
    assert {(layer.scaling, layer.dropout.p) for layer in layers.values()} == {(8.0 / 2.0, 0.1)}   # rsLoRA: alpha/sqrt(r)
    assert torch.equal(rebuilt.eval()(IDX), trained.eval()(IDX))


def test_a_quantized_spec_stores_every_block_linear_in_nf4_first():
    cfg = LoraConfig(r=2, targets=["q"])
    spec = adapter_spec(cfg, "runs/base", quantized=True)
    assert spec["quantized"] is True
    trained = tiny_model(llama_config())
    apply_lora(trained, cfg)
    randomize_b(trained)
    rebuilt = adapt_from_spec(tiny_model(llama_config()), spec, adapter_state(trained))
    names = [n for n, m in tiny_model(llama_config()).named_modules()
             if n.startswith("blocks.") and isinstance(m, torch.nn.Linear)]
    assert len(names) == 14 and all(isinstance(getattr(rebuilt.get_submodule(n), "base", rebuilt.get_submodule(n)),
                                               NF4Linear) for n in names)
    assert isinstance(rebuilt.lm_head, torch.nn.Linear)                    # outside the blocks: kept
    assert not torch.equal(rebuilt(IDX), trained(IDX))                     # the NF4 rounding shows
    assert torch.allclose(rebuilt(IDX), trained(IDX), atol=0.5)


def test_an_adapter_that_does_not_fit_says_which_tensors_with_exact_messages():
    model = tiny_model(llama_config())
    apply_lora(model, LoraConfig(r=2, targets=["q", "v"]))           # 8 tensors: 2 blocks x (q, v) x (A, B)
    state = adapter_state(model)
    with pytest.raises(UserError) as err:
        load_adapter_state(model, {"x.lora_A": 1, "y.lora_A": 2, "z.lora_A": 3, "zz.lora_A": 4})
    missing = sorted(state)[:3]
    assert str(err.value) == (f"the adapter does not fit this model (missing {missing}, unexpected "
                              "['x.lora_A', 'y.lora_A', 'z.lora_A']); it was trained with other lora.targets "
                              "or on another base")
    wrong = {**state, "blocks.1.attn.v.lora_B": torch.zeros(state["blocks.1.attn.v.lora_B"].shape[0], 3)}
    with pytest.raises(UserError) as err:
        load_adapter_state(model, wrong)
    assert str(err.value) == ("adapter tensor blocks.1.attn.v.lora_B has shape [16, 3], the model expects "
                              "[16, 2]; lora.r or the base differ from training")


def test_the_checkpoint_view_keeps_the_models_config():
    model = tiny_model(llama_config())
    apply_lora(model, LoraConfig(r=2, targets=["q"]))
    assert AdapterOnly(model).config is model.config           # the loop reads block_size and vocab from it
