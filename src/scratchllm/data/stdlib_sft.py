"""An offline instruction set from the built-in corpus: "write this function" -> its source.

The CPU speedrun fine-tunes on conversations, but must run offline with nothing downloaded, so
it builds them from the same standard library its base model learned from (`data/builtin.py`):
every short top-level function with a docstring becomes one Alpaca-format record,

    instruction: "Write a Python function `name(args)` that does this: <docstring's first paragraph>"
    output:      the function's source as written in the standard library, less its docstring

The model has seen these functions while pretraining (as code, in file order); what SFT teaches
is the *format*: answer a request in the assistant turn and stop. So the held-out loss measures
instruction following on familiar text, not new knowledge — the report says so. Functions are
parsed with `ast` (never imported or run); files that do not parse are skipped.

>>> import pathlib, tempfile
>>> src = pathlib.Path(tempfile.mkdtemp()) / "m.py"
>>> _ = src.write_text('def add(a, b):\\n    \"\"\"Return the sum of a and b.\"\"\"\\n    return a + b\\n')
>>> [(r["instruction"], r["output"]) for r in function_records(src.read_text())]
[('Write a Python function `add(a, b)` that does this: Return the sum of a and b.', 'def add(a, b):\\n    return a + b')]
"""

from __future__ import annotations

import ast
import functools
from typing import Iterator

from scratchllm.data.builtin import stdlib_files

MAX_SOURCE_CHARS = 300     # short functions only: tiny-cpu's context is 128 tokens for prompt and reply
MIN_DOC_WORDS = 4          # "Internal helper." teaches nothing


def _summary(doc: str) -> str:
    """The docstring's first paragraph on one line."""
    return " ".join(doc.strip().split("\n\n")[0].split())


def function_records(source: str) -> Iterator[dict]:
    """One Alpaca record per short, documented, public top-level function of one module's source."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return  # a few stdlib files are Python 2 examples or deliberately broken
    lines = source.splitlines()  # once: ast.get_source_segment would split the whole file per function
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef) or node.name.startswith("_") or node.decorator_list:
            continue
        doc = ast.get_docstring(node)
        if not doc or len(node.body) < 2 or len(_summary(doc).split()) < MIN_DOC_WORDS:
            continue
        # the reply is the code without its docstring: the instruction already says what it does
        doc_node = node.body[0]
        code = "\n".join(lines[node.lineno - 1:doc_node.lineno - 1] + lines[doc_node.end_lineno:node.end_lineno])
        if len(code) > MAX_SOURCE_CHARS:
            continue
        yield {"instruction": f"Write a Python function `{node.name}({ast.unparse(node.args)})` that does this: "
                              f"{_summary(doc)}",
               "input": "", "output": code}


@functools.cache
def _all_records() -> tuple[dict, ...]:
    # parsing 11 MB of source takes seconds: once per process (one install always gives the same set)
    records = []
    for path in stdlib_files():
        try:
            records.extend(function_records(path.read_text(encoding="utf-8")))
        except (UnicodeDecodeError, OSError):
            continue
    return tuple(records)


def stdlib_function_records(max_records: int = 0) -> list[dict]:
    """The records of every standard-library file (in the corpus's fixed order), at most `max_records` (0: all)."""
    records = [dict(r) for r in _all_records()]
    return records[:max_records] if max_records else records
