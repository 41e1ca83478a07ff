"""Random parameters for Hugging Face oracle models, shared by the model and interop tests.

HF initialises biases to zero and norm gains to one, so a test that copies such a model into ours
cannot see a swapped norm or a dropped bias: every mapping error multiplies by one or adds zero.
After `randomize`, each parameter is distinct, and any mis-mapping shows in the logits.
"""

from __future__ import annotations

import torch


def randomize(model: torch.nn.Module, seed: int = 0) -> None:
    """Every parameter random (HF zero-initialises biases and sets norms to one, which hides bugs)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            is_norm = p.ndim == 1 and ("norm" in name or ".ln_" in name)
            if is_norm and name.endswith("weight"):
                p.copy_(1.0 + 0.1 * noise)
            else:
                p.copy_(0.1 * noise)
