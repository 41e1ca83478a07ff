"""Chat template and loss mask; the `scratchllm tokenizer` commands end to end."""

from __future__ import annotations

import argparse
import io
import json
import sys

import pytest

from scratchllm.errors import UserError
from scratchllm.tokenizer import Tokenizer, load_tokenizer
from scratchllm.tokenizer.cli import register
from scratchllm.tokenizer.special import DEFAULT_SPECIAL_TOKENS, render_conversation


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return Tokenizer.train(["hello there, how are you? fine thanks"] * 5, 285, progress=False, num_workers=1)


def test_render_conversation_mask(tok):
    msgs = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi <|assistant_end|>"},
            {"role": "assistant", "content": "hello"}, {"role": "user", "content": "bye"},
            {"role": "assistant", "content": "bye"}]
    ids, mask = render_conversation(tok, msgs)
    assert len(ids) == len(mask)
    sp = tok.special_tokens
    assert ids[0] == sp["<|bos|>"] and ids[-1] == sp["<|assistant_end|>"]
    # the masked tokens are exactly the assistant replies and their end markers
    learned = [i for i, m in zip(ids, mask) if m]
    assert learned == tok.encode("hello") + [sp["<|assistant_end|>"]] + tok.encode("bye") + [sp["<|assistant_end|>"]]
    # a special-token string typed in a message stays text: only one real <|assistant_end|> per reply
    assert ids.count(sp["<|assistant_end|>"]) == 2
    assert tok.decode(ids).startswith("<|bos|><|system_start|>be brief<|system_end|><|user_start|>hi <|assistant_end|>")


def test_render_for_completion(tok):
    ids, mask = render_conversation(tok, [{"role": "user", "content": "hi"}], for_completion=True)
    assert tok.decode(ids) == "<|bos|><|user_start|>hi<|user_end|><|assistant_start|>"
    assert not any(mask)


def test_render_conversation_errors(tok):
    plain = Tokenizer({bytes([i]): i for i in range(256)}, "gpt4", {"<|endoftext|>": 256})
    with pytest.raises(UserError, match="no chat token <\\|bos\\|>"):
        render_conversation(plain, [])
    with pytest.raises(UserError, match="role 'robot'"):
        render_conversation(tok, [{"role": "robot", "content": "x"}])
    with pytest.raises(UserError, match="content"):
        render_conversation(tok, [{"role": "user"}])


def test_default_special_token_ids(tok):
    n = len(DEFAULT_SPECIAL_TOKENS)
    assert [tok.special_tokens[s] for s in DEFAULT_SPECIAL_TOKENS] == list(range(285 - n, 285))


def run_cli(argv: list[str], stdin: str = "", capsys=None) -> tuple[int, str, str]:
    """Run `scratchllm tokenizer ...` as the main CLI does (UserError -> 'error: ...', status 2)."""
    parser = argparse.ArgumentParser(prog="scratchllm")
    register(parser.add_subparsers())
    args = parser.parse_args(["tokenizer", *argv])
    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        rc = args.func(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        rc = 2
    finally:
        sys.stdin = old
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_train_encode_decode_show_stats_export(tmp_path, capsys):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("the cat sat on the mat. " * 50)
    (corpus / "b.jsonl").write_text(json.dumps({"text": "the dog ate the cat's hat"}) + "\nbroken\n")
    out = tmp_path / "tok.json"
    rc, _, err = run_cli(["train", "--input", str(corpus), "--vocab-size", "280", "--out", str(out),
                          "--workers", "1"], capsys=capsys)
    assert rc == 0 and out.is_file(), err
    tok = load_tokenizer(out)
    rc, stdout, _ = run_cli(["encode", "--tokenizer", str(out)], "the cat", capsys)
    ids = json.loads(stdout)
    assert rc == 0 and ids == tok.encode("the cat")
    rc, stdout, _ = run_cli(["decode", "--tokenizer", str(out)], json.dumps(ids), capsys)
    assert stdout == "the cat"
    rc, _, err = run_cli(["encode", "--tokenizer", str(out)], "a<|endoftext|>", capsys)
    assert rc == 2 and "error:" in err
    rc, stdout, _ = run_cli(["encode", "--tokenizer", str(out), "--allow-special"], "a<|endoftext|>", capsys)
    assert json.loads(stdout)[-1] == tok.eot_id
    html = tmp_path / "t.html"
    rc, stdout, _ = run_cli(["show", "--tokenizer", str(out), "--text", "the cat", "--html", str(html)], capsys=capsys)
    assert "\x1b[" in stdout and html.read_text().count("<span") == len(tok.encode("the cat"))
    rc, stdout, _ = run_cli(["stats", "--tokenizer", str(out), str(corpus / "a.txt")], capsys=capsys)
    stats = json.loads(stdout)
    assert stats["bytes_per_token"] > 1 and 0 < stats["vocab_coverage"] <= 1
    rc, _, _ = run_cli(["export", "--tokenizer", str(out), "--hf", str(tmp_path / "hf.json"),
                        "--tiktoken", str(tmp_path / "t.tiktoken")], capsys=capsys)
    assert rc == 0 and (tmp_path / "hf.json").is_file() and (tmp_path / "t.tiktoken").is_file()
    rc, _, _ = run_cli(["import", "--hf", str(tmp_path / "hf.json"), "--out", str(tmp_path / "back.json")],
                       capsys=capsys)
    assert load_tokenizer(tmp_path / "back.json").ranks == tok.ranks


def test_cli_errors(tmp_path, capsys):
    rc, _, err = run_cli(["decode", "--tokenizer", str(tmp_path / "missing.json")], "[1]", capsys)
    assert rc == 2 and "does not exist" in err
    rc, _, err = run_cli(["train", "--input", str(tmp_path / "nothing*.txt"), "--out", str(tmp_path / "t.json")],
                         capsys=capsys)
    assert rc == 2 and "matched no" in err and not (tmp_path / "t.json").exists()
    tok = Tokenizer({bytes([i]): i for i in range(256)}, "gpt2")
    tok.save(tmp_path / "t.json")
    rc, _, err = run_cli(["decode", "--tokenizer", str(tmp_path / "t.json")], "not json", capsys)
    assert rc == 2 and "JSON list" in err
    rc, _, err = run_cli(["import", "--tiktoken", "x.tiktoken", "--out", str(tmp_path / "o.json")], capsys=capsys)
    assert rc == 2 and "--pattern" in err


def test_cli_import_openai(tmp_path, capsys, openai_pair):
    from tok_paths import TOKDIR

    ours, _ = openai_pair("cl100k_base")
    rc, _, _ = run_cli(["import", "--tiktoken", str(TOKDIR / "cl100k_base.tiktoken"), "--pattern", "cl100k",
                        "--out", str(tmp_path / "cl.json")], capsys=capsys)
    again = load_tokenizer(tmp_path / "cl.json")
    assert rc == 0 and again.ranks == ours.ranks and again.special_tokens == ours.special_tokens


def test_read_texts_formats_and_budget(tmp_path):
    import gzip
    import lzma

    from scratchllm.data.sources import read_texts

    (tmp_path / "a.txt").write_text("0123456789")
    with gzip.open(tmp_path / "b.jsonl.gz", "wt") as f:
        f.write('{"text": "gz doc"}\n{"other": 1}\n')
    with lzma.open(tmp_path / "c.jsonl.xz", "wt") as f:
        f.write('{"text": "xz doc"}\n')
    assert list(read_texts([str(tmp_path)])) == ["0123456789", "gz doc", "xz doc"]
    assert list(read_texts([str(tmp_path)], max_bytes=14)) == ["0123456789", "gz d"]
    assert list(read_texts([str(tmp_path / "*.jsonl.*")])) == ["gz doc", "xz doc"]
