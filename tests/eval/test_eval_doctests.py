"""The runnable examples in the eval docstrings stay true."""

import doctest
import importlib

import pytest

MODULES = ["", ".endpoint", ".judge", ".redteam", ".contamination", ".scoring", ".metrics", ".answers", ".code_exec", ".harness", ".report", ".lm",
           ".tasks", ".tasks.base", ".tasks.multiple_choice", ".tasks.text", ".tasks.generative"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"scratchllm.eval{name}")
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
