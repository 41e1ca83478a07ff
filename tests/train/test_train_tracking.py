"""metrics.jsonl: NaN and infinity written as JSON null, a torn last line (a crash mid-write)
skipped on read and dropped by a resume's truncation."""

import json
import math

from scratchllm.train.tracking import MetricsLog, read_metrics


def test_non_finite_values_become_null_and_every_line_is_strict_json(tmp_path):
    log = MetricsLog(tmp_path / "m" / "metrics.jsonl")   # the parent directory is made
    log.write({"step": 1, "loss": math.nan, "grad_norm": math.inf, "lr": -math.inf, "tokens": 64})
    log.write({"step": 2, "loss": 2.5, "grad_norm": 0.0})
    lines = log.path.read_text().splitlines()
    # strict parsing (what jq, JavaScript and pandas do) rejects NaN/Infinity tokens
    strict = [json.loads(line, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c))) for line in lines]
    assert strict == [{"step": 1, "loss": None, "grad_norm": None, "lr": None, "tokens": 64},
                      {"step": 2, "loss": 2.5, "grad_norm": 0.0}]
    assert read_metrics(log.path) == strict


def test_torn_last_line_is_skipped_then_dropped_on_resume(tmp_path):
    log = MetricsLog(tmp_path / "metrics.jsonl")
    for step in (1, 2, 3):
        log.write({"step": step, "loss": 1.0 / step})
    with open(log.path, "a") as f:
        f.write('{"step": 4, "lo')                     # the process died inside this write
    assert [r["step"] for r in read_metrics(log.path)] == [1, 2, 3]
    log.truncate_after(2)                              # resuming from the step-2 checkpoint
    assert log.path.read_text() == '{"step": 1, "loss": 1.0}\n{"step": 2, "loss": 0.5}\n'
    log.write({"step": 3, "loss": 0.25})
    assert [r["step"] for r in read_metrics(log.path)] == [1, 2, 3]
