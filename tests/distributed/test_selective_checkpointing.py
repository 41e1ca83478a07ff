"""Selective activation checkpointing: only every k-th block drops its activations; gradients unchanged."""

import torch

from scratchllm.model.config import ModelConfig
from scratchllm.model.transformer import Transformer


def grads_and_saved_bytes(every):
    """Gradients, and the bytes autograd keeps for backward (what checkpointing trades for recompute)."""
    torch.manual_seed(0)
    model = Transformer(ModelConfig(vocab_size=64, block_size=8, n_layer=4, n_head=2, n_embd=16))
    model.gradient_checkpointing = every
    saved = [0]

    def pack(t):
        saved[0] += t.numel() * t.element_size()
        return t

    x = torch.randint(0, 64, (2, 8), generator=torch.Generator().manual_seed(1))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = model(x).logsumexp(-1).mean()
    forward_saved = saved[0]
    loss.backward()
    return [p.grad.clone() for p in model.parameters()], forward_saved


def test_every_second_block_saves_between_none_and_all_and_gradients_equal_plain():
    plain, plain_bytes = grads_and_saved_bytes(False)
    selective, selective_bytes = grads_and_saved_bytes(2)
    full, full_bytes = grads_and_saved_bytes(True)
    assert full_bytes < selective_bytes < plain_bytes
    for a, b, c in zip(plain, selective, full):
        torch.testing.assert_close(a, b)
        torch.testing.assert_close(a, c)
