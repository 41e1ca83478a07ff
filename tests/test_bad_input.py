"""Every command, fed bad input, answers with one line on stderr, exit status 2, and no new files.

CASES is a table of (argv, a fragment the error line must contain). `test_every_command_has_cases`
walks the real parser, so a command added to COMMAND_MODULES without rows here fails the suite:
the next command is held to the same rule. Placeholders in argv ({run}, {tok} ...) name files of
the `world` fixture, built once; each case runs in-process (`scratchllm.cli.main`) in an empty
working directory, and the test compares both trees before and after.
"""

from __future__ import annotations

import argparse
import io
import re
import shutil
import sys
from pathlib import Path

import pytest
from hardening_helpers import TINY, corpus, tree

from scratchllm.cli import build_parser, main

BIG_PROMPT = "word " * 400  # far more tokens than the tiny run's context of 16

CASES = [
    # speedrun
    (["speedrun", "--out", "{foreign}", *TINY], "did not write"),
    (["speedrun", "--data", "missing.txt", "--out", "out", *TINY], "does not exist"),
    (["speedrun", "--out", "out", "train.max_lrr=1"], "did you mean 'train.max_lr'"),
    (["speedrun", "--out", "{run}"], "already holds a run"),
    # data
    (["data", "prepare", "--input", "missing.txt", "--tokenizer", "{tok}", "--out", "out"], "does not exist"),
    (["data", "prepare", "--input", "{text}", "--out", "out"], "needs a tokenizer"),
    (["data", "prepare", "--input", "{text}", "--tokenizer", "{tok}", "--out", "{foreign}"], "did not write"),
    (["data", "prepare", "--input", "{text}", "--tokenizer", "{tok}", "--out", "out", "--set", "filter.bogus=1"],
     "unknown config key"),
    (["data", "prepare", "--input", "{text}", "--tokenizer", "{tok}", "--out", "out", "--set", "filter.enabled=false"],
     "none of them for validation"),
    (["data", "prepare", "--input", "{binary}", "--tokenizer", "{tok}", "--out", "out"], "binary data"),
    (["data", "prepare", "--input", "{text}", "--tokenizer", "{empty}", "--out", "out"], "tokenizer"),
    (["data", "clean", "--input", "missing.jsonl", "--out", "out.jsonl"], "does not exist"),
    (["data", "filter", "--input", "missing.jsonl", "--out", "out"], "does not exist"),
    (["data", "dedup", "--input", "missing.jsonl", "--out", "out"], "does not exist"),
    (["data", "mix", "--input", "{text}", "--weights", "0.5", "0.5", "--out", "out.jsonl"], "one per input"),
    (["data", "download", "no-such-corpus"], "unknown corpus"),
    # tokenizer
    (["tokenizer", "train", "--input", "missing.txt", "--out", "tok.json"], "does not exist"),
    (["tokenizer", "train", "--input", "{binary}", "--out", "tok.json"], "binary data"),
    (["tokenizer", "train", "--input", "{text}", "--encoding", "klingon", "--out", "tok.json"], "unknown text encoding"),
    (["tokenizer", "train", "--input", "{text}", "--vocab-size", "300", "--workers", "1", "--out", "{foreign}"],
     "is a directory"),
    (["tokenizer", "encode", "--tokenizer", "missing.json"], "missing.json"),
    (["tokenizer", "encode", "--tokenizer", "{empty}"], "empty"),
    (["tokenizer", "decode", "--tokenizer", "{tok}"], "JSON list"),
    (["tokenizer", "show", "--tokenizer", "missing.json", "--text", "hi"], "missing.json"),
    (["tokenizer", "stats", "--tokenizer", "{tok}", "{empty}"], "no text"),
    (["tokenizer", "import", "--tiktoken", "{text}", "--out", "tok.json"], "--pattern"),
    (["tokenizer", "export", "--tokenizer", "{tok}"], "nothing to export"),
    # train
    (["train", "--data", "missing.txt", "--out", "out", *TINY], "does not exist"),
    (["train", "--data", "{empty}", "--out", "out", *TINY], "empty"),
    (["train", "--data", "{binary}", "--out", "out", *TINY], "binary data"),
    (["train", "--data", "{text}", "--out", "{foreign}", *TINY], "did not write"),
    (["train", "--out", "{foreign_file}", *TINY], "is a file"),
    (["train", "--out", "out", "train.max_steps=many"], "needs a int"),
    (["train", "--out", "out", "train.max_steps=-1"], "must be positive"),
    (["train", "--out", "out", "trian.max_steps=1"], "unknown config key"),
    (["train", "--out", "{run}", *TINY], "already holds a training run"),
    (["train", "--out", "{run}", "--resume", "model.n_layer=3"], "model.n_layer=3 does not match"),
    (["train", "--out", "{run}", "--resume", "data.vocab_size=300"], "data.vocab_size=300 does not match"),
    (["train", "--out", "{corrupt}", "--resume"], "corrupt"),
    (["train", "--resume"], "--resume needs --out"),
    # charlm
    (["charlm", "train", "--data", "missing.txt", "--out", "out"], "missing.txt"),
    (["charlm", "train", "--out", "{foreign}"], "did not write"),
    (["charlm", "train", "--out", "out", "mlp.stepz=1"], "unknown config key"),
    (["charlm", "sample", "--run", "missing"], "missing"),
    (["charlm", "sample", "--run", "{run}", "-n", "0"], "at least 1"),
    # interop
    (["import", "hf", "missing", "--out", "out"], "missing"),
    (["import", "hf", "{run}", "--out", "{foreign}"], "did not write"),
    (["export", "hf", "missing", "--out", "out"], "does not exist"),
    (["export", "hf", "{corrupt}", "--out", "out"], "corrupt"),
    (["export", "hf", "{run}", "--out", "{foreign}"], "did not write"),
    # inference
    (["generate", "--run", "missing", "--prompt", "x"], "does not exist"),
    (["generate", "--run", "{corrupt}", "--prompt", "x"], "corrupt"),
    (["generate", "--run", "{run}", "--prompt", BIG_PROMPT], "context"),
    (["generate", "--run", "{run}", "--prompt", "x", "--temperature", "-1"], "temperature"),
    (["generate", "--run", "{run}", "--prompt-file", "missing.txt"], "does not exist"),
    (["generate", "--run", "{run}", "--step", "999", "--prompt", "x"], "no checkpoint at step 999"),
    (["chat", "--run", "missing"], "does not exist"),
    (["sample", "--run", "{corrupt}"], "corrupt"),
    # runs
    (["runs", "list", "missing"], "no runs in"),
    (["runs", "show", "missing"], "not a run directory"),
    (["runs", "compare", "{run}"], "at least two"),
    (["runs", "compare", "{run}", "missing"], "not a run directory"),
    (["runs", "dashboard", "missing"], "does not exist"),
    (["reproduce", "missing", "--out", "out"], "no config.toml"),
    (["reproduce", "{run}", "--out", "{foreign}"], "did not write"),
    (["reproduce", "{run}", "--out", "out", "--steps", "0"], "must be positive"),
]

# A tqdm bar line ("tokenize: 30.0kB [00:00, 279kB/s]"): progress of the stages that ran first.
_PROGRESS = re.compile(r"\[\d\d:\d\d")


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield prefix
        return
    for name, sub in subs[0].choices.items():
        yield from _commands(sub, prefix + (name,))


def _command_of(argv: list[str], commands: set[tuple[str, ...]]) -> tuple[str, ...]:
    return next(c for c in sorted(commands, key=len, reverse=True) if tuple(argv[:len(c)]) == c)


def test_every_command_has_cases():
    commands = set(_commands(build_parser()))
    covered = {_command_of(argv, commands) for argv, _ in CASES}
    assert commands - covered == set(), "add bad-input cases for these commands to CASES"


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    """The files the cases point at: a trained tiny run, a corrupt copy, a tokenizer, bad files."""
    root = tmp_path_factory.mktemp("world")
    docs = corpus(root)
    assert main(["train", "--data", str(docs), "--out", str(root / "run"), *TINY]) == 0
    shutil.copytree(root / "run", root / "corrupt")
    weights = next((root / "corrupt" / "checkpoints").glob("step-*")) / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-8:] = b"\xff" * 8
    weights.write_bytes(bytes(data))
    (root / "foreign").mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer.json"):  # an HF export: not a run of ours
        (root / "foreign" / name).write_text("an HF export's file")
    (root / "foreign_file").write_text("a file where a directory should be")
    (root / "empty.txt").write_text("")
    (root / "binary.txt").write_bytes(bytes(range(256)) * 200)
    files = {"run": root / "run", "corrupt": root / "corrupt", "tok": root / "run" / "tokenizer.json",
             "text": docs / "doc0.txt", "foreign": root / "foreign", "foreign_file": root / "foreign_file",
             "empty": root / "empty.txt", "binary": root / "binary.txt"}
    return root, {k: str(v) for k, v in files.items()}


@pytest.mark.parametrize("argv, fragment", CASES, ids=[" ".join(a[:4])[:60] for a, _ in CASES])
def test_bad_input(argv, fragment, world, tmp_path, monkeypatch, capsys):
    root, files = world
    argv = [a.format(**files) if "{" in a else a for a in argv]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "stdin", io.StringIO("not json"))
    before = tree(root)
    code = main(argv)
    out, err = capsys.readouterr()
    lines = [ln for ln in err.replace("\r", "\n").splitlines() if ln.strip() and not _PROGRESS.search(ln)]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert fragment in lines[0]
    assert "[model]" not in out and "resolved" not in out, "the config is printed only with --verbose"
    assert tree(root) == before, "a failed command changed the files it was given"
    assert list(tmp_path.iterdir()) == [], "a failed command left files behind"


def test_version(capsys):
    from scratchllm import __version__

    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"scratchllm {__version__}"


def test_config_printed_only_with_verbose(world, tmp_path, capsys):
    _, files = world
    docs = Path(files["text"]).parent
    assert main(["train", "--data", str(docs), "--out", str(tmp_path / "quiet"), *TINY]) == 0
    out = capsys.readouterr().out
    assert "[model]" not in out and (tmp_path / "quiet" / "config.toml").is_file()
    assert main(["train", "--data", str(docs), "--out", str(tmp_path / "loud"), "--verbose", *TINY]) == 0
    assert "[model]" in capsys.readouterr().out


def test_warnings_are_one_line(tmp_path, capsys):
    (tmp_path / "latin1.txt").write_bytes("un café très animé, où l'on dîne\n".encode("latin-1") * 40)
    assert main(["tokenizer", "train", "--input", str(tmp_path / "latin1.txt"), "--vocab-size", "300",
                 "--workers", "1", "--out", str(tmp_path / "tok.json")]) == 0
    warnings = [ln for ln in capsys.readouterr().err.splitlines() if "Warning" in ln or ln.startswith("warning")]
    assert warnings and all(ln.startswith("warning: ") for ln in warnings), warnings
    assert not any("UserWarning" in ln or ".py:" in ln for ln in warnings)
    assert "--encoding" in warnings[0]


def test_the_real_command_exits_2_with_one_line(tmp_path):
    """The exit path itself (`python -m scratchllm` -> sys.exit), which in-process calls do not cover."""
    import os
    import subprocess

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    # a command whose failure path imports no torch: the subprocess costs a second, not ten
    done = subprocess.run([sys.executable, "-m", "scratchllm", "tokenizer", "encode", "--tokenizer", "missing.json"],
                          cwd=tmp_path, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [done.stderr.strip()] and done.stderr.startswith("error: tokenizer file")
    assert list(tmp_path.iterdir()) == []
