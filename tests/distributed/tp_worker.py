"""Run by torchrun in test_tensor_parallel.py: one model cut over all ranks (tensor parallel) against
an identical whole copy on each rank, on the same batch; rank 0 writes the largest differences.

    python -m torch.distributed.run --standalone --nproc-per-node 2 tp_worker.py OUT.json
"""

import copy
import json
import sys

import torch
import torch.distributed as dist
from torch.distributed.device_mesh import init_device_mesh

from scratchllm.model.config import ModelConfig
from scratchllm.model.transformer import Transformer
from scratchllm.train.distributed import full_tensor
from scratchllm.train.tensor_parallel import parallelize

CONFIGS = {
    "gpt2": ModelConfig(vocab_size=64, block_size=8, n_layer=2, n_head=4, n_embd=32),
    "llama": ModelConfig(vocab_size=64, block_size=8, n_layer=2, n_head=4, n_kv_head=2, n_embd=32, norm="rmsnorm",
                         position="rope", mlp="swiglu", mlp_hidden=64, bias=False, tie_embeddings=False, qk_norm=True),
}


def differences(cfg, mesh, sequence_parallel):
    """Largest |whole - cut| of the logits, and of the gradients relative to the largest gradient entry.

    (Relative to all gradients, not each: some are zero up to rounding, e.g. the key bias's, since
    softmax ignores a shift common to all keys.)"""
    torch.manual_seed(0)
    whole = Transformer(cfg)
    cut = parallelize(copy.deepcopy(whole), mesh, sequence_parallel)
    x = torch.randint(0, cfg.vocab_size, (2, cfg.block_size), generator=torch.Generator().manual_seed(1))
    logits_whole, logits_cut = whole(x), cut(x)
    logits_whole.square().mean().backward()
    logits_cut.square().mean().backward()
    grads = [(a.grad, full_tensor(b.grad)) for a, b in zip(whole.parameters(), cut.parameters())]
    sharded = sum(hasattr(p, "full_tensor") for p in cut.parameters())
    return {"logits": (logits_whole - logits_cut).abs().max().item(),
            "grads": (max((a - b).abs().max() for a, b in grads) / max(a.abs().max() for a, _ in grads)).item(),
            "sharded_params": sharded, "local_q_rows": cut.blocks[0].attn.q.weight.to_local().shape[0],
            "local_param_bytes": sum(4 * (p.to_local() if hasattr(p, "to_local") else p).numel()
                                     for p in cut.parameters())}


if __name__ == "__main__":
    dist.init_process_group("gloo")
    mesh = init_device_mesh("cpu", (dist.get_world_size(),), mesh_dim_names=("tp",))
    out = {f"{name}/sp={sp}": differences(cfg, mesh, sp) for name, cfg in CONFIGS.items() for sp in (False, True)}
    if dist.get_rank() == 0:
        with open(sys.argv[1], "w") as f:
            json.dump(out, f)
    dist.destroy_process_group()
