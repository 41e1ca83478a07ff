"""`scratchllm generate`: --prompts-file batches, finish reasons on stderr, speculative flags, bad input."""

import argparse
import json

import pytest
import torch

from scratchllm.errors import UserError
from scratchllm.inference import cli
from scratchllm.inference.engine import generate_text
from scratchllm.model.config import ModelConfig
from scratchllm.model.transformer import Transformer
from scratchllm.tokenizer.bpe import Tokenizer
from scratchllm.train.checkpoint import save_run_weights

SPECIAL = {"<|endoftext|>": 256}


def make_run(path, tokenizer, block_size=64, seed=0):
    torch.manual_seed(seed)
    model = Transformer(ModelConfig(n_layer=1, n_head=2, n_embd=16, vocab_size=264, block_size=block_size,
                                    position="rope", norm="rmsnorm")).eval()
    save_run_weights(path, model, tokenizer)
    return model


@pytest.fixture
def run(tmp_path):
    tokenizer = Tokenizer({bytes([i]): i for i in range(256)}, "gpt2", SPECIAL)
    return tmp_path / "run", make_run(tmp_path / "run", tokenizer), tokenizer


def main(argv):
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["generate", "--device", "cpu", *argv])
    return args.func(args)


def test_prompts_file_is_one_batch_with_one_line_per_prompt_in_order(run, tmp_path, capsys):
    path, model, tokenizer = run
    lines = [{"prompt": "Hello"}, {"prompt": "a", "max_new_tokens": 3}, {"prompt": "xyz", "stop": "q"}]
    (tmp_path / "p.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    assert main(["--run", str(path), "--prompts-file", str(tmp_path / "p.jsonl"), "--temperature", "0",
                 "--max-new-tokens", "10"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["prompt"] for r in rows] == ["Hello", "a", "xyz"]
    assert rows[0]["text"] == "".join(generate_text(model, tokenizer, "Hello", 10, temperature=0))
    assert rows[1]["text"] == "".join(generate_text(model, tokenizer, "a", 3, temperature=0))
    assert rows[1]["tokens"] == 3 and rows[1]["finish_reason"] == "length"
    assert rows[2]["text"] == "".join(generate_text(model, tokenizer, "xyz", 10, temperature=0, stop=["q"]))


def test_out_file_gets_the_lines(run, tmp_path, capsys):
    (tmp_path / "p.jsonl").write_text('{"prompt": "Hi"}\n')
    assert main(["--run", str(run[0]), "--prompts-file", str(tmp_path / "p.jsonl"), "--max-new-tokens", "4",
                 "--seed", "1", "--out-file", str(tmp_path / "out.jsonl")]) == 0
    assert capsys.readouterr().out == ""
    row = json.loads((tmp_path / "out.jsonl").read_text())
    assert row["tokens"] <= 4 and set(row) == {"prompt", "text", "tokens", "finish_reason"}


@pytest.mark.parametrize("content, message", [
    ("\n\n", "has no prompts"),
    ('{"prompt": "a"}\nnot json\n', "line 2 is not JSON"),
    ('{"text": "a"}\n', 'line 1 has no "prompt"'),
    ('{"prompt": "a", "temprature": 1}\n', "unknown field 'temprature'"),
    ('{"prompt": "a", "max_new_tokens": "5"}\n', "'max_new_tokens' has the wrong type"),
])
def test_bad_prompts_files_are_one_sentence_and_write_nothing(run, tmp_path, content, message):
    (tmp_path / "p.jsonl").write_text(content)
    with pytest.raises(UserError, match=message) as e:
        main(["--run", str(run[0]), "--prompts-file", str(tmp_path / "p.jsonl"), "--out-file", str(tmp_path / "o")])
    assert "\n" not in str(e.value) and not (tmp_path / "o").exists()


def test_a_single_prompt_says_why_it_stopped(run, capsys):
    assert main(["--run", str(run[0]), "--prompt", "Hi", "--max-new-tokens", "5", "--temperature", "0"]) == 0
    assert "finish_reason: length" in capsys.readouterr().err
    assert main(["--run", str(run[0]), "--prompt", "x" * 60, "--max-new-tokens", "50", "--temperature", "0"]) == 0
    captured = capsys.readouterr()
    assert "finish_reason: context" in captured.err and "--sliding-window" in captured.err
    assert main(["--run", str(run[0]), "--prompt", "x" * 60, "--max-new-tokens", "50", "--temperature", "0",
                 "--sliding-window"]) == 0
    assert "finish_reason: length" in capsys.readouterr().err


@pytest.mark.parametrize("flags", [["--draft", "ngram"], ["--draft-run", "SELF"]])
def test_speculative_greedy_prints_what_plain_greedy_prints(run, capsys, flags):
    path = str(run[0])
    flags = [path if f == "SELF" else f for f in flags]
    common = ["--run", path, "--prompt", "abcabcabc", "--max-new-tokens", "20", "--temperature", "0"]
    main(common)
    plain = capsys.readouterr().out
    main(common + flags)
    captured = capsys.readouterr()
    assert captured.out == plain and "drafts kept" in captured.err


def test_a_draft_run_with_another_tokenizer_is_one_sentence(run, tmp_path):
    other = Tokenizer({**{bytes([i]): i for i in range(256)}, b"ab": 256}, "gpt2", {"<|endoftext|>": 257})
    make_run(tmp_path / "draft", other)
    with pytest.raises(UserError, match="has another tokenizer"):
        main(["--run", str(run[0]), "--draft-run", str(tmp_path / "draft"), "--prompt", "Hi"])


@pytest.mark.parametrize("flags, message", [
    (["--draft", "ngram", "--draft-run", "R"], "not both"),
    (["--prompts-file", "P", "--draft", "ngram"], "one --prompt at a time"),
    (["--prompts-file", "P", "--prompt", "Hi"], "not both"),
    (["--prompt", "Hi", "--draft", "ngram", "--draft-k", "0"], "at least 1"),
])
def test_conflicting_flags_are_one_sentence(run, tmp_path, flags, message):
    (tmp_path / "p.jsonl").write_text('{"prompt": "a"}\n')
    flags = [str(tmp_path / "p.jsonl") if f == "P" else str(run[0]) if f == "R" else f for f in flags]
    with pytest.raises(UserError, match=message) as e:
        main(["--run", str(run[0]), *flags])
    assert "\n" not in str(e.value)
