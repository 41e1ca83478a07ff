"""The runnable examples in the charlm docstrings stay true."""

import doctest
import importlib

import pytest

MODULES = ["vocab", "data", "bigram", "mlp", "plots", "runs", "transformer"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"scratchllm.charlm.{name}")
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
