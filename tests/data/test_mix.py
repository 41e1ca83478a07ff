"""Mixing: token shares within 2% of target, determinism, epochs, budgets."""

import functools

import pytest

from data_helpers import prose
from scratchllm.data.mix import copies, plan_rates
from scratchllm.data.sources import Document
from scratchllm.data.stages import run_mix
from scratchllm.errors import UserError


@functools.lru_cache(maxsize=1)
def _sources():
    # three sources of very different sizes and document lengths
    return {
        "web": [Document(f"web{i}", prose(40 + i % 50, i)) for i in range(3000)],
        "books": [Document(f"book{i}", prose(300 + 7 * (i % 30), 10_000 + i)) for i in range(200)],
        "code": [Document(f"code{i}", prose(80, 20_000 + i)) for i in range(400)],
    }


@pytest.mark.parametrize("weights", [{"web": 0.5, "books": 0.3, "code": 0.2}, {"web": 0.1, "books": 0.1, "code": 0.8}])
def test_mixed_shares_within_two_percent(tmp_path, weights):
    import json

    sources = _sources()
    run_mix(sources, weights, tmp_path / "mix.jsonl", seed=0, max_epochs=3.0)
    size = {k: 0 for k in sources}
    for line in open(tmp_path / "mix.jsonl"):
        row = json.loads(line)
        size[row["source"]] += len(row["text"].encode())
    total = sum(size.values())
    for name, w in weights.items():
        assert abs(size[name] / total - w) < 0.02, (name, size[name] / total, w)


def test_mix_is_deterministic_and_seed_dependent(tmp_path):
    sources = _sources()
    w = {"web": 0.5, "books": 0.3, "code": 0.2}
    run_mix(sources, w, tmp_path / "a.jsonl", seed=1)
    run_mix(sources, w, tmp_path / "b.jsonl", seed=1)
    run_mix(sources, w, tmp_path / "c.jsonl", seed=2)
    a, b, c = ((tmp_path / f"{x}.jsonl").read_bytes() for x in "abc")
    assert a == b and a != c


def test_rates_budget_and_epochs():
    rates = plan_rates({"a": 1000, "b": 100}, {"a": 0.5, "b": 0.5}, max_epochs=2.0)
    assert rates == pytest.approx({"a": 0.2, "b": 2.0})  # b limits: 2 epochs of 100 = half of 400
    rates = plan_rates({"a": 1000, "b": 100}, {"a": 1.0}, epochs={"b": 3.0}, total=800)
    assert rates == pytest.approx({"a": 0.5, "b": 3.0})
    assert sum(copies(2.5, f"d{i}", 0) for i in range(4000)) / 4000 == pytest.approx(2.5, abs=0.03)


def test_empty_source_is_a_clear_error():
    with pytest.raises(UserError, match="source 'b' is empty"):
        plan_rates({"a": 10, "b": 0}, {"a": 1, "b": 1})
