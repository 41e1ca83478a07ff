"""The runnable examples in the web-data modules' docstrings stay true."""

import doctest
import importlib

import pytest

MODULES = ["web", "pii", "webfilters", "webrules", "quality", "dedup"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"scratchllm.data.{name}")
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
