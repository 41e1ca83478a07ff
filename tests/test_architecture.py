"""The layers of docs/architecture.md hold: imports point down, never in a circle, and library
modules import at the top.

Every module of src/scratchllm is parsed with `ast` (nothing is imported), so the test sees
imports hidden inside functions too. The layer table below is THE table: docs/architecture.md
draws it, and a change to either must change both.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "scratchllm"

# Lowest first; a module may import its own layer or any layer below it, never one above.
LAYERS: list[tuple[str, set[str]]] = [
    ("base", {"config", "errors", "utils", "version"}),
    ("model, tokenizer", {"model", "tokenizer"}),
    ("data", {"data"}),
    ("train", {"train"}),
    ("inference", {"inference"}),
    ("stages on a trained model", {"align", "eval", "viz", "scaling", "charlm", "interop", "runs"}),
    ("serve", {"serve"}),
    ("pipelines", {"pipelines"}),
    ("command line", set()),  # cli.py, */cli.py, __main__.py and the package facade (scratchllm.load)
]
TOP = len(LAYERS) - 1
# A function-level import in a library module must say why on its line or the comment lines above it.
ALLOWED_REASONS = ("optional dependency", "cli speed")


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def is_command_line(mod: str) -> bool:
    last = mod.rsplit(".", 1)[-1]
    return mod == "scratchllm" or last in ("cli", "__main__") or last.endswith("_cli")


def layer(mod: str) -> int:
    if is_command_line(mod):
        return TOP
    top = mod.split(".")[1]
    for i, (_, packages) in enumerate(LAYERS):
        if top in packages:
            return i
    raise AssertionError(f"{mod}: package '{top}' has no layer; add it to LAYERS and docs/architecture.md")


def _target(mod: str, node: ast.ImportFrom | ast.Import, alias: ast.alias) -> str | None:
    """The scratchllm module an import names (a submodule when `from pkg import sub` names one)."""
    if isinstance(node, ast.Import):
        name = alias.name
    else:
        base = node.module or ""
        if node.level:  # relative import: resolve against this module's package
            pkg = mod if MODULES[mod].name == "__init__.py" else mod.rsplit(".", 1)[0]
            pkg = ".".join(pkg.split(".")[: len(pkg.split(".")) - node.level + 1])
            base = f"{pkg}.{base}" if base else pkg
        name = f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
    if not (name == "scratchllm" or name.startswith("scratchllm.")):
        return None
    while name not in MODULES:  # `import scratchllm.a.b.attr`-style: the deepest module named
        name = name.rsplit(".", 1)[0]
    return name


def parse_imports(text: str, mod: str) -> list[tuple[int, str | None, bool]]:
    """(line, imported scratchllm module or None for another library, inside a function?) for
    every import statement of `text`, the source of module `mod`."""
    tree = ast.parse(text)
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                for alias in child.names:
                    found.append((child.lineno, _target(mod, child, alias), in_function))
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(tree, False)
    return found


@functools.cache
def imports(mod: str) -> list[tuple[int, str | None, bool]]:
    return parse_imports(MODULES[mod].read_text(encoding="utf-8"), mod)


def upward(mod: str, found: list[tuple[int, str | None, bool]]) -> list[str]:
    return [f"{mod}:{line}: {mod} ({LAYERS[layer(mod)][0]}) imports {target} ({LAYERS[layer(target)][0]})"
            for line, target, _ in found if target and layer(target) > layer(mod)]


def hidden(mod: str, text: str) -> list[str]:
    """Function-level imports of a library module `mod` (source `text`) with no reason comment."""
    lines = text.splitlines()
    return [f"{mod}:{line}: {lines[line - 1].strip()}" for line, _, in_function in parse_imports(text, mod)
            if in_function and not _has_reason(lines, line)]


def _has_reason(lines: list[str], lineno: int) -> bool:
    """A reason comment on the import's line, or above it within its run of imports (comments,
    `try:`, blank lines and other imports: one comment may speak for a group of imports)."""
    i = lineno - 1
    texts = [lines[i]]
    while i > 0 and (not lines[i - 1].strip() or lines[i - 1].strip().startswith(("#", "try:", "import ", "from "))):
        i -= 1
        texts.append(lines[i])
    return any(r in t.lower() for t in texts if "#" in t for r in ALLOWED_REASONS)


def test_every_package_has_a_layer():
    for mod in MODULES:
        layer(mod)


def test_imports_point_down():
    found = [line for mod in MODULES for line in upward(mod, imports(mod))]
    assert not found, "imports that point up the layers:\n" + "\n".join(found)


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := walk(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := walk(node)):
            return found
    return None


def test_no_import_cycles():
    # every import counts, also those inside functions: a cycle hidden in a function is still one
    graph = {mod: {t for _, t, _ in imports(mod) if t and t != mod} for mod in MODULES}
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_library_modules_import_at_the_top():
    # cli files import their stage inside the handler to keep `--help` instant; the package
    # facade (scratchllm/__init__.py) is held to the rule like a library module
    found = [line for mod, path in MODULES.items() if not is_command_line(mod) or mod == "scratchllm"
             for line in hidden(mod, path.read_text(encoding="utf-8"))]
    assert not found, ("imports inside functions of library modules without a '# optional dependency: ...' "
                       "or '# CLI speed: ...' comment:\n" + "\n".join(found))


# ---- the checker itself: each rule catches what it is meant to catch ----
def test_cycle_finder_finds_a_cycle_and_accepts_a_tree():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


@pytest.mark.parametrize("mod, want", [
    ("scratchllm.errors", 0), ("scratchllm.utils.atomic", 0), ("scratchllm.tokenizer.bpe", 1),
    ("scratchllm.train.loop", 3), ("scratchllm.charlm.transformer", 5), ("scratchllm.tokenizer.cli", TOP),
    ("scratchllm.cli", TOP), ("scratchllm", TOP)])
def test_layer_of_known_modules(mod, want):
    assert layer(mod) == want


def test_reason_comment_is_found_above_a_try():
    lines = ["def f():", "    # optional dependency: tiktoken is the `fast` extra", "    try:",
             "        import tiktoken", "    except ImportError:", "        pass"]
    assert _has_reason(lines, 4)
    assert not _has_reason(["def f():", "    import json"], 2)


def test_checker_flags_a_hidden_upward_import():
    src = "def sample(run):\n    from scratchllm.inference.engine import generate\n    return generate\n"
    found = parse_imports(src, "scratchllm.data.synthetic")
    assert found == [(2, "scratchllm.inference.engine", True)]
    assert upward("scratchllm.data.synthetic", found) and not upward("scratchllm.pipelines.speedrun", found)
    assert hidden("scratchllm.data.synthetic", src)
    marked = src.replace("    from", "    # CLI speed: only sampling needs the engine\n    from")
    assert not hidden("scratchllm.data.synthetic", marked)
