"""`scratchllm scaling sweep|fit|plan`: compute-optimal sizing from the user's own runs.

    scratchllm scaling sweep --flops 1e13,3e13,1e14 --sizes 2,3,4,5,6 --out runs/sweep [--data D] [key=value ...]
    scratchllm scaling fit runs/sweep --out runs/sweep/fit.json           # or --points pts.jsonl
    scratchllm scaling plan --flops 1e18 [--fit runs/sweep] [--tokens-per-s 50000]
"""

from __future__ import annotations

import argparse
import json

from scratchllm.errors import UserError


def _numbers(text: str, kind, what: str) -> list:
    try:
        values = [kind(float(v)) if kind is int else kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"{what} must be a comma-separated list of numbers, got '{text}'") from None
    if not values:
        raise UserError(f"{what} is empty; give e.g. {'1e13,3e13' if kind is float else '2,3,4'}")
    return values


def register(subparsers) -> None:
    p = subparsers.add_parser("scaling", help="scaling laws: IsoFLOP sweeps, Chinchilla fits, compute-optimal plans",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="scaling_command", metavar="COMMAND", required=True)

    s = sub.add_parser("sweep", help="train several sizes at each FLOP budget (IsoFLOP profiles); resumable")
    s.add_argument("--flops", required=True, help="comma-separated compute budgets, e.g. 1e13,3e13,1e14")
    s.add_argument("--sizes", required=True, help="comma-separated model depths (the model.depth dial), e.g. 2,3,4,5")
    s.add_argument("--data", default=None, help="raw text or a token directory (default: the built-in corpus)")
    s.add_argument("--preset", default="tiny-cpu", help="preset every point starts from (default tiny-cpu)")
    s.add_argument("--out", required=True, help="sweep directory: one run per point + manifest.json")
    s.add_argument("--no-progress", action="store_true", help="no progress bars")
    s.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides for every point")
    s.set_defaults(func=cmd_sweep)

    f = sub.add_parser("fit", help="fit L(N,D) = E + A/N^a + B/D^b (approach 3) and IsoFLOP parabolas (approach 2)")
    f.add_argument("sweep", nargs="?", default=None, help="sweep directory (its finished points)")
    f.add_argument("--points", default=None, help='JSONL of {"params", "tokens", "loss"[, "flops"]} lines')
    f.add_argument("--out", required=True, help="fit.json to write (plots go beside it)")
    f.add_argument("--bootstrap", type=int, default=200, help="bootstrap resamples for the intervals (default 200)")
    f.set_defaults(func=cmd_fit)

    q = sub.add_parser("plan", help="compute-optimal parameters and tokens for a FLOP budget")
    q.add_argument("--flops", required=True, type=float, help="compute budget in FLOPs, e.g. 1e18")
    q.add_argument("--fit", default=None, help="fit.json (or its directory); default: a published fit")
    q.add_argument("--law", default="chinchilla", help="published fit without --fit: chinchilla or besiroglu")
    q.add_argument("--tokens-per-s", type=float, default=None, help="measured training throughput, for the time")
    q.add_argument("--preset", default="tiny-cpu", help="preset whose shape the suggested model.depth uses")
    q.set_defaults(func=cmd_plan)


def cmd_sweep(args) -> int:
    from scratchllm.scaling.sweep import run_sweep

    points = run_sweep(_numbers(args.flops, float, "--flops"), _numbers(args.sizes, int, "--sizes"), args.out,
                       preset=args.preset, overrides=args.overrides, data=args.data, progress=not args.no_progress)
    for p in points:
        print(f"{p.name}: {p.params:,} params, {p.tokens:,} tokens, val loss {p.val_loss:.4f}")
    print(f"fit with: scratchllm scaling fit {args.out} --out {args.out}/fit.json")
    return 0


def cmd_fit(args) -> int:
    from scratchllm.scaling.analyze import fit_and_report, read_points

    if args.bootstrap < 0:
        raise UserError(f"--bootstrap must be >= 0, got {args.bootstrap}")
    result = fit_and_report(read_points(args.sweep, args.points), args.out, bootstrap_samples=args.bootstrap)
    law, ci = result["law"], result["intervals_90"]
    for k in ("E", "A", "B", "alpha", "beta"):
        interval = f"  (90% CI {ci[k][0]:.4g} .. {ci[k][1]:.4g})" if k in ci else ""
        print(f"{k:>5} = {law[k]:.4g}{interval}")
    for budget, opt in result["optimum"].items():
        print(f"at {budget} FLOPs: N_opt {opt['params']:.3g}, D_opt {opt['tokens']:.3g}, "
              f"{opt['tokens_per_param']:.1f} tokens/param")
    if "approach2" in result:
        print(f"approach 2: N_opt ∝ C^{result['approach2']['a']:.3f}, D_opt ∝ C^{result['approach2']['b']:.3f}")
    print(f"wrote {args.out}")
    return 0


def cmd_plan(args) -> int:
    from scratchllm.scaling.plan import plan, read_fit
    from scratchllm.train.config import resolve_run_config

    law = read_fit(args.fit) if args.fit else None
    base = resolve_run_config(args.preset).model
    out = plan(args.flops, law=law, law_name=args.law, tokens_per_s=args.tokens_per_s, base=base)
    source = args.fit or f"the published {args.law} fit"
    print(f"{args.flops:.3g} FLOPs, by {source}: {out['params']:.3g} parameters on {out['tokens']:.3g} tokens "
          f"({out['tokens_per_param']:.1f} tokens/param), predicted loss {out['predicted_loss']:.3f}")
    print(f"nearest size: model.depth={out['depth']} (preset {args.preset})")
    if "duration" in out:
        print(f"training time at {args.tokens_per_s:,.0f} tokens/s: {out['duration']}")
    print(json.dumps({k: v for k, v in out.items() if k != "law"}))
    return 0
