"""Checkpoints: round trips, a save killed halfway never counts, corruption is a clear error."""

import json
import random
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from train_helpers import tiny_config
from scratchllm.errors import UserError
from scratchllm.model.transformer import Transformer
from scratchllm.tokenizer import Tokenizer
from scratchllm.train import checkpoint as ckpt


@pytest.fixture()
def model():
    torch.manual_seed(0)
    return Transformer(tiny_config().model)


def test_save_run_weights_then_load_run_round_trip(tmp_path):
    torch.manual_seed(0)
    model = Transformer(tiny_config("model.vocab_size=320").model)
    tok = Tokenizer.train([f"hello world {i}, hello there {i * 7}" for i in range(200)], vocab_size=300, progress=False)
    ckpt.save_run_weights(tmp_path, model, tok, step=3)
    run = ckpt.load_run(tmp_path)
    x = torch.randint(0, 60, (2, 10))
    assert run.step == 3 and not run.model.training
    assert torch.equal(run.model(x), model.eval()(x))
    assert run.tokenizer.decode(run.tokenizer.encode("hello")) == "hello"
    assert run.config.model == model.config


def test_keep_last_k_and_rng_round_trip(model, tmp_path):
    for step in (1, 2, 3):
        ckpt.save_checkpoint(tmp_path, step, model, keep=2)
    assert ckpt.list_steps(tmp_path) == [2, 3]
    # Each generator a resumed run draws from: Python's (shuffles), NumPy's (data order), torch's (dropout, init).
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    state = ckpt.rng_state()
    draws = (random.random(), random.gauss(0, 1), np.random.rand(3).tolist(), torch.rand(3))
    random.seed(9), np.random.seed(9), torch.manual_seed(9)       # something else ran in between
    ckpt.set_rng_state(json.loads(json.dumps(state)))  # survives JSON, as in state.json
    again = (random.random(), random.gauss(0, 1), np.random.rand(3).tolist(), torch.rand(3))
    assert again[:3] == draws[:3] and torch.equal(again[3], draws[3])


def test_save_killed_midway_leaves_no_valid_checkpoint(model, tmp_path):
    ckpt.save_checkpoint(tmp_path, 1, model, state={"tokens": 1})
    # Another process dies (os._exit: no cleanup, like SIGKILL) while writing step 2's optimizer file.
    script = textwrap.dedent(f"""
        import os, torch
        from scratchllm.train import checkpoint as ckpt
        def dying_save(obj, f, *a, **k):
            f.write(b"half a file")  # save_checkpoint hands torch.save an open file
            f.flush()
            os._exit(9)
        torch.save = dying_save
        net = torch.nn.Linear(2, 2)
        ckpt.save_checkpoint({str(tmp_path)!r}, 2, net, torch.optim.AdamW(net.parameters()))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode == 9
    assert list((tmp_path / "checkpoints").glob(".step-000002*"))  # the debris is there ...
    assert ckpt.list_steps(tmp_path) == [1]                        # ... but never counts as a checkpoint
    assert ckpt.find_checkpoint(tmp_path).step == 1
    ckpt.save_checkpoint(tmp_path, 3, model)                       # the next save sweeps it away
    assert not list((tmp_path / "checkpoints").glob(".step-*"))


@pytest.mark.parametrize("damage", ["truncate", "flip", "state"])
def test_corrupt_checkpoint_is_a_one_line_error(model, tmp_path, damage):
    path = ckpt.save_checkpoint(tmp_path, 5, model)
    weights = path / "model.safetensors"
    if damage == "truncate":
        weights.write_bytes(weights.read_bytes()[:100])
    elif damage == "flip":
        data = bytearray(weights.read_bytes())
        data[-5] ^= 0xFF
        weights.write_bytes(bytes(data))
    else:
        (path / "state.json").write_text("{not json")
    with pytest.raises(UserError, match="corrupt") as err:
        ckpt.find_checkpoint(tmp_path)
    assert "\n" not in str(err.value)


def test_missing_run_and_step_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        ckpt.load_run(tmp_path / "nope")
    with pytest.raises(UserError, match="no checkpoints"):
        ckpt.find_checkpoint(tmp_path)
