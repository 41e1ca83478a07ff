"""`scratchllm runs list|show|compare|dashboard` and `scratchllm reproduce`: look at runs, trust them.

    scratchllm runs list runs/                          # a table: params, tokens, val loss/bpb, status
    scratchllm runs show runs/tiny                      # one run: metadata, checkpoints, last figures
    scratchllm runs compare runs/a runs/b --out cmp.png # overlaid curves + the config keys that differ
    scratchllm runs dashboard runs/ --port 8050         # a live page, updating while runs train
    scratchllm reproduce runs/tiny --out runs/tiny-again --steps 50
"""

from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    p = subparsers.add_parser("runs", help="list, show, compare and watch run directories",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="runs_command", metavar="SUBCOMMAND", required=True)
    ls = sub.add_parser("list", help="a table of the runs in a directory")
    ls.add_argument("dir", nargs="?", default="runs", help="a directory of runs (default runs/)")
    ls.set_defaults(func=cmd_list)
    show = sub.add_parser("show", help="one run: metadata, checkpoints, last figures")
    show.add_argument("run", help="a run directory")
    show.set_defaults(func=cmd_show)
    cmp = sub.add_parser("compare", help="overlaid curves and the config diff of runs")
    cmp.add_argument("runs", nargs="+", help="two or more run directories")
    cmp.add_argument("--out", default=None, help="image of the overlaid curves (e.g. cmp.png)")
    cmp.set_defaults(func=cmd_compare)
    dash = sub.add_parser("dashboard", help="serve a live page of every run in a directory")
    dash.add_argument("dir", nargs="?", default="runs", help="a directory of runs (default runs/)")
    dash.add_argument("--host", default="127.0.0.1")
    dash.add_argument("--port", type=int, default=8050)
    dash.set_defaults(func=cmd_dashboard)

    rep = subparsers.add_parser("reproduce", help="re-run a run from its recorded config and data; compare losses")
    rep.add_argument("run", help="the run directory to reproduce")
    rep.add_argument("--out", required=True, help="the new run directory")
    rep.add_argument("--steps", type=int, default=None, help="reproduce only the first N steps (same schedule)")
    rep.add_argument("--force", action="store_true", help="write into --out even if it holds files that are not a run's")
    rep.set_defaults(func=cmd_reproduce)


def cmd_list(args) -> int:
    from scratchllm.errors import UserError
    from scratchllm.runs.summary import COLUMNS, find_runs, format_table, summarize

    runs = find_runs(args.dir)
    if not runs:
        raise UserError(f"no runs in '{args.dir}' (a run has config.toml and metrics.jsonl); "
                        "pass the directory your --out runs live in")
    print(format_table([summarize(r) for r in runs], COLUMNS))
    return 0


def cmd_show(args) -> int:
    from scratchllm.runs.summary import summarize

    s = summarize(args.run)
    info = s.pop("info")
    for key, value in s.items():
        print(f"{key:12s} {value}")
    git = info.get("git") or {}
    print(f"{'git':12s} {git.get('commit', '-')}{' (dirty)' if git.get('dirty') else ''}")
    for key in ("seed", "device", "started", "data_manifest_sha256", "packages", "reason"):
        if key in info:
            print(f"{key:12s} {info[key]}")
    return 0


def cmd_compare(args) -> int:
    from pathlib import Path

    from scratchllm.errors import UserError
    from scratchllm.runs.compare import config_diff, plot_curves, read_configs

    if len(args.runs) < 2:
        raise UserError("runs compare needs at least two run directories")
    dirs = [Path(r) for r in args.runs]
    diff = config_diff(read_configs(dirs))
    print("config keys that differ:" if diff else "the configs are identical")
    for key, values in diff.items():
        print(f"  {key}: " + ", ".join(f"{name}={value!r}" for name, value in values.items()))
    if args.out:
        print(f"curves: {plot_curves(dirs, args.out)}")
    return 0


def cmd_dashboard(args) -> int:
    from scratchllm.runs.dashboard import serve

    serve(args.dir, args.host, args.port)
    return 0


def cmd_reproduce(args) -> int:
    from scratchllm.errors import UserError
    from scratchllm.runs.reproduce import reproduce

    if args.steps is not None and args.steps <= 0:
        raise UserError(f"--steps must be positive, got {args.steps}")
    report = reproduce(args.run, args.out, args.steps, force=args.force)
    print(json.dumps(report, indent=1))
    kind = "bitwise" if report["tolerance"] == 0 else f"within {report['tolerance']:g} (relative)"
    verdict = "match" if report["match"] else "DO NOT match"
    print(f"{report['compared']} losses over {report['steps']} steps {verdict} {kind} on {report['device']}")
    return 0 if report["match"] else 1
