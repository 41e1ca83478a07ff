"""Resumable pipeline stages: a stage whose output is complete is skipped, a half-written one redone.

A stage is a name, the settings its output depends on, the paths it writes and a function that
writes them. `StageRunner.run` keeps two small files per stage in `OUT/stages/`:

- `NAME.started.json`, written before the work: the stage's fingerprint. Found on the next run
  without a finished marker, it means the attempt was cut off (Ctrl-C, a kill, a full disk, the
  10-minute limit of a device call). A `resumable` stage (training: it has checkpoints) whose
  fingerprint still matches continues where it stopped; any other is wiped and redone.
- `NAME.json`, written atomically only *after* the output is complete: fingerprint, settings,
  the figures the stage returned and its wall time. Its presence with a matching fingerprint is
  the one test of "done", so a half-written output is never mistaken for a finished one.

The fingerprint hashes the stage's settings and the fingerprints of the stages it reads from, so
a changed setting reruns that stage and everything downstream of it, and nothing else; the run
says which settings changed. The runner knows nothing of what the stages do.

>>> import tempfile, pathlib
>>> out = pathlib.Path(tempfile.mkdtemp())
>>> calls = []
>>> def write(resume):
...     calls.append(resume); (out / "a.txt").write_text("done"); return {"lines": 1}
>>> runner = StageRunner(out, log=lambda line: None)
>>> runner.run(Stage("a", {"n": 1}, write, outputs=(out / "a.txt",)))
{'lines': 1}
>>> _ = StageRunner(out, log=lambda line: None).run(Stage("a", {"n": 1}, write, outputs=(out / "a.txt",)))
>>> calls                    # the second runner found stage a complete and did not call it
[False]
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from scratchllm.utils.atomic import atomic_write_text

STAGES_DIR = "stages"


@dataclass
class Stage:
    """One step of a pipeline. `run(resume) -> figures` (JSON-able) writes `outputs`."""
    name: str
    settings: dict[str, Any]                   # everything the output depends on, besides `inputs`
    run: Callable[[bool], dict[str, Any]]
    outputs: tuple[Path, ...] = ()             # removed before a fresh (not resumed) attempt
    inputs: tuple[str, ...] = ()               # names of earlier stages whose output this one reads
    resumable: bool = False                    # run(resume=True) continues a cut-off attempt


@dataclass
class StageResult:
    figures: dict[str, Any]
    seconds: float
    skipped: bool


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # absent, or cut off mid-write by something other than us: treat as not there


def changed_keys(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The settings that differ between two stage configs (sorted names)."""
    return sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def completed_stages(out: Path) -> list[str]:
    """Names of the stages with a finished marker in `out` (whatever their fingerprints)."""
    return sorted(p.stem for p in (Path(out) / STAGES_DIR).glob("*.json") if not p.name.endswith(".started.json"))


class StopAfter(Exception):
    """Raised by the runner once the stage named by `until` is complete (a pipeline run in parts)."""


@dataclass
class StageRunner:
    """Runs stages in order into `out`; `results[name]` holds each one's figures, seconds and skip flag.

    `until`: stop (raise StopAfter) once that stage is complete, e.g. to split a pipeline across
    device calls of limited length; the next run skips what is done and carries on.
    """
    out: Path
    log: Callable[[str], None] = print
    until: str | None = None
    results: dict[str, StageResult] = field(default_factory=dict)
    fingerprints: dict[str, str] = field(default_factory=dict)

    def run(self, stage: Stage) -> dict[str, Any]:
        """Skip `stage` if its output is complete and current, else (re)run or resume it; returns its figures."""
        figures = self._run(stage)
        if stage.name == self.until:
            raise StopAfter(stage.name)
        return figures

    def _fingerprint(self, stage: Stage) -> str:
        missing = [n for n in stage.inputs if n not in self.fingerprints]
        if missing:
            raise ValueError(f"stage '{stage.name}' reads from {missing}, which have not run")  # a pipeline bug
        return _digest({"settings": stage.settings, "inputs": {n: self.fingerprints[n] for n in stage.inputs}})

    def _run(self, stage: Stage) -> dict[str, Any]:
        folder = Path(self.out) / STAGES_DIR
        done_path, started_path = folder / f"{stage.name}.json", folder / f"{stage.name}.started.json"
        fp = self._fingerprint(stage)
        self.fingerprints[stage.name] = fp
        done = _read(done_path)
        if done and done.get("fingerprint") == fp and all(p.exists() for p in stage.outputs):
            self.log(f"stage {stage.name}: complete, skipped ({done['seconds']:.1f} s when it ran)")
            self.results[stage.name] = StageResult(done["figures"], done["seconds"], True)
            return done["figures"]
        started = _read(started_path)
        resume = stage.resumable and not done and started is not None and started.get("fingerprint") == fp
        self.log(f"stage {stage.name}: " + self._why(done, started, fp, stage.settings, resume))
        if not resume:
            for path in stage.outputs:
                remove(path)
        remove(done_path)
        atomic_write_text(started_path, json.dumps({"fingerprint": fp, "settings": stage.settings}, default=str))
        t0 = time.perf_counter()
        figures = stage.run(resume)
        seconds = time.perf_counter() - t0  # of this attempt: a resumed stage's earlier attempt is not counted
        atomic_write_text(done_path, json.dumps({"fingerprint": fp, "settings": stage.settings, "figures": figures,
                                                 "seconds": seconds}, indent=1, default=str))
        remove(started_path)
        self.results[stage.name] = StageResult(figures, seconds, False)
        return figures

    @staticmethod
    def _why(done: dict | None, started: dict | None, fp: str, settings: dict, resume: bool) -> str:
        if resume:
            return "resuming the attempt that was cut off"
        old = done or started
        if old and old.get("fingerprint") != fp:
            keys = changed_keys(old.get("settings", {}), settings)
            return f"settings changed ({', '.join(keys) if keys else 'an earlier stage'}), running again"
        if started:
            return "the last attempt did not finish, running it again from the start"
        return "running"
