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
import json
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
    (["speedrun", "--out", "out", "--sft", "missing.json", *TINY], "does not exist"),
    (["speedrun", "--out", "out", "--dpo", "missing.json", *TINY], "does not exist"),
    (["speedrun", "--out", "out", "--eval-data", "{text}", *TINY], "is a file"),
    (["speedrun", "--out", "out", "sft.train.max_stepz=3", *TINY], "did you mean"),
    (["speedrun", "--out", "out", "eval.limitt=3", *TINY], "did you mean"),
    (["speedrun", "--out", "out", "--serve", "--port", "0", *TINY], "not a TCP port"),
    (["speedrun", "--out", "out", "--until", "dpo", *TINY], "not a stage of this speedrun"),
    (["speedrun", "--preset", "capstone", "--data", "missing-books", "--out", "out"], "do not exist"),
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
    (["train", "--out", "out", "parallel.dp=zero", *TINY], "parallel.dp"),
    (["train", "--out", "out", "parallel.tp=3", *TINY], "parallel.tp=3 does not divide model.n_head=2"),
    (["train", "--out", "out", "parallel.tp=2", "model.n_kv_head=1", *TINY], "does not divide model.n_kv_head=1"),
    (["train", "--out", "out", "parallel.tp=0", *TINY], "parallel.tp must be at least 1"),
    (["train", "--out", "out", "parallel.pp=4", *TINY], "parallel.pp=4 is larger than model.n_layer=1"),
    (["train", "--out", "out", "parallel.pp=2", *TINY, "model.n_layer=2"], "needs train.grad_accum >= parallel.pp=2"),
    (["train", "--out", "out", "parallel.pp=2", "train.grad_accum=2", *TINY, "model.n_layer=2"],
     "needs exactly 2 processes"),
    (["train", "--out", "out", "parallel.pp=2", "parallel.tp=2", *TINY], "do not combine"),
    (["train", "--out", "out", "parallel.async_checkpoint=true", *TINY], "needs parallel.checkpoint=sharded"),
    (["train", "--out", "out", "train.optimizer=adamw8bit", "parallel.dp=fsdp", *TINY], "adamw8bit"),
    (["train", "--out", "out", "train.optimizer=muon", "parallel.tp=2", "parallel.dp=fsdp", *TINY], "parallel.tp cuts"),
    (["consolidate", "--run", "missing"], "does not exist"),
    (["consolidate", "--run", "{run}"], "already consolidated"),
    (["memory", "--gpus", "3"], "does not divide over 3 GPUs"),
    (["memory", "--gpus", "0"], "--gpus must be at least 1"),
    (["train", "--data", "{text}", "--out", "{foreign}", *TINY], "did not write"),
    (["train", "--out", "{foreign_file}", *TINY], "is a file"),
    (["train", "--out", "out", "train.max_steps=many"], "needs a int"),
    (["train", "--out", "out", "train.max_steps=-1"], "must be positive"),
    (["train", "--out", "out", "trian.max_steps=1"], "unknown config key"),
    (["train", "--out", "{run}", *TINY], "already holds a training run"),
    (["train", "--out", "{run}", "--resume", "model.n_layer=3"], "model.n_layer=3 does not match"),
    (["train", "--out", "{run}", "--resume", "data.vocab_size=300"], "data.vocab_size=300 does not match"),
    (["train", "--out", "{corrupt}", "--resume"], "corrupt"),
    (["train", "--out", "out", "train.optimizer=muon", "train.muon_momentum=1"], "muon_momentum < 1"),
    (["train", "--out", "{run}", "--resume", "train.optimizer=muon"], "train.optimizer=muon does not match"),
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
    # fine-tuning
    (["finetune", "--run", "missing", "--data", "{text}", "--out", "out"], "does not exist"),
    (["finetune", "--run", "{run}", "--data", "missing.json", "--out", "out"], "missing.json"),
    (["finetune", "--run", "{run}", "--data", "{text}", "--out", "{run}"], "already holds"),
    (["merge", "--run", "missing", "--out", "out"], "does not exist"),
    (["merge", "--run", "{run}", "--out", "out"], "not a LoRA run"),
    # data quality classifier
    (["data", "quality-train", "--reference", "missing.txt", "--web", "{text}", "--out", "q.safetensors"],
     "does not exist"),
    # quantization and GGUF
    (["quantize", "--run", "missing", "--bits", "8", "--out", "q"], "does not exist"),
    (["quantize", "--run", "{run}", "--bits", "3", "--out", "q"], "bits"),
    (["quantize", "--run", "{run}", "--bits", "4", "--method", "gptq", "--out", "q"], "--calib"),
    (["export", "gguf", "missing", "--out", "x.gguf"], "does not exist"),
    # evaluation
    (["eval", "--run", "{run}", "--tasks", "no_such_task", "--out", "e"], "no_such_task"),
    (["eval", "judge", "--answers", "missing.jsonl", "--endpoint", "http://127.0.0.1:9", "--out", "j"],
     "does not exist"),
    (["eval", "contamination", "--tasks", "arc_easy", "--corpus", "missing.txt", "--out", "c"], "does not exist"),
    (["redteam", "--run", "missing", "--out", "r"], "does not exist"),
    # scaling
    (["scaling", "sweep", "--flops", "1e13,x", "--sizes", "2", "--out", "out"], "comma-separated"),
    (["scaling", "sweep", "--flops", "1e3", "--sizes", "2", "--out", "out"], "raise --flops"),
    (["scaling", "fit", "missing", "--out", "fit.json"], "no manifest.json"),
    (["scaling", "fit", "--points", "{empty}", "--out", "fit.json"], "at least 5 points"),
    (["scaling", "plan", "--flops", "1e18", "--law", "kaplan"], "unknown published law"),
    (["scaling", "plan", "--flops", "1e18", "--fit", "missing"], "no fit"),
    # align
    (["align", "dpo", "--run", "missing", "--data", "{same_pairs}", "--out", "out"], "does not exist"),
    (["align", "dpo", "--run", "{run}", "--out", "out"], "needs --run SFT"),
    (["align", "dpo", "--run", "{run}", "--data", "missing.jsonl", "--out", "out"], "does not exist"),
    (["align", "dpo", "--run", "{run}", "--data", "{text}", "--out", "out"], "not valid JSON"),
    (["align", "dpo", "--run", "{run}", "--data", "{same_pairs}", "--out", "out"], "identical chosen and rejected"),
    (["align", "dpo", "--run", "{run}", "--data", "{long_pairs}", "--val-data", "{long_pairs}", "--out", "out"], "context"),
    (["align", "dpo", "--run", "{run}", "--data", "{long_pairs}", "--out", "out", "--label-smoothing", "0.7"],
     "label_smoothing"),
    (["align", "dpo", "--run", "{run}", "--data", "{long_pairs}", "--out", "{foreign}"], "did not write"),
    (["align", "dpo", "--out", "out", "--resume"], "nothing to resume"),
    (["align", "reward", "--run", "{run}", "--out", "out"], "needs --run SFT"),
    (["align", "reward", "--run", "missing", "--data", "{same_pairs}", "--out", "out"], "does not exist"),
    (["align", "reward", "--run", "{run}", "--data", "{same_pairs}", "--out", "out"], "identical chosen and rejected"),
    (["align", "reward", "--run", "{run}", "--data", "{long_pairs}", "--val-data", "{long_pairs}", "--out", "out"],
     "context"),
    (["align", "reward", "--run", "{run}", "--data", "{long_pairs}", "--out", "{foreign}"], "did not write"),
    (["align", "pairs", "--run", "{run}", "--reward", "{run}", "--prompts", "{same_pairs}", "--out", "o.jsonl"],
     "not a reward model"),
    (["align", "pairs", "--run", "{run}", "--reward", "missing", "--prompts", "{same_pairs}", "--out", "o.jsonl"],
     "does not exist"),
    (["align", "pairs", "--run", "{run}", "--reward", "{run}", "--prompts", "{same_pairs}", "--out", "o.jsonl",
      "--k", "1"], "at least 2"),
    (["align", "pairs", "--run", "{run}", "--reward", "{run}", "--rules", "{bad_rules}", "--prompts", "{same_pairs}",
      "--out", "o.jsonl"], "exactly one ranker"),
    (["align", "pairs", "--run", "{run}", "--rules", "{bad_rules}", "--prompts", "{same_pairs}", "--out", "o.jsonl"],
     "unknown kind 'sparkle'"),
    (["align", "pairs", "--run", "{run}", "--rules", "{empty}", "--prompts", "{same_pairs}", "--out", "o.jsonl"],
     "has no rules"),
    (["align", "pairs", "--run", "{run}", "--judge-model", "m", "--rules", "{bad_rules}", "--prompts", "{same_pairs}",
      "--out", "o.jsonl"], "--judge-endpoint"),
    (["align", "constitution", "--run", "{run}", "--prompts", "{same_pairs}", "--constitution", "{empty}",
      "--out", "cai"], "has no principles"),
    (["align", "constitution", "--run", "{run}", "--prompts", "{empty}", "--out", "cai"], "has no prompts"),
    (["align", "constitution", "--run", "{run}", "--endpoint", "http://127.0.0.1:9", "--prompts", "{same_pairs}",
      "--out", "cai"], "exactly one model"),
    (["align", "constitution", "--prompts", "{same_pairs}", "--out", "cai"], "exactly one model"),
    (["align", "constitution", "--run", "{run}", "--prompts", "{same_pairs}", "--out", "{foreign}"], "did not write"),
    (["align", "constitution", "--run", "{run}", "--prompts", "{same_pairs}", "--out", "cai", "--rounds", "0"],
     "--rounds must be at least 1"),
    (["align", "constitution", "--endpoint", "http://127.0.0.1:9", "--prompts", "{same_pairs}", "--out", "cai"],
     "cannot reach"),
    (["align", "grpo", "--run", "{run}", "--out", "out"], "needs --run SFT"),
    (["align", "grpo", "--run", "missing", "--data", "{same_pairs}", "--out", "out"], "does not exist"),
    (["align", "grpo", "--run", "{run}", "--data", "missing.jsonl", "--out", "out"], "does not exist"),
    (["align", "grpo", "--run", "{run}", "--data", "{same_pairs}", "--out", "out"], 'has no "answer"'),
    (["align", "grpo", "--run", "{run}", "--data", "{same_pairs}", "--reward", "gsm9k", "--out", "out"],
     "unknown reward"),
    (["align", "grpo", "--run", "{run}", "--data", "{long_pairs}", "--reward", "format", "--out", "out"], "context"),
    (["align", "grpo", "--run", "{run}", "--data", "{same_pairs}", "--group-size", "1", "--out", "out"], "at least 2"),
    (["align", "grpo", "--run", "{run}", "--data", "{same_pairs}", "--out", "out", "train.batch_size=5"],
     "does not divide"),
    (["align", "grpo", "--run", "{run}", "--data", "{same_pairs}", "--out", "{foreign}"], "did not write"),
    (["align", "grpo", "--out", "out", "--resume"], "nothing to resume"),
    (["align", "ppo", "--run", "{run}", "--out", "out"], "needs --run SFT"),
    (["align", "ppo", "--run", "{run}", "--reward", "missing", "--prompts", "{same_pairs}", "--out", "out"],
     "does not exist"),
    (["align", "ppo", "--run", "{run}", "--reward", "{run}", "--prompts", "{same_pairs}", "--out", "out"],
     "not a reward model"),
    (["align", "ppo", "--run", "{run}", "--reward", "{run}", "--prompts", "{same_pairs}", "--out", "out",
      "ppo.clip=1.5"], "ppo.clip must be in"),
    # viz
    (["viz", "tokens", "--run", "{notok}", "--prompt", "x", "--out", "t.png"], "no tokenizer.json"),
    (["viz", "tokens", "--run", "{run}", "--prompt", "x", "--out", "t.jpg"], "must end in .png or .html"),
    (["viz", "attention", "--run", "{run}", "--prompt", "x", "--layer", "5", "--out", "a.png"], "--layer 5 is out of range"),
    (["viz", "attention", "--run", "{run}", "--prompt", "x", "--head", "-1", "--out", "a.png"], "--head -1 is out of range"),
    (["viz", "attention", "--run", "{run}", "--prompt", "x", "--animate", "--out", "a.png"], "must end in .gif"),
    (["viz", "logit-lens", "--run", "{run}", "--prompt", BIG_PROMPT, "--out", "l.png"], "context"),
    (["viz", "saliency", "--run", "{run}", "--prompt", "x", "--target", "several words", "--out", "s.png"],
     "exactly one token"),
    (["viz", "inference", "--run", "{run}", "--prompt", "x", "--temperature", "-1", "--out", "i.html"], "temperature"),
    (["viz", "embeddings", "--run", "missing", "--out", "e.png"], "does not exist"),
    (["viz", "bigram", "--run", "{run}", "--out", "b.png"], "not a charlm run"),
    (["viz", "playground", "--run", "{notok}"], "no tokenizer.json"),
    # serve
    (["serve", "--run", "missing"], "does not exist"),
    (["serve", "--run", "{corrupt}"], "corrupt"),
    (["serve", "--run", "{run}", "--port", "70000"], "not a TCP port"),
    (["serve", "--run", "{run}", "--max-batch", "0"], "must be positive"),
    (["serve", "--run", "{run}", "--draft-k", "0"], "must be at least 1"),
    (["serve", "--run", "{run}", "--draft-run", "missing"], "does not exist"),
    (["serve", "--run", "{run}", "--draft-run", "{notok}"], "another tokenizer"),
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
    if not subs or parser.get_default("func"):   # a command that also runs without a sub-command (eval)
        yield prefix
    if not subs:
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
    shutil.copytree(root / "run", root / "notok")
    (root / "notok" / "tokenizer.json").unlink()
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
    (root / "same_pairs.jsonl").write_text('{"prompt": "hi", "chosen": "yo", "rejected": "yo"}\n')
    (root / "long_pairs.jsonl").write_text(json.dumps({"prompt": BIG_PROMPT, "chosen": "a", "rejected": "b"}) + "\n")
    files = {"run": root / "run", "corrupt": root / "corrupt", "notok": root / "notok", "tok": root / "run" / "tokenizer.json",
             "text": docs / "doc0.txt", "foreign": root / "foreign", "foreign_file": root / "foreign_file",
             "empty": root / "empty.txt", "binary": root / "binary.txt",
             "same_pairs": root / "same_pairs.jsonl", "long_pairs": root / "long_pairs.jsonl"}
    (root / "bad_rules.toml").write_text('[[rule]]\nkind = "sparkle"\n')   # align pairs --rules: an unknown kind
    files["bad_rules"] = root / "bad_rules.toml"
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
