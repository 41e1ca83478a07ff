"""Which device to run on: "auto" picks CUDA, then Apple's MPS, then the CPU.

Every stage that places a model (training, generation, evaluation, serving) resolves its
`device` setting here, so "auto" means the same thing everywhere.

>>> resolve_device("cpu")
device(type='cpu')
"""

from __future__ import annotations

import torch


def resolve_device(name: str) -> torch.device:
    """`torch.device(name)`, or the best available device for "auto"."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
