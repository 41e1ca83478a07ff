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


@torch.no_grad()
def naive_greedy(model, tokenizer, prompt: str, n: int) -> str:
    """The oracle: recompute the whole sequence for every token (no cache), argmax over the
    tokenizer's ids (the model's padding rows excluded), stop at end-of-text."""
    ids = tokenizer.encode(prompt)
    out = []
    for _ in range(n):
        logits = model(torch.tensor([ids + out]))[0, -1, :tokenizer.vocab_size]
        token = int(logits.argmax())
        if token == tokenizer.eot_id:
            break
        out.append(token)
    return tokenizer.decode(out)


def test_generate_streams_the_greedy_continuation(run_dir, capsys):
    path, model, tokenizer = run_dir
    args = parse(["generate", "--run", str(path), "--prompt", "Hi", "--temperature", "0",
                  "--max-new-tokens", "12", "--device", "cpu"])
    assert args.func(args) == 0
    expected = naive_greedy(model, tokenizer, "Hi", 12)
    assert len(expected) == 12 and capsys.readouterr().out == "Hi" + expected + "\n"


def _generate(capsys, *argv) -> str:
    args = parse(["generate", "--device", "cpu", "--max-new-tokens", "12", *argv])
    assert args.func(args) == 0
    return capsys.readouterr().out


def test_generate_prompt_file_no_echo_and_stop(run_dir, capsys, tmp_path):
    path, model, tokenizer = run_dir
    full = naive_greedy(model, tokenizer, "Hi", 12)
    (tmp_path / "prompt.txt").write_text("Hi", encoding="utf-8")
    greedy = ["--run", str(path), "--temperature", "0"]
    assert _generate(capsys, *greedy, "--prompt-file", str(tmp_path / "prompt.txt")) == "Hi" + full + "\n"
    assert _generate(capsys, *greedy, "--prompt", "Hi", "--no-echo") == full + "\n"
    stop = full[4:6]                       # a stop string from the middle: output ends just before it
    cut = full[:full.index(stop)]
    assert _generate(capsys, *greedy, "--prompt", "Hi", "--no-echo", "--stop", stop) == cut + "\n"
    with pytest.raises(UserError, match="prompt file .*does not exist"):
        _generate(capsys, *greedy, "--prompt-file", str(tmp_path / "missing.txt"))


def test_generate_seed_is_reproducible_and_leaves_the_global_rng_alone(run_dir, capsys):
    path, model, tokenizer = run_dir
    sample = ["--run", str(path), "--prompt", "Hi", "--temperature", "1.5", "--top-k", "0", "--no-echo"]
    a = _generate(capsys, *sample, "--seed", "7")
    torch.manual_seed(123)
    before = torch.get_rng_state()
    # the same seed through the Python API: the same text, drawn from its own generator
    assert "".join(generate_text(model, tokenizer, "Hi", 12, temperature=1.5, seed=7)) + "\n" == a
    assert torch.equal(torch.get_rng_state(), before)
    assert _generate(capsys, *sample, "--seed", "7") == a
    assert len({a, _generate(capsys, *sample, "--seed", "8"), _generate(capsys, *sample, "--seed", "9")}) > 1


def test_generate_step_picks_that_checkpoint(run_dir, capsys):
    path, model, tokenizer = run_dir
    later = Transformer(model.config).eval()            # other weights saved as a later step
    checkpoint.save_checkpoint(path, 5, later)
    greedy = ["--run", str(path), "--prompt", "Hi", "--temperature", "0", "--no-echo"]
    assert _generate(capsys, *greedy) == naive_greedy(later, tokenizer, "Hi", 12) + "\n"            # newest
    assert _generate(capsys, *greedy, "--step", "0") == naive_greedy(model, tokenizer, "Hi", 12) + "\n"
    assert naive_greedy(later, tokenizer, "Hi", 12) != naive_greedy(model, tokenizer, "Hi", 12)
    with pytest.raises(UserError, match="step"):
        _generate(capsys, *greedy, "--step", "3")


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
        assert prompt + naive_greedy(model, tokenizer, prompt, 5) in captured.out
    assert "block_size=64" in captured.err


def test_special_token_text_in_a_prompt_is_that_token(run_dir, capsys):
    # "<|endoftext|>" typed in a prompt means the document boundary (id 256), not its 13 characters.
    path, model, tokenizer = run_dir
    out = _generate(capsys, "--run", str(path), "--prompt", "ab<|endoftext|>c", "--temperature", "0", "--no-echo")

    @torch.no_grad()
    def continuation(ids):
        new = []
        for _ in range(12):
            token = int(model(torch.tensor([ids + new]))[0, -1, :257].argmax())
            if token == 256:
                break
            new.append(token)
        return tokenizer.decode(new)

    assert out == continuation([97, 98, 256, 99]) + "\n"
    assert continuation([97, 98, 256, 99]) != continuation(list(b"ab<|endoftext|>c"))
