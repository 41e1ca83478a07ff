"""`scratchllm generate` and `scratchllm chat` on a tiny run directory."""

import argparse
import io

import pytest
import torch

from scratchllm.errors import UserError
from scratchllm.inference import cli
from scratchllm.inference.engine import generate_text
from scratchllm.model.config import ModelConfig
from scratchllm.model.transformer import Transformer
from scratchllm.tokenizer.bpe import Tokenizer
from scratchllm.train import checkpoint


@pytest.fixture
def run_dir(tmp_path):
    torch.manual_seed(0)
    tokenizer = Tokenizer({bytes([i]): i for i in range(256)}, "gpt2", {"<|endoftext|>": 256})
    model = Transformer(ModelConfig(n_layer=1, n_head=2, n_embd=16, vocab_size=264, block_size=64)).eval()
    checkpoint.save_run_weights(tmp_path / "run", model, tokenizer)
    return tmp_path / "run", model, tokenizer


def parse(argv):
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    return parser.parse_args(argv)


def test_generate_streams_the_greedy_continuation(run_dir, capsys):
    path, model, tokenizer = run_dir
    args = parse(["generate", "--run", str(path), "--prompt", "Hi", "--temperature", "0",
                  "--max-new-tokens", "12", "--device", "cpu"])
    assert args.func(args) == 0
    expected = "".join(generate_text(model, tokenizer, "Hi", 12, temperature=0))
    assert capsys.readouterr().out == "Hi" + expected + "\n"


def test_generate_with_a_too_long_prompt_is_a_user_error(run_dir, capsys):
    args = parse(["generate", "--run", str(run_dir[0]), "--prompt", "x" * 100, "--device", "cpu"])
    with pytest.raises(UserError, match="block_size=64"):
        args.func(args)
    assert capsys.readouterr().out == ""              # the error comes before any echo


def test_chat_answers_each_line_and_survives_errors(run_dir, capsys, monkeypatch):
    path, model, tokenizer = run_dir
    monkeypatch.setattr("sys.stdin", io.StringIO("Hi\n\n" + "y" * 100 + "\nHo\n"))
    args = parse(["sample", "--run", str(path), "--temperature", "0", "--max-new-tokens", "5", "--device", "cpu"])
    assert args.func(args) == 0
    captured = capsys.readouterr()
    for prompt in ("Hi", "Ho"):
        assert prompt + "".join(generate_text(model, tokenizer, prompt, 5, temperature=0)) in captured.out
    assert "block_size=64" in captured.err
