"""The stage runner: a complete stage is not rerun, a half-written one is redone, a changed setting reruns
what it affects (and nothing upstream of it)."""

import json
import os

import pytest

from scratchllm.pipelines.stages import Stage, StageRunner, StopAfter, completed_stages


class Counter:
    """Stages that write one file each and count their calls (and whether they were asked to resume)."""

    def __init__(self, out):
        self.out, self.calls = out, []

    def stage(self, name, settings=None, inputs=(), resumable=False, fail=False):
        path = self.out / f"{name}.txt"

        def run(resume):
            self.calls.append((name, resume))
            with open(path, "a") as f:
                f.write("part\n")
                if fail:
                    raise KeyboardInterrupt  # cut off mid-write, as Ctrl-C or a device limit would
                f.write("done\n")
            return {"lines": path.read_text().count("\n")}

        return Stage(name, settings or {}, run, outputs=(path,), inputs=inputs, resumable=resumable)


def _pipeline(c, a_settings=None, b_settings=None):
    runner = StageRunner(c.out, log=lambda line: c.log.append(line))
    runner.run(c.stage("a", a_settings or {"n": 1}))
    runner.run(c.stage("b", b_settings or {"m": 1}, inputs=("a",)))
    return runner


@pytest.fixture
def c(tmp_path):
    counter = Counter(tmp_path)
    counter.log = []
    return counter


def test_a_complete_stage_is_not_rerun(c):
    _pipeline(c)
    mtimes = {p.name: p.stat().st_mtime_ns for p in c.out.glob("*.txt")}
    runner = _pipeline(c)
    assert c.calls == [("a", False), ("b", False)], "the second run called a stage again"
    assert {p.name: p.stat().st_mtime_ns for p in c.out.glob("*.txt")} == mtimes
    assert all(r.skipped for r in runner.results.values())
    assert runner.results["b"].figures == {"lines": 2}   # the figures come back from the marker
    assert completed_stages(c.out) == ["a", "b"]


def test_a_half_written_stage_is_redone_from_scratch(c):
    runner = StageRunner(c.out, log=c.log.append)
    with pytest.raises(KeyboardInterrupt):
        runner.run(c.stage("a", fail=True))
    assert (c.out / "a.txt").read_text() == "part\n" and completed_stages(c.out) == []
    StageRunner(c.out, log=c.log.append).run(c.stage("a"))
    assert (c.out / "a.txt").read_text() == "part\ndone\n", "the cut-off output was not removed before the redo"
    assert c.calls == [("a", False), ("a", False)]
    assert "did not finish" in c.log[-1]


def test_a_resumable_stage_continues_a_cut_off_attempt(c):
    with pytest.raises(KeyboardInterrupt):
        StageRunner(c.out, log=c.log.append).run(c.stage("train", resumable=True, fail=True))
    figures = StageRunner(c.out, log=c.log.append).run(c.stage("train", resumable=True))
    assert c.calls == [("train", False), ("train", True)]
    assert figures == {"lines": 3}, "a resumed stage keeps what its first attempt wrote"


def test_a_resumable_stage_with_changed_settings_starts_over(c):
    with pytest.raises(KeyboardInterrupt):
        StageRunner(c.out, log=c.log.append).run(c.stage("train", {"lr": 1}, resumable=True, fail=True))
    StageRunner(c.out, log=c.log.append).run(c.stage("train", {"lr": 2}, resumable=True))
    assert c.calls == [("train", False), ("train", False)]
    assert "settings changed (lr)" in c.log[-1]


def test_a_changed_setting_reruns_its_stage_and_downstream_only(c):
    _pipeline(c)
    _pipeline(c, b_settings={"m": 2})
    assert c.calls[2:] == [("b", False)], "changing b's settings reran a"
    _pipeline(c, a_settings={"n": 2}, b_settings={"m": 2})
    assert c.calls[3:] == [("a", False), ("b", False)], "changing a did not rerun b, which reads a"
    assert any("settings changed (n)" in line for line in c.log)
    assert any("settings changed (an earlier stage)" in line for line in c.log)


def test_a_missing_output_or_a_corrupt_marker_reruns(c):
    _pipeline(c)
    os.remove(c.out / "a.txt")
    (c.out / "stages" / "b.json").write_text("{not json")
    _pipeline(c)
    assert c.calls[2:] == [("a", False), ("b", False)]
    marker = json.loads((c.out / "stages" / "b.json").read_text())
    assert marker["figures"] == {"lines": 2} and marker["settings"] == {"m": 1}


def test_until_stops_after_that_stage_and_the_next_run_carries_on(c):
    runner = StageRunner(c.out, log=c.log.append, until="a")
    with pytest.raises(StopAfter):
        runner.run(c.stage("a", {"n": 1}))
    _pipeline(c)
    assert c.calls == [("a", False), ("b", False)]
