"""Compute counting: the datasheet peaks MFU divides by, and the MFU formula itself."""

import pytest

from scratchllm.model.flops import mfu, peak_flops


@pytest.mark.parametrize("name, expected", [
    ("NVIDIA H100 80GB HBM3", 989e12),     # SXM
    ("NVIDIA H100 PCIe", 756e12),          # the PCIe card's dense bf16 peak is lower
    ("NVIDIA H200", 989e12),
    ("NVIDIA A100-SXM4-80GB", 312e12),
    ("NVIDIA GeForce RTX 3060", None),     # unknown: MFU is not reported rather than guessed
])
def test_peak_flops_by_device_name(name, expected):
    assert peak_flops(name) == expected


def test_mfu_is_achieved_over_peak():
    # 6e8 FLOPs/token at 1e6 tokens/s is 6e14 FLOP/s; a 1e15 FLOP/s device is then 60% used.
    assert mfu(flops_per_token=6e8, tokens_per_s=1e6, peak_flops=1e15) == pytest.approx(0.6)
