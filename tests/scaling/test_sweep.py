"""A real (tiny) IsoFLOP sweep on CPU: plans, trains, resumes without rerunning, fits, plans from the fit."""

import json

import numpy as np
import pytest

from scratchllm.cli import main
from scratchllm.data.shards import ShardWriter
from scratchllm.errors import UserError
from scratchllm.scaling.sweep import plan_points, run_sweep
from scratchllm.train.config import resolve_run_config

OVERRIDES = ["model.vocab_size=64", "model.block_size=16", "train.batch_size=4", "train.eval_batches=2",
             "train.log_every=5", "train.device=cpu"]


@pytest.fixture(scope="module")
def token_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("tokens")
    rng = np.random.default_rng(0)
    splits = {}
    for split, n_docs in (("train", 40), ("val", 8)):
        with ShardWriter(d, split, vocab_size=64, separator=0) as w:
            for _ in range(n_docs):
                w.add_document((rng.integers(1, 64) + np.cumsum(rng.integers(1, 3, size=60))) % 63 + 1)
        splits[split] = {"tokens": n_docs * 61, "bytes": n_docs * 61 * 3, "documents": n_docs}
    (d / "meta.json").write_text(json.dumps({"vocab_size": 64, "eot_id": 0, "splits": splits}))
    (d / "tokenizer.json").write_text("{}")   # copied into each run; never read here
    return d


def test_depth_dial_sets_shape_and_transfers_lr():
    small = resolve_run_config("tiny-cpu", ["model.depth=2"])
    big = resolve_run_config("tiny-cpu", ["model.depth=8"])
    assert (small.model.n_layer, small.model.n_embd, small.model.n_head) == (2, 128, 2)
    assert (big.model.n_layer, big.model.n_embd, big.model.n_head) == (8, 512, 8)
    assert big.train.max_lr == pytest.approx(small.train.max_lr / 2)     # lr ∝ 1/sqrt(width)
    fixed = resolve_run_config("tiny-cpu", ["model.depth=8", "train.max_lr=1e-3"])
    assert fixed.train.max_lr == 1e-3                                      # given on the command line: kept
    plain = resolve_run_config("tiny-cpu")
    assert plain.model.n_layer == 4 and plain.model.depth == 0             # presets keep working


def test_plan_gives_each_point_its_token_budget():
    points = plan_points([1e10], [1, 2, 3], "tiny-cpu", OVERRIDES)
    tokens_per_step = 4 * 16
    for p in points:
        per_token = (p.flops / p.tokens)
        assert p.tokens == p.steps * tokens_per_step
        assert per_token > 6 * p.params                 # 6N plus the attention term (and the floor of steps)
    assert [p.params for p in points] == sorted(p.params for p in points)
    assert points[0].tokens > points[-1].tokens          # small models see more tokens at one budget
    with pytest.raises(UserError, match="raise --flops"):
        plan_points([1e6], [1, 2], "tiny-cpu", OVERRIDES)


def test_tiny_sweep_runs_resumes_and_fits(token_dir, tmp_path, capsys):
    out = tmp_path / "sweep"
    budgets, depths = [6e9, 1.2e10], [1, 2, 3]
    points = run_sweep(budgets, depths, out, overrides=OVERRIDES, data=str(token_dir), progress=False)
    assert len(points) == 6 and all(p.val_loss is not None for p in points)
    manifest = json.loads((out / "manifest.json").read_text())
    assert [p["name"] for p in manifest["points"]] == [p.name for p in points]
    stamps = {p.name: (out / p.name / "metrics.jsonl").stat().st_mtime_ns for p in points}
    again = run_sweep(budgets, depths, out, overrides=OVERRIDES, data=str(token_dir), progress=False)
    assert [p.val_loss for p in again] == [p.val_loss for p in points]
    assert {p.name: (out / p.name / "metrics.jsonl").stat().st_mtime_ns for p in again} == stamps  # none rerun
    with pytest.raises(UserError, match="other data or another preset"):
        run_sweep(budgets, depths, out, preset="small", overrides=OVERRIDES, data=str(token_dir), progress=False)

    assert main(["scaling", "fit", str(out), "--out", str(out / "fit.json"), "--bootstrap", "3"]) == 0
    fit = json.loads((out / "fit.json").read_text())
    assert fit["n_points"] == 6 and set(fit["law"]) == {"E", "A", "B", "alpha", "beta"}
    assert "approach2" in fit and len(fit["approach2"]["budgets"]) == 2
    assert all((out / name).stat().st_size > 1000 for name in ("isoflop.png", "frontier.png", "contours.png"))
    assert main(["scaling", "plan", "--flops", "1e12", "--fit", str(out), "--tokens-per-s", "1000"]) == 0
    assert "model.depth=" in capsys.readouterr().out


def test_fit_and_plan_refuse_bad_input(tmp_path, capsys):
    assert main(["scaling", "fit", str(tmp_path), "--out", str(tmp_path / "f.json")]) == 2
    assert "no manifest.json" in capsys.readouterr().err
    bad = tmp_path / "p.jsonl"
    bad.write_text('{"params": 1, "tokens": 2}\n')
    assert main(["scaling", "fit", "--points", str(bad), "--out", str(tmp_path / "f.json")]) == 2
    assert "p.jsonl:1" in capsys.readouterr().err
    assert main(["scaling", "plan", "--flops", "1e18", "--law", "kaplan"]) == 2
    assert "unknown published law" in capsys.readouterr().err
    assert main(["scaling", "sweep", "--flops", "1e13,x", "--sizes", "2", "--out", str(tmp_path / "s")]) == 2
    assert not (tmp_path / "s").exists()
