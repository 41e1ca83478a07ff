"""`scratchllm finetune` and `merge` end to end on a tiny base: LoRA, QLoRA and full runs, resume, errors."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from ft_helpers import alpaca_records, byte_tokenizer, llama_config, make_base_run, tiny_config, write_json

import scratchllm
from scratchllm import cli
from scratchllm.data.tokenize import is_val
from scratchllm.errors import UserError
from scratchllm.model.lora import lora_layers
from scratchllm.model.nf4 import NF4Linear
from scratchllm.tokenizer.special import ENDOFTEXT
from scratchllm.train.checkpoint import find_checkpoint
from scratchllm.train.finetune import add_chat_tokens

FAST = ["train.max_steps=4", "train.batch_size=4", "train.eval_every=2", "train.log_every=1",
        "train.progress=false", "train.max_lr=1e-2", "train.warmup_steps=0", "finetune.val_fraction=0.2"]
IDX = torch.randint(0, 264, (1, 12), generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("ft")
    base = make_base_run(root / "base", llama_config())
    data = write_json(root / "alpaca.json", alpaca_records(40))
    return root, base, data


def run_cli(*argv):
    return cli.main(["finetune", *map(str, argv)])


def metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def val_losses(run):
    return [r["val_loss"] for r in metrics(run) if "val_loss" in r]


def test_lora_run_loads_adapted_resumes_and_merges(files, tmp_path, capsys):
    root, base, data = files
    out = tmp_path / "sft"
    assert run_cli("--run", base, "--data", data, "--method", "lora", "--out", out, *FAST,
                   "train.checkpoint_every=2", "train.keep_checkpoints=2", "finetune.lora.r=4", "finetune.lora.targets=['q','v','up']") == 0
    printed = capsys.readouterr().out
    assert "held-out assistant-token loss of the base" in printed and "truncated at block_size" in printed
    lines = metrics(out)
    assert "val_loss" in lines[-1] and val_losses(out)[-1] < val_losses(out)[0]
    state = find_checkpoint(out).state
    assert state["kind"] == "lora"
    saved = json.loads((out / "adapter_config.json").read_text())
    assert saved["base"] == str(base.resolve()) and saved["r"] == 4
    stored = (find_checkpoint(out).path / "model.safetensors").stat().st_size
    assert stored < (find_checkpoint(base).path / "model.safetensors").stat().st_size / 3   # adapters alone
    run = scratchllm.load(out)
    assert sorted(lora_layers(run.model))[:2] == ["blocks.0.attn.q", "blocks.0.attn.v"]
    adapted = run.model(IDX)
    assert not torch.allclose(adapted, scratchllm.load(base).model(IDX), atol=1e-4)   # the adapter is used

    assert cli.main(["merge", "--run", str(out), "--out", str(tmp_path / "merged")]) == 0
    merged = scratchllm.load(tmp_path / "merged")
    assert not lora_layers(merged.model)
    assert torch.allclose(merged.model(IDX), adapted, atol=1e-5)

    # --resume continues at the saved step with the same data order: steps 3-4 again equal the originals
    first = {r["step"]: r["loss"] for r in lines}
    shutil.rmtree(find_checkpoint(out).path)              # back to the checkpoint at step 2
    assert run_cli("--out", out, "--resume") == 0
    again = {r["step"]: r["loss"] for r in metrics(out)}
    assert again[4] == pytest.approx(first[4], rel=1e-5)


def test_qlora_run_on_cpu(files, tmp_path):
    _, base, data = files
    out = tmp_path / "q"
    assert run_cli("--run", base, "--data", data, "--method", "qlora", "--out", out, *FAST, "finetune.lora.r=4") == 0
    run = scratchllm.load(out)
    assert isinstance(run.model.blocks[0].attn.q.base, NF4Linear)
    assert val_losses(out)[-1] < val_losses(out)[0]


def test_full_run_adds_missing_chat_tokens(tmp_path, capsys):
    data = write_json(tmp_path / "d.jsonl", [{"messages": [{"role": "user", "content": f"hi {i}"},
                                                            {"role": "assistant", "content": "yo"}]}
                                             for i in range(20)], jsonl=True)
    plain = byte_tokenizer([ENDOFTEXT])                    # a GPT-2-like tokenizer: no chat tokens
    base = make_base_run(tmp_path / "base", tiny_config(vocab_size=260), plain)
    out = tmp_path / "full"
    assert run_cli("--run", base, "--data", data, "--method", "full", "--out", out, *FAST) == 0
    run = scratchllm.load(out)
    assert run.tokenizer.special_tokens["<|bos|>"] == 257          # appended after the last id (256)
    assert run.tokenizer.special_tokens["<|assistant_end|>"] == 263
    assert run.model.config.vocab_size == 320 and run.model.tok_emb.weight.shape[0] == 320   # grown, rounded to 64
    rows = scratchllm.load(base).model.tok_emb.weight
    _, grown = add_chat_tokens(plain, scratchllm.load(base).model)
    assert torch.allclose(grown.tok_emb.weight[260:], rows.mean(0).expand(60, -1))      # new rows: the mean
    assert run_cli("--run", base, "--data", data, "--method", "lora", "--out", tmp_path / "l", *FAST) == 2
    assert "has no chat tokens and a frozen LoRA base cannot grow" in capsys.readouterr().err


def test_bad_runs_are_one_sentence(files, tmp_path, capsys):
    root, base, data = files
    assert run_cli("--run", base, "--data", data, "--out", tmp_path / "x", *FAST, "finetune.lora.targets=['qkv']") == 2
    assert "LoRA target 'qkv' matches no linear layer" in capsys.readouterr().err
    assert run_cli("--run", tmp_path / "nope", "--data", data, "--out", tmp_path / "y") == 2
    assert "does not exist" in capsys.readouterr().err
    # a LoRA run whose base was moved away
    moved = tmp_path / "base"
    shutil.copytree(base, moved)
    out = tmp_path / "sft"
    assert run_cli("--run", moved, "--data", data, "--out", out, *FAST, "finetune.lora.r=2") == 0
    shutil.rmtree(moved)
    with pytest.raises(UserError, match="adapts the base run .* which is missing"):
        scratchllm.load(out)
    assert cli.main(["merge", "--run", str(base), "--out", str(tmp_path / "m")]) == 2
    assert "is not a LoRA run" in capsys.readouterr().err


def test_held_out_conversations_that_all_outgrow_the_context_are_one_sentence(files, tmp_path, capsys):
    root, base, _ = files
    records = alpaca_records(40)
    for i in range(40):
        if is_val(i, 0, 0.2):                                        # the ones finetune.val_fraction=0.2 holds out
            records[i]["output"] = "a very long answer " * 20        # past block_size=64 before any answer token
            records[i]["instruction"] = "x" * 80
    data = write_json(tmp_path / "long_held.json", records)
    assert run_cli("--run", base, "--data", data, "--out", tmp_path / "o", *FAST) == 2
    err = capsys.readouterr().err
    assert "held-out conversations keeps an assistant token within model.block_size=64" in err
    assert not (tmp_path / "o").exists()
