"""Resuming and loading runs whose checkpoints are not what a resume needs: Ctrl-C through the CLI
(exit 130, then `--resume` continues the same run), an imported run without optimizer state, a
corrupt optimizer.pt (generation still loads, resume refuses), weights that do not fit the config."""

import json
import os
import signal

import pytest
import torch
from train_helpers import tiny_config

from scratchllm.cli import main
from scratchllm.errors import UserError
from scratchllm.model.transformer import Transformer
from scratchllm.tokenizer import Tokenizer
from scratchllm.train import checkpoint as ckpt
from scratchllm.train import loop
from scratchllm.train.loop import train

TINY = ["model.n_layer=1", "model.n_head=2", "model.n_embd=32", "model.block_size=16", "train.batch_size=4",
        "train.warmup_steps=1", "train.eval_every=3", "train.eval_batches=1", "train.log_every=1",
        "train.progress=false", "train.device=cpu", "data.vocab_size=280", "data.val_fraction=0.2",
        "data.workers=1", "train.checkpoint_every=2"]


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus"
    path.mkdir()
    for i in range(10):
        (path / f"doc{i}.txt").write_text(" ".join(f"word{(i * 7 + j) % 50}" for j in range(300)))
    return path


def _steps_and_losses(run):
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"]) for r in records]


def test_ctrl_c_exits_130_and_cli_resume_finishes_the_same_run(corpus, tmp_path, monkeypatch, capsys):
    straight = tmp_path / "straight"
    assert main(["train", "--data", str(corpus), "--out", str(straight), *TINY, "train.max_steps=6"]) == 0
    real_lr_at = loop.lr_at

    def interrupting_lr_at(step, cfg, time_frac=0.0):
        if step == 3:                     # during step 4, as a Ctrl-C would arrive
            os.kill(os.getpid(), signal.SIGINT)
        return real_lr_at(step, cfg, time_frac)

    run = tmp_path / "run"
    monkeypatch.setattr(loop, "lr_at", interrupting_lr_at)
    assert main(["train", "--data", str(corpus), "--out", str(run), *TINY, "train.max_steps=6"]) == 130
    assert f"scratchllm train --out {run} --resume" in capsys.readouterr().out
    assert ckpt.list_steps(run)[-1] == 4
    monkeypatch.setattr(loop, "lr_at", real_lr_at)
    assert main(["train", "--out", str(run), "--resume"]) == 0      # config, data and tokens from the run itself
    resumed, expected = _steps_and_losses(run), _steps_and_losses(straight)
    # The same run: its steps 5-6 continue from step 4's weights and moments (a restart from scratch,
    # or a fresh optimizer, is off by far more). Two CLI runs in one process agree to ~1e-6 only, not
    # bitwise (bitwise resume is pinned at the loop level, in test_train_loop).
    assert [s for s, _ in resumed] == [s for s, _ in expected] == [1, 2, 3, 4, 5, 6]
    assert [l for _, l in resumed] == pytest.approx([l for _, l in expected], rel=1e-5)


def _imported_run(tmp_path):
    torch.manual_seed(0)
    cfg = tiny_config("model.vocab_size=320")
    tok = Tokenizer.train([f"hello world {i}" for i in range(50)], vocab_size=300, progress=False)
    ckpt.save_run_weights(tmp_path / "run", Transformer(cfg.model), tok, config=cfg, step=7)
    return tmp_path / "run"


def test_resuming_a_run_without_optimizer_state_is_refused(tmp_path, token_dir):
    from scratchllm.data.loader import TokenLoader

    run = _imported_run(tmp_path)
    assert ckpt.load_run(run).step == 7                              # loading for generation works
    cfg = tiny_config("model.vocab_size=320")
    with pytest.raises(UserError, match="no optimizer state, so it cannot be resumed"):
        train(Transformer(cfg.model), cfg, TokenLoader(token_dir, "train", 16, 4), run, resume=True, quiet=True)


def test_corrupt_optimizer_file_blocks_resume_but_not_generation(tmp_path, token_dir):
    from scratchllm.data.loader import TokenLoader

    cfg = tiny_config("train.max_steps=2")
    torch.manual_seed(0)
    model = Transformer(cfg.model)
    train(model, cfg, TokenLoader(token_dir, "train", 16, 4), tmp_path / "r", quiet=True)
    opt = ckpt.step_dir(tmp_path / "r", 2) / "optimizer.pt"
    opt.write_bytes(opt.read_bytes()[:-7] + b"garbage")
    x = torch.randint(0, 64, (1, 8))
    assert torch.equal(ckpt.load_run(tmp_path / "r").model(x), model.eval()(x))
    with pytest.raises(UserError, match=r"corrupt or incomplete \(optimizer.pt is missing or does not match"):
        train(Transformer(cfg.model), cfg, TokenLoader(token_dir, "train", 16, 4), tmp_path / "r", resume=True,
              quiet=True)


def test_weights_that_do_not_fit_the_config_are_one_sentence(tmp_path):
    run = _imported_run(tmp_path)
    text = (run / "config.toml").read_text()
    (run / "config.toml").write_text(text.replace("n_embd = 32", "n_embd = 48"))
    with pytest.raises(UserError, match=r"does not fit this model .*config.toml's \[model\] table") as e:
        ckpt.load_run(run)
    assert "\n" not in str(e.value)
