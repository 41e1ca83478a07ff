"""Every docstring example (`>>>`) in src/scratchllm runs as a test, so a stale example fails CI.

One test per module, found by walking the source tree (a new module is picked up without
listing it). A test rather than pytest's `--doctest-modules`: that option would also import
each tests/ directory's `conftest.py` under the same name, which the rootless tests/ layout
does not allow. `__main__.py` is left out: importing it runs the command line. A second check
holds every library module to DESIGN.md's rule that its docstring opens with a runnable example.
"""

from __future__ import annotations

import ast
import doctest
import importlib
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
MODULES = sorted(
    ".".join(p.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
    for p in (SRC / "scratchllm").rglob("*.py") if p.name != "__main__.py")


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    report: list[str] = []
    for test in doctest.DocTestFinder(exclude_empty=True).find(module, name):
        runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)


def test_a_stale_example_fails():
    stale = doctest.DocTestParser().get_doctest(">>> 1 + 1\n3\n", {}, "stale", None, 0)
    runner = doctest.DocTestRunner()
    runner.run(stale, out=lambda _: None)
    assert runner.failures == 1



def _path(name: str) -> Path:
    path = SRC.joinpath(*name.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


# library modules: not the command line (cli.py and *_cli.py files), not the empty package markers
LIBRARY = [m for m in MODULES if not m.rsplit(".", 1)[-1].endswith("cli") and _path(m).read_text(encoding="utf-8").strip()]


@pytest.mark.parametrize("name", LIBRARY)
def test_library_module_opens_with_an_example(name):
    doc = ast.get_docstring(ast.parse(_path(name).read_text(encoding="utf-8"))) or ""
    assert ">>>" in doc, f"{_path(name).relative_to(SRC)}: the module docstring needs a runnable >>> example"
