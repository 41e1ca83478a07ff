"""Mutation testing: how many deliberate bugs (mutants) in a module its fast tests catch.

mutmut (configured in pyproject.toml's [tool.mutmut]) rewrites one expression of the code at a
time, `a + b` -> `a - b`, `10000.0` -> `10001.0`, `>=` -> `>`, and reruns the tests that cover
the changed function; a mutant the tests still pass "survived": either a test is missing or the
change is equivalent (it cannot alter behaviour). This script runs mutmut on each module given,
alone, with only the test files that exercise it (so a module takes minutes, not hours), and
prints killed/survived per module. Each run happens in a scratch copy of src/, tests/ and
pyproject.toml, so the working tree is never touched.

    python bench/mutation.py model/position.py train/optim.py        # default test files per module
    python bench/mutation.py tokenizer/bpe.py --tests tests/tokenizer/test_train.py --show
    python bench/mutation.py model/layers.py --max-children 16 --json out.json
    python bench/mutation.py align/reward.py --only '*bradley_terry*' '*reward_loss*'   # some functions only

Needs `pip install mutmut==3.8.1` (the `test` extra). mutmut mutates code inside functions and
methods only (module-level constants such as tables are not mutated). Tests that need
../shared/data find it as usual (or via SCRATCHLLM_DATA). A mutant that makes the tests hang
counts as killed (a timeout is a failure a user would see).

>>> tests_for("train/schedule.py")
['tests/train/test_train_schedule.py']
>>> summarize({"m.x_f__mutmut_1": 1, "m.x_f__mutmut_2": 0, "m.x_f__mutmut_3": 24, "m.x_g__mutmut_1": None})
{'killed': 2, 'survived': 1, 'other': 0, 'total': 3, 'kill_rate': 0.667, 'survivors': ['m.x_f__mutmut_2']}
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import tomli_w

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path("src/scratchllm")

# The fast test files that exercise each module (longest matching prefix wins). Kept to the files
# that really call the module: every extra file multiplies the run time by the number of mutants.
TESTS = {
    "model/": ["tests/model"],
    "model/layers.py": ["tests/model/test_layers.py", "tests/model/test_transformer.py"],
    "model/config.py": ["tests/model/test_config.py", "tests/model/test_transformer.py"],
    "model/attention.py": ["tests/model/test_attention.py", "tests/model/test_forward_seams.py",
                           "tests/model/test_transformer.py"],
    "model/kv_cache.py": ["tests/model/test_kv_cache.py", "tests/model/test_forward_seams.py",
                          "tests/model/test_transformer.py"],
    "model/flops.py": ["tests/model/test_flops.py", "tests/model/test_transformer.py"],
    "model/position.py": ["tests/model/test_position.py"],
    "train/loop.py": ["tests/train/test_train_loop.py", "tests/train/test_train_optim.py", "tests/train/test_loop_seams.py",
                      "tests/train/test_train_resume.py", "tests/runs/test_health.py",
                      "tests/runs/test_loop_bookkeeping.py", "tests/runs/test_loop_run_ends.py",
                      "tests/train/test_loop_layouts.py"],
    "train/step.py": ["tests/train/test_step.py", "tests/train/test_loop_seams.py"],
    "train/optim.py": ["tests/train/test_train_optim.py", "tests/train/test_muon.py", "tests/train/test_adamw8bit.py"],
    "train/muon.py": ["tests/train/test_muon.py"],
    "train/adamw8bit.py": ["tests/train/test_adamw8bit.py"],
    "train/schedule.py": ["tests/train/test_train_schedule.py"],
    "train/tracking.py": ["tests/train/test_train_tracking.py", "tests/train/test_train_loop.py"],
    "train/checkpoint.py": ["tests/train/test_train_checkpoint.py"],
    "tokenizer/": ["tests/tokenizer"],
    "tokenizer/bpe.py": ["tests/tokenizer/test_parity.py", "tests/tokenizer/test_train.py",
                         "tests/tokenizer/test_special_cli.py", "tests/tokenizer/test_formats.py",
                         "tests/tokenizer/test_tokenizer_api.py"],
    "inference/": ["tests/inference"],
    "eval/metrics.py": ["tests/eval/test_metrics_scoring.py"],
    "eval/scoring.py": ["tests/eval/test_metrics_scoring.py"],
    "align/dpo.py": ["tests/align/test_dpo_loss.py", "tests/align/test_preference_data.py"],
    "align/reward.py": ["tests/align/test_reward_loss.py", "tests/align/test_reward.py"],
    "align/rl_math.py": ["tests/align/test_rl_math.py"],
    "model/nf4.py": ["tests/finetune/test_nf4.py"],
    "model/lora.py": ["tests/finetune/test_lora.py", "tests/finetune/test_peft_oracle.py"],
    "model/heads.py": ["tests/model/test_heads.py", "tests/align/test_reward.py", "tests/align/test_reward_loss.py", "tests/align/test_ppo.py"],
    "model/quant.py": ["tests/inference/test_quant_formats.py"],
    "inference/quantize.py": ["tests/inference/test_quant_formats.py"],
    "model/transformer.py": ["tests/model/test_model_options.py", "tests/model/test_transformer.py",
                             "tests/model/test_forward_seams.py", "tests/model/test_attention.py"],
}
# Tests that cannot run under mutmut's trampolines (torch.compile(fullgraph=True) refuses to trace
# the environment lookup each mutated function does first); they are checked by the normal suite.
# Nor tests of a warning's stacklevel: the trampoline is one more frame between caller and callee.
# Nor the progress-bar test: with tqdm's bar mutated, its forked pytest hangs until mutmut's timeout.
DESELECT = ["not compiles_without_graph_breaks", "not warning_points_at_the_callers_line",
            "not progress_bar_counts_steps"]

KILLED = {1, 3, 24, -24, 152, 255, 36}   # test failure, pytest internal error, timeouts (mutmut's codes)
SURVIVED = {0}


def tests_for(module: str) -> list[str]:
    keys = [k for k in TESTS if module.startswith(k)]
    if not keys:
        raise SystemExit(f"no default tests for '{module}'; pass --tests FILE...")
    return TESTS[max(keys, key=len)]


def summarize(exit_codes: dict[str, int | None]) -> dict:
    """Counts from mutmut's per-mutant pytest exit codes (the .meta file of a mutated source file).

    None marks a mutant that was not run (outside `--only`): it is left out of the counts.
    """
    exit_codes = {name: code for name, code in exit_codes.items() if code is not None}
    killed = sum(code in KILLED for code in exit_codes.values())
    survivors = sorted(name for name, code in exit_codes.items() if code in SURVIVED)
    total = len(exit_codes)
    return {"killed": killed, "survived": len(survivors), "other": total - killed - len(survivors), "total": total,
            "kill_rate": round(killed / total, 3) if total else None, "survivors": survivors}


def _workspace(module: str, tests: list[str], where: Path) -> Path:
    """A scratch copy of the project whose [tool.mutmut] mutates only `module` with only `tests`."""
    work = Path(tempfile.mkdtemp(prefix="mutation-", dir=where))
    shutil.copytree(ROOT / "src", work / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copytree(ROOT / "tests", work / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    settings = project["tool"]["mutmut"]
    settings["only_mutate"] = [str(PACKAGE / module)]
    settings["pytest_add_cli_args_test_selection"] = [*tests, "-k", " and ".join(DESELECT)]
    (work / "pyproject.toml").write_text(tomli_w.dumps(project))
    return work


def run_module(module: str, tests: list[str], max_children: int, where: Path, show: bool,
               only: list[str] = ()) -> dict:
    work = _workspace(module, tests, where)
    # subtle: no PYTHONPATH, so that mutmut's own path setup (mutants/src first) decides what is
    # imported; and one thread per mutant's pytest, or parallel children fight over the cores.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(OMP_NUM_THREADS="1",
               SCRATCHLLM_DATA=os.environ.get("SCRATCHLLM_DATA", str(ROOT.parent / "shared" / "data")))
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", str(max_children), *only],
                          cwd=work, env=env, capture_output=True, text=True)
    meta = work / "mutants" / PACKAGE / f"{module}.meta"
    if os.environ.get("MUTATION_KEEP"):
        (work / "mutmut.log").write_text(proc.stdout + proc.stderr)
    if not meta.is_file():
        tail = (proc.stdout + proc.stderr)[-3000:]
        raise SystemExit(f"mutmut produced no results for {module} (exit {proc.returncode}); its output ends:\n{tail}")
    result = summarize(json.loads(meta.read_text())["exit_code_by_key"])
    result.update(module=module, tests=tests, seconds=round(time.perf_counter() - start, 1))
    if show:
        result["diffs"] = {name: subprocess.run([sys.executable, "-m", "mutmut", "show", name], cwd=work, env=env,
                                                capture_output=True, text=True).stdout for name in result["survivors"]}
    if not os.environ.get("MUTATION_KEEP"):
        shutil.rmtree(work, ignore_errors=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="+", help="paths under src/scratchllm, e.g. model/position.py")
    parser.add_argument("--tests", nargs="+", help="test files to use instead of the defaults")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 1, help="mutants tested in parallel")
    parser.add_argument("--show", action="store_true", help="print each survivor's diff")
    parser.add_argument("--only", nargs="+", default=[],
                        help="mutant name globs to run, e.g. '*bradley_terry*' (the others are not counted)")
    parser.add_argument("--json", help="write all results to this file")
    parser.add_argument("--workdir", default=tempfile.gettempdir(), help="where the scratch copies go")
    args = parser.parse_args(argv)
    results = []
    print(f"{'module':28s} {'killed':>6s} {'survived':>8s} {'other':>5s} {'total':>5s} {'kill %':>6s} {'s':>6s}")
    for module in args.modules:
        r = run_module(module, args.tests or tests_for(module), args.max_children, Path(args.workdir), args.show,
                       args.only)
        results.append(r)
        print(f"{module:28s} {r['killed']:6d} {r['survived']:8d} {r['other']:5d} {r['total']:5d} "
              f"{100 * (r['kill_rate'] or 0):6.1f} {r['seconds']:6.0f}", flush=True)
        for name in r["survivors"]:
            print(f"    survived: {name}")
            if args.show:
                print("      " + r["diffs"][name].strip().replace("\n", "\n      "))
        if args.json:   # after each module, so a run cut short keeps what it finished
            Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
