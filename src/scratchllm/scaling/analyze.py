"""From finished runs to a fit: gather (params, tokens, loss) points, fit both approaches, write it down.

    points = read_points(sweep_dir="runs/sweep")            # or read_points(points_file="pts.jsonl")
    fit_and_report(points, "runs/sweep/fit.json")           # fit.json + isoflop/frontier/contours PNGs

Points carry an optional `flops` (the budget they were trained at): with at least 3 sizes at each
of 2 or more budgets, approach 2 runs too. fit.json holds approach 3's E, A, B, alpha, beta with
bootstrap intervals, approach 2's exponents, and the tokens-per-parameter optimum each implies.

>>> import tempfile, pathlib
>>> f = pathlib.Path(tempfile.mkdtemp()) / "points.jsonl"
>>> _ = f.write_text('{"params": 1e8, "tokens": 2e9, "loss": 2.9, "flops": 1.2e18}')
>>> read_points(points_file=f)
[{'params': 100000000.0, 'tokens': 2000000000.0, 'loss': 2.9, 'flops': 1.2e+18}]
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from scratchllm.errors import UserError
from scratchllm.scaling import plots
from scratchllm.scaling.fit import bootstrap, fit_isoflop, fit_law
from scratchllm.scaling.sweep import read_manifest
from scratchllm.utils.atomic import atomic_write_text

FIELDS = ("params", "tokens", "loss")


def read_points(sweep_dir: str | Path | None = None, points_file: str | Path | None = None) -> list[dict]:
    """Finished points of a sweep (its manifest) and/or of a JSONL file of {"params","tokens","loss"} lines."""
    points = []
    if sweep_dir is not None:
        for p in read_manifest(sweep_dir)["points"]:
            if p.get("val_loss") is not None:
                points.append({"params": p["params"], "tokens": p["tokens"], "loss": p["val_loss"], "flops": p["flops"]})
        if not points:
            raise UserError(f"the sweep in '{sweep_dir}' has no finished points yet; run `scratchllm scaling sweep` to the end")
    if points_file is not None:
        path = Path(points_file)
        if not path.is_file():
            raise UserError(f"points file '{path}' does not exist")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                points.append({**{k: float(row[k]) for k in FIELDS}, **({"flops": float(row["flops"])} if "flops" in row else {})})
            except (ValueError, KeyError, TypeError):
                raise UserError(f"{path}:{number} is not a JSON object with numeric {', '.join(FIELDS)}") from None
    if sweep_dir is None and points_file is None:
        raise UserError("give a sweep directory or --points FILE.jsonl")
    return points


def _profiles(points: list[dict]) -> dict[float, list[tuple[float, float, float]]]:
    by_budget = defaultdict(list)
    for p in points:
        if "flops" in p:
            by_budget[p["flops"]].append((p["params"], p["tokens"], p["loss"]))
    return {c: pts for c, pts in by_budget.items() if len(pts) >= 3}


def fit_and_report(points: list[dict], out: str | Path, bootstrap_samples: int = 200) -> dict:
    """Fit, write `out` (fit.json) and the plots beside it; returns what fit.json holds."""
    out = Path(out)
    n, d, l = ([p[k] for p in points] for k in FIELDS)
    law = fit_law(n, d, l)
    intervals = bootstrap(n, d, l, law, samples=bootstrap_samples) if bootstrap_samples else {}
    budgets = sorted({p["flops"] for p in points if "flops" in p}) or [6 * min(n) * min(d), 6 * max(n) * max(d)]
    result = {"n_points": len(points), "law": law.as_dict(), "intervals_90": intervals,
              "optimum": {f"{c:.3g}": {"params": law.optimal(c)[0], "tokens": law.optimal(c)[1],
                                       "tokens_per_param": law.optimal(c)[1] / law.optimal(c)[0]} for c in budgets}}
    profiles = _profiles(points)
    out.parent.mkdir(parents=True, exist_ok=True)
    if len(profiles) >= 2:
        iso = fit_isoflop(profiles)
        result["approach2"] = {**iso.as_dict(), "tokens_per_param": [dd / nn for nn, dd in zip(iso.n_opt, iso.d_opt)]}
        plots.isoflop_curves(profiles, out.with_name("isoflop.png"), dict(zip(iso.budgets, iso.n_opt)))
    plots.frontier(list(zip(n, d, l)), law, out.with_name("frontier.png"))
    plots.contours(law, n, d, out.with_name("contours.png"))
    atomic_write_text(out, json.dumps(result, indent=1) + "\n")
    return result
