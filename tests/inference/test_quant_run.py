"""`scratchllm quantize` end to end on a tiny trained run: the output loads through scratchllm.load,
generates, scores a perplexity close to the original's, is smaller on disk; bad input is one sentence."""

import json

import pytest
import torch
from quant_helpers import TEXT, byte_tokenizer, save_tiny_run

import scratchllm
from scratchllm import cli
from scratchllm.errors import UserError
from scratchllm.inference.engine import generate
from scratchllm.inference.quantize_run import perplexity
from scratchllm.model.config import ModelConfig
from scratchllm.model.quant import QuantizedLinear

CFG = dict(n_layer=2, n_head=2, n_embd=64, vocab_size=264, block_size=64)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("quant")
    model = save_tiny_run(root / "run", ModelConfig(**CFG), steps=150)
    (root / "calib.txt").write_text(TEXT[: len(TEXT) // 2])
    (root / "held_out.txt").write_text(TEXT[len(TEXT) // 2:])
    return root, model


def run_cli(monkeypatch, argv):
    monkeypatch.setattr(cli, "COMMAND_MODULES", ["scratchllm.inference.quantize_cli", "scratchllm.inference.cli"])
    return cli.main(argv)


def held_out_windows(root):
    ids = [256] + byte_tokenizer().encode_ordinary((root / "held_out.txt").read_text())   # as a document: after end-of-text
    n = len(ids) // 65
    return torch.tensor(ids[: n * 65]).view(n, 65)


@pytest.mark.parametrize("argv,limit", [
    (["--bits", "8"], 0.01),
    (["--bits", "4", "--group-size", "32"], 0.10),
    (["--bits", "4", "--group-size", "64", "--method", "gptq", "--calib", "calib.txt"], 0.10),
])
def test_quantized_run_loads_generates_and_keeps_its_perplexity(tiny, tmp_path, monkeypatch, capsys, argv, limit):
    root, model = tiny
    argv = [a if a != "calib.txt" else str(root / a) for a in argv]
    out = tmp_path / "q"
    assert run_cli(monkeypatch, ["quantize", "--run", str(root / "run"), "--out", str(out),
                                 "--eval-text", str(root / "held_out.txt"), *argv]) == 0
    report = capsys.readouterr().out
    assert "perplexity on" in report and "MB ->" in report

    run = scratchllm.load(out)
    assert isinstance(run.model.blocks[1].mlp.down, QuantizedLinear)
    state = json.loads(next((out / "checkpoints").iterdir()).joinpath("state.json").read_text())
    assert state["kind"] == "quantized" and state["quantization"]["bits"] == int(argv[1])
    windows = held_out_windows(root)
    before, after = perplexity(model, windows, torch.device("cpu")), perplexity(run.model, windows, torch.device("cpu"))
    assert before < 8.0                              # learned (chance is 264), so errors would show
    assert abs(after / before - 1) < limit
    # the report printed the same two numbers
    assert f"{before:.3f} -> {after:.3f}" in report
    # weights on disk: the block linears shrink 4x (int8) or ~7x (int4); embeddings stay fp32
    size = lambda d: next((d / "checkpoints").iterdir()).joinpath("model.safetensors").stat().st_size  # noqa: E731
    assert size(out) < 0.75 * size(root / "run")
    # it generates through the one engine, and greedy text mostly agrees with the original's
    prompt = byte_tokenizer().encode_ordinary("the quick brown")
    ours = list(generate(run.model, prompt, max_new_tokens=20, temperature=0))
    ref = list(generate(model, prompt, max_new_tokens=20, temperature=0))
    assert len(ours) == 20 and sum(a == b for a, b in zip(ours, ref)) >= 15
    assert run_cli(monkeypatch, ["generate", "--run", str(out), "--prompt", "the quick", "--temperature", "0",
                                 "--max-new-tokens", "8", "--device", "cpu"]) == 0
    assert capsys.readouterr().out.startswith("the quick")


def test_without_eval_text_it_scores_the_calibration_text(tiny, tmp_path, monkeypatch, capsys):
    root, _ = tiny
    assert run_cli(monkeypatch, ["quantize", "--run", str(root / "run"), "--out", str(tmp_path / "q"), "--bits", "4",
                                 "--group-size", "32", "--method", "gptq", "--calib", str(root / "calib.txt")]) == 0
    assert "(the calibration text itself)" in capsys.readouterr().out


@pytest.mark.parametrize("argv,message", [
    (["--bits", "4", "--group-size", "128"], "--group-size 128 does not divide the input width 64 of blocks.0.attn.q"),
    (["--bits", "4", "--group-size", "48"], "--group-size 48 is not supported for int4"),
    (["--bits", "8", "--group-size", "32"], "int8 has one scale per output channel"),
    (["--bits", "3"], "--bits 3 is not supported"),
    (["--bits", "4", "--method", "gptq"], "--method gptq needs calibration text"),
    (["--bits", "4", "--method", "gptq", "--calib", "nowhere.txt"], "calibration file 'nowhere.txt' does not exist"),
    (["--bits", "4", "--method", "awq"], "--method awq is unknown"),
])
def test_bad_input_is_one_sentence_and_writes_nothing(tiny, tmp_path, monkeypatch, capsys, argv, message):
    root, _ = tiny
    out = tmp_path / "q"
    assert run_cli(monkeypatch, ["quantize", "--run", str(root / "run"), "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not out.exists()


def test_quantizing_a_quantized_run_is_refused(tiny, tmp_path, monkeypatch, capsys):
    root, _ = tiny
    first = tmp_path / "q8"
    assert run_cli(monkeypatch, ["quantize", "--run", str(root / "run"), "--out", str(first), "--bits", "8"]) == 0
    capsys.readouterr()
    assert run_cli(monkeypatch, ["quantize", "--run", str(first), "--out", str(tmp_path / "again"), "--bits", "4"]) == 2
    assert "is already quantized; quantize the full-precision run" in capsys.readouterr().err
    with pytest.raises(UserError, match="already exists and is not empty"):
        from scratchllm.inference.quantize_run import quantize_run
        from scratchllm.model.quant import QuantSpec
        quantize_run(root / "run", first, QuantSpec(bits=8))
