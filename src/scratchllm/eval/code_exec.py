"""Run untrusted Python (a model's HumanEval completion, a code reward) in a sandboxed subprocess.

Each program runs in a fresh interpreter (`python -I`: no user site, no PYTHON* variables) in its
own temporary directory and process group, with:

- a wall-clock limit: past it the whole process group is killed (SIGKILL);
- `resource` limits set in the child before it starts: CPU seconds (RLIMIT_CPU), address space
  (RLIMIT_AS, the memory cap), file size (RLIMIT_FSIZE, which also caps stdout/stderr because they
  go to files), and the number of processes (RLIMIT_NPROC; the kernel does not apply it to root);
- a guard run before the program that makes process creation (fork, exec, subprocess, os.system)
  raise, so a fork bomb fails at its first fork even as root;
- no network: in a new network namespace (`unshare -n`, only a loopback that is down) where the
  machine allows it — as root, or with unprivileged user namespaces (`unshare -rn`) — and
  otherwise through the guard, which makes every socket creation raise. `NETWORK_ISOLATION` says
  which one this machine got.

The guard is a speed bump against programs written by a small model, not a security boundary
against a determined attacker (ctypes can still call libc); run hostile code in a container.
A crash, hang or flood of the program never crashes or hangs the caller.

>>> r = run_program("print(sum(range(10)))")
>>> r.status, r.stdout
('ok', '45\\n')
>>> run_program("while True: pass", timeout=0.5).status
'timeout'
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

# Runs first in the child (python -I ignores sitecustomize, so it is prepended to the program).
_GUARD = '''
def _scratchllm_guard(block_network):
    import os, socket, subprocess
    def refuse(*a, **k):
        raise PermissionError("the sandbox allows no new processes")
    for name in ("fork", "forkpty", "system", "execv", "execve", "execvp", "execvpe", "execl", "execle",
                 "execlp", "execlpe", "spawnv", "spawnve", "spawnvp", "spawnvpe", "posix_spawn",
                 "posix_spawnp", "popen"):
        if hasattr(os, name):
            setattr(os, name, refuse)
    subprocess.Popen = refuse
    if block_network:
        def no_socket(*a, **k):
            raise PermissionError("the sandbox allows no network")
        socket.socket = no_socket
        socket.create_connection = no_socket
        socket.getaddrinfo = no_socket
_scratchllm_guard({block})
del _scratchllm_guard
'''


@dataclass
class ExecResult:
    """status: "ok", "error" (non-zero exit or signal), "timeout"; outputs truncated to the cap."""

    status: str
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float

    @property
    def passed(self) -> bool:
        return self.status == "ok"


@lru_cache(maxsize=1)
def _netns_prefix() -> tuple[str, ...]:
    """The `unshare` command that gives a child an empty network namespace here, or () if none works."""
    exe = shutil.which("unshare")
    if not exe:
        return ()
    for flags in (("-n",), ("-r", "-n")):
        try:
            if subprocess.run([exe, *flags, "true"], capture_output=True, timeout=10).returncode == 0:
                return (exe, *flags)
        except (OSError, subprocess.TimeoutExpired):
            continue
    return ()


def network_isolation() -> str:
    """"namespace" (unshare -n) or "guard" (sockets raise inside the program)."""
    return "namespace" if _netns_prefix() else "guard"


def _limits(cpu_s: int, memory_mb: int, output_bytes: int, max_procs: int):
    def apply() -> None:   # runs in the child between fork and exec
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
        resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
        resource.setrlimit(resource.RLIMIT_FSIZE, (output_bytes, output_bytes))
        resource.setrlimit(resource.RLIMIT_NPROC, (max_procs, max_procs))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return apply


def _read_capped(path: Path, cap: int) -> str:
    with open(path, "rb") as f:
        return f.read(cap).decode("utf-8", errors="replace")


def run_program(source: str, timeout: float = 10.0, memory_mb: int = 1024, output_bytes: int = 1 << 20,
                max_procs: int = 256, python: str = sys.executable) -> ExecResult:
    """Run `source` as a Python program under the limits above; never raises for what the program does."""
    prefix = _netns_prefix()
    guard = _GUARD.format(block=not prefix)
    with tempfile.TemporaryDirectory(prefix="scratchllm-exec-") as tmp:
        work = Path(tmp)
        (work / "program.py").write_text(guard + "\n" + source, encoding="utf-8")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tmp, "TMPDIR": tmp, "LANG": "C.UTF-8"}
        start = time.monotonic()
        with open(work / "stdout", "wb") as out, open(work / "stderr", "wb") as err:
            proc = subprocess.Popen([*prefix, python, "-I", "program.py"], cwd=tmp, env=env, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=err, start_new_session=True,
                                    preexec_fn=_limits(max(1, int(timeout) + 1), memory_mb, output_bytes, max_procs))
            try:
                code = proc.wait(timeout=timeout)
                status = "ok" if code == 0 else "error"
            except subprocess.TimeoutExpired:
                code, status = None, "timeout"
            finally:
                try:   # the whole group: anything the program started dies with it
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
        seconds = time.monotonic() - start
        return ExecResult(status, code, _read_capped(work / "stdout", output_bytes),
                          _read_capped(work / "stderr", output_bytes), seconds)


def humaneval_program(prompt: str, completion: str, test: str, entry_point: str) -> str:
    """The program HumanEval runs: the function, its tests, and the call of `check` on it."""
    return f"{prompt}{completion}\n\n{test}\n\ncheck({entry_point})\n"
