"""Muon (Jordan et al. 2024, as in modded-nanogpt): orthogonalised momentum for hidden matrices, AdamW for the rest.

A hidden weight matrix W (a block's q, k, v, o, MLP up/gate/down) gets the update

    buf ← μ·buf + g;   m = g + μ·buf (Nesterov);   W ← W − lr · √max(1, rows/cols) · NS₅(m)

where NS₅ runs five steps of a quintic Newton–Schulz iteration that pushes every singular value
of m/‖m‖ towards 1 without an SVD: the update keeps m's singular *directions* but gives each the
same size, so rare directions learn as fast as common ones. The coefficients (3.4445, −4.7750,
2.0315) trade exactness for speed: after five steps the singular values lie in about
[0.7, 1.2], not at 1, which is good enough for training and cheap (matmuls only, in bf16 on a
GPU). An orthogonal rows×cols matrix has entries of RMS 1/√max(rows, cols); the √max(1, rows/cols)
factor lifts a tall one (an MLP's up-projection, out > in) to 1/√cols, what a wide or square one has.

Everything else — embeddings, the output head (tied or not), value-embedding tables, norms' gains,
biases, scalars — is not a hidden linear map, and goes to AdamW with the run's usual decay groups,
computed by torch's own AdamW function (one AdamW in the project: torch's).

The optimizer knows nothing of the model: `make_optimizer` (train/optim.py) picks the groups.
Under DDP every rank holds the same all-reduced gradient, so each rank runs the same Newton–Schulz
on every matrix and the replicas stay identical (redundant work, a few % of a step for GPT-2
small; modded-nanogpt splits the matrices across ranks and all-gathers instead). FSDP shards a
matrix across ranks, and Newton–Schulz needs the whole matrix: that combination is refused.

>>> import torch
>>> g = torch.randn(64, 32)
>>> s = torch.linalg.svdvals(newton_schulz(g))
>>> bool(s.min() > 0.6 and s.max() < 1.25)
True
"""

from __future__ import annotations

import torch
from torch.optim.adamw import adamw

NS_COEFFS = (3.4445, -4.7750, 2.0315)  # modded-nanogpt's quintic: steep at 0, settles in ~[0.7, 1.2]


def newton_schulz(g: torch.Tensor, steps: int = 5, dtype: torch.dtype | None = None) -> torch.Tensor:
    """≈ U Vᵀ of g = U S Vᵀ (each singular value sent to ~1) by the quintic Newton–Schulz iteration.

    `dtype`: the arithmetic's; default bf16 on a GPU (the iteration tolerates it and runs on tensor
    cores), fp32 elsewhere. The result has g's dtype and shape.
    """
    a, b, c = NS_COEFFS
    x = g.to(dtype or (torch.bfloat16 if g.is_cuda else torch.float32))
    tall = x.size(-2) > x.size(-1)
    if tall:
        x = x.mT               # iterate on the wide side: X Xᵀ is then the smaller Gram matrix
    x = x / (x.norm(dim=(-2, -1), keepdim=True) + 1e-7)   # spectral norm ≤ Frobenius norm ≤ 1: inside the basin
    for _ in range(steps):
        gram = x @ x.mT
        x = a * x + (b * gram + c * gram @ gram) @ x      # p(X) = aX + b(XXᵀ)X + c(XXᵀ)²X, odd in the singular values
    if tall:
        x = x.mT
    return x.to(g.dtype)


class Muon(torch.optim.Optimizer):
    """One optimizer over two kinds of group: `muon=True` groups (lr, momentum, nesterov, ns_steps)
    and AdamW groups (lr, betas, eps, weight_decay).

    One object, so the loop's lr schedule (`lr_mult` per group), gradient clipping, checkpoints
    (`state_dict`: momentum buffers and Adam moments) and exact resume work unchanged.
    """

    def __init__(self, groups: list[dict], lr: float = 0.02, momentum: float = 0.95, nesterov: bool = True,
                 ns_steps: int = 5, betas: tuple[float, float] = (0.9, 0.95), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        defaults = dict(lr=lr, momentum=momentum, nesterov=nesterov, ns_steps=ns_steps, betas=betas, eps=eps,
                        weight_decay=weight_decay, muon=False)
        super().__init__(groups, defaults)
        for group in self.param_groups:
            if group["muon"] and any(p.dim() != 2 for p in group["params"]):
                raise ValueError("Muon groups take 2-D weight matrices only")

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            if group["muon"]:
                self._muon_step(group)
            else:
                self._adamw_step(group)
        return loss

    def _muon_step(self, group: dict) -> None:
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = torch.zeros_like(p)
            buf = state["momentum_buffer"]
            buf.mul_(group["momentum"]).add_(p.grad)
            m = p.grad.add(buf, alpha=group["momentum"]) if group["nesterov"] else buf
            scale = max(1.0, p.size(0) / p.size(1)) ** 0.5
            p.add_(newton_schulz(m, group["ns_steps"]), alpha=-group["lr"] * scale)

    def _adamw_step(self, group: dict) -> None:
        params, grads, exp_avgs, exp_avg_sqs, steps = [], [], [], [], []
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            if not state:   # the same state torch.optim.AdamW keeps, so its function can update it
                state["step"] = torch.tensor(0.0)
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            params.append(p)
            grads.append(p.grad)
            exp_avgs.append(state["exp_avg"])
            exp_avg_sqs.append(state["exp_avg_sq"])
            steps.append(state["step"])
        if params:
            beta1, beta2 = group["betas"]
            adamw(params, grads, exp_avgs, exp_avg_sqs, [], steps, amsgrad=False, beta1=beta1, beta2=beta2,
                  lr=group["lr"], weight_decay=group["weight_decay"], eps=group["eps"], maximize=False)
