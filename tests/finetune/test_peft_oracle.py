"""Oracle: our LoRA against PEFT on random Hugging Face Llama and GPT-2 models, and the file round trips.

- the same A/B in ours and in PEFT give the same logits (both directions of the translation);
- `scratchllm export hf` on a LoRA run writes DIR + DIR/adapter that PEFT loads with equal logits;
- `scratchllm import hf` takes a PEFT-saved adapter directory (with its base) back.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch

peft = pytest.importorskip("peft")
transformers = pytest.importorskip("transformers")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "interop"))
from interop_helpers import make_hf_model  # noqa: E402  (the interop tests' tiny random HF models)

import scratchllm  # noqa: E402
from scratchllm import cli  # noqa: E402
from scratchllm.interop.hf import load_hf  # noqa: E402
from scratchllm.interop.hf_config import config_to_hf  # noqa: E402
from scratchllm.interop.peft import adapter_to_peft, peft_to_adapter  # noqa: E402
from scratchllm.model.lora import (AdapterOnly, LoraConfig, adapter_spec, adapter_state,  # noqa: E402
                                   apply_lora, load_adapter_state, lora_layers)
from scratchllm.train.checkpoint import save_checkpoint, save_run_weights  # noqa: E402
from scratchllm.utils.atomic import atomic_write_text  # noqa: E402

IDX = torch.randint(0, 320, (2, 24), generator=torch.Generator().manual_seed(0))
CASES = {  # HF case -> (PEFT target modules, our targets)
    "llama-gqa": (["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
                  ["q", "k", "v", "o", "gate", "up", "down"]),
    "gpt2": (["c_attn", "c_proj", "c_fc"], ["q", "k", "v", "o", "up", "down"]),
}


def peft_model(case, base_dir, rslora=False):
    """A random HF model saved to `base_dir`, then wrapped by PEFT with random (non-zero) A and B."""
    hf = make_hf_model(case)
    hf.save_pretrained(base_dir)     # before wrapping: PEFT replaces the layers in place
    targets = CASES[case][0]
    config = peft.LoraConfig(r=4, lora_alpha=8, target_modules=targets, use_rslora=rslora,
                             init_lora_weights=False, fan_in_fan_out=case == "gpt2")   # random B, not zero
    torch.manual_seed(1)
    return hf, peft.get_peft_model(hf, config).eval()


@torch.no_grad()
def hf_logits(model):
    return model(IDX).logits


@pytest.mark.parametrize("rslora", [False, True], ids=["lora", "rslora"])
@pytest.mark.parametrize("case", list(CASES))
def test_peft_adapter_in_ours_gives_peft_logits(case, rslora, tmp_path):
    hf, wrapped = peft_model(case, tmp_path, rslora)
    want = hf_logits(wrapped)
    ours, _ = load_hf(tmp_path)
    tensors = peft.get_peft_model_state_dict(wrapped)
    config = wrapped.peft_config["default"].to_dict()
    state, lora, ranks = peft_to_adapter(tensors, config, ours.config, json.loads((tmp_path / "config.json").read_text()))
    apply_lora(ours, lora, ranks)
    load_adapter_state(ours, state)
    with torch.no_grad():
        assert torch.allclose(ours(IDX), want, atol=1e-5)
        with wrapped.disable_adapter():
            assert not torch.allclose(hf_logits(wrapped), want, atol=1e-3)   # the adapter matters


@pytest.mark.parametrize("case", list(CASES))
def test_our_adapter_in_peft_gives_our_logits(case, tmp_path):
    hf = make_hf_model(case)
    hf.save_pretrained(tmp_path)
    ours, _ = load_hf(tmp_path)
    cfg = LoraConfig(r=4, alpha=8, targets=CASES[case][1])
    apply_lora(ours, cfg)
    gen = torch.Generator().manual_seed(2)
    for layer in lora_layers(ours).values():
        layer.lora_B.data.copy_(0.1 * torch.randn(layer.lora_B.shape, generator=gen))
    tensors, config = adapter_to_peft(adapter_state(ours), adapter_spec(cfg, "x"), ours.config,
                                      config_to_hf(ours.config), str(tmp_path))
    if case == "gpt2":   # q, k, v became one rank-12 adapter of the fused c_attn
        assert config["rank_pattern"] == {f"transformer.h.{i}.attn.c_attn": 12 for i in range(2)}
    wrapped = peft.get_peft_model(hf, peft.LoraConfig(**{k: v for k, v in config.items()
                                                         if k not in ("peft_type", "base_model_name_or_path")})).eval()
    result = peft.set_peft_model_state_dict(wrapped, tensors)
    assert not [k for k in result.missing_keys if "lora_" in k] and not result.unexpected_keys
    with torch.no_grad():
        assert torch.allclose(hf_logits(wrapped), ours(IDX), atol=1e-5)


def lora_run(root: Path, case: str) -> Path:
    """A LoRA run on a base imported from a random HF model, with random B (no training needed)."""
    hf = make_hf_model(case)
    hf.save_pretrained(root / "hf")
    model, _ = load_hf(root / "hf")
    save_run_weights(root / "base", model)
    cfg = LoraConfig(r=4, alpha=16, targets=CASES[case][1][:4])
    apply_lora(model, cfg)
    gen = torch.Generator().manual_seed(3)
    for layer in lora_layers(model).values():
        layer.lora_B.data.copy_(0.1 * torch.randn(layer.lora_B.shape, generator=gen))
    run = root / "sft"
    save_run_weights(run, model)       # config.toml; the checkpoint is replaced by the adapter-only one
    for d in (run / "checkpoints").iterdir():
        shutil.rmtree(d)
    atomic_write_text(run / "adapter_config.json", json.dumps(adapter_spec(cfg, str(root / "base"))))
    save_checkpoint(run, 1, AdapterOnly(model))
    return run


@pytest.mark.parametrize("case", list(CASES))
def test_export_loads_in_peft_and_import_comes_back(case, tmp_path, capsys):
    run = lora_run(tmp_path, case)
    with torch.no_grad():
        ours = scratchllm.load(run).model(IDX)
    out = tmp_path / "exported"
    assert cli.main(["export", "hf", str(run), "--out", str(out)]) == 0
    config = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(out.resolve())
    base = transformers.AutoModelForCausalLM.from_pretrained(out)
    loaded = peft.PeftModel.from_pretrained(base, str(out / "adapter")).eval()
    assert torch.allclose(hf_logits(loaded), ours, atol=1e-5)

    back = tmp_path / "imported"
    assert cli.main(["import", "hf", str(out / "adapter"), "--out", str(back)]) == 0
    with torch.no_grad():
        assert torch.allclose(scratchllm.load(back).model(IDX), ours, atol=1e-5)


def test_peft_saved_adapter_imports(tmp_path):
    hf_dir, adapter_dir = tmp_path / "hf", tmp_path / "adapter"
    hf, wrapped = peft_model("gpt2", hf_dir)
    want = hf_logits(wrapped)
    wrapped.save_pretrained(adapter_dir)
    assert cli.main(["import", "hf", str(adapter_dir), "--base", str(hf_dir), "--out", str(tmp_path / "run")]) == 0
    with torch.no_grad():
        assert torch.allclose(scratchllm.load(tmp_path / "run").model(IDX), want, atol=1e-5)
