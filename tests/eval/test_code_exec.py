"""The sandbox contains what a model's code might do (hang, fork, hog memory, open sockets, flood
output) within its limits; pass@k equals its closed form."""

from __future__ import annotations

import itertools
import math
import random
import time

import pytest

from scratchllm.eval.code_exec import humaneval_program, network_isolation, run_program
from scratchllm.eval.metrics import pass_at_k


def test_ordinary_program_runs_and_failures_are_reported():
    assert run_program("print('hi')").stdout == "hi\n"
    bad = run_program("raise SystemExit(3)")
    assert bad.status == "error" and bad.returncode == 3


def test_infinite_loop_is_killed_at_the_wall_clock_limit():
    start = time.monotonic()
    r = run_program("while True:\n    pass", timeout=1.0)
    assert r.status == "timeout" and time.monotonic() - start < 5


def test_sleeping_program_and_its_children_are_killed():
    r = run_program("import time\ntime.sleep(60)", timeout=0.5)
    assert r.status == "timeout" and r.seconds < 5


def test_fork_bomb_fails_at_its_first_fork():
    r = run_program("import os\nwhile True:\n    os.fork()", timeout=5)
    assert r.status == "error" and "no new processes" in r.stderr


def test_subprocess_is_refused():
    r = run_program("import subprocess\nsubprocess.run(['echo', 'x'])", timeout=5)
    assert r.status == "error" and "no new processes" in r.stderr


def test_memory_hog_hits_the_memory_limit():
    r = run_program("x = bytearray(2 << 30)\nprint('allocated')", timeout=10, memory_mb=256)
    assert r.status == "error" and "MemoryError" in r.stderr and "allocated" not in r.stdout


def test_network_is_unreachable():
    r = run_program("import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=2)\nprint('connected')",
                    timeout=10)
    assert r.status == "error" and "connected" not in r.stdout
    assert network_isolation() in ("namespace", "guard")


def test_output_flood_is_capped():
    r = run_program("while True:\n    print('x' * 1000)", timeout=5, output_bytes=10_000)
    assert r.status == "error" and len(r.stdout) <= 10_000


def test_humaneval_program_passes_a_correct_completion_and_fails_a_wrong_one():
    prompt = "def add(a, b):\n    \"\"\"Sum.\"\"\"\n"
    test = "def check(candidate):\n    assert candidate(2, 3) == 5\n"
    assert run_program(humaneval_program(prompt, "    return a + b\n", test, "add")).passed
    assert not run_program(humaneval_program(prompt, "    return a - b\n", test, "add")).passed


@pytest.mark.parametrize("n,c,k", [(5, 0, 1), (5, 5, 3), (10, 3, 1), (10, 3, 5), (20, 7, 10), (4, 1, 4)])
def test_pass_at_k_equals_the_closed_form(n, c, k):
    closed = 1 - math.comb(n - c, k) / math.comb(n, k)
    assert pass_at_k(n, c, k) == pytest.approx(closed, abs=1e-12)


def test_pass_at_k_is_the_chance_some_k_subset_passes():
    # brute force: every k-subset of n samples, c of them correct
    rng = random.Random(0)
    for _ in range(5):
        n, k = rng.randint(2, 8), rng.randint(1, 3)
        c = rng.randint(0, n)
        k = min(k, n)
        flags = [1] * c + [0] * (n - c)
        subsets = list(itertools.combinations(flags, k))
        assert pass_at_k(n, c, k) == pytest.approx(sum(any(s) for s in subsets) / len(subsets))
