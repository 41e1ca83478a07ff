"""Fixtures of the interop tests: tiny random-init Hugging Face models saved once per session."""

from __future__ import annotations

import pytest
from interop_helpers import HF_CASES, make_hf_model


@pytest.fixture(scope="session")
def hf_dirs(tmp_path_factory):
    """case -> (directory saved with save_pretrained, the HF model). Built once per session."""
    out = {}
    for case in HF_CASES:
        model = make_hf_model(case)
        path = tmp_path_factory.mktemp(case)
        model.save_pretrained(path)
        out[case] = (path, model)
    return out


@pytest.fixture
def cli_main(monkeypatch):
    """`scratchllm.cli.main` with only our stage registered (independent of the others' modules)."""
    from scratchllm import cli

    monkeypatch.setattr(cli, "COMMAND_MODULES", ["scratchllm.interop.cli"])
    return cli.main
