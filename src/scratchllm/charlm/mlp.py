"""The MLP language model of Bengio et al. (2003): embed the last n characters, concatenate, hidden layers, softmax.

Each character gets a learned vector (its embedding). The vectors of the `context` previous
characters are concatenated and passed through tanh hidden layers (optionally BatchNorm-ed,
which keeps the pre-activations in tanh's useful range so deeper stacks train) to logits over
the next character. Training is minibatch AdamW with a short warmup and a cosine decay of the
learning rate; `lr_find` sweeps the learning rate exponentially to choose `lr`.

>>> import torch
>>> cfg = MLPConfig(context=3, n_embd=4, n_hidden=16)
>>> model = MLP(cfg, vocab_size=27)
>>> model(torch.zeros(5, 3, dtype=torch.long)).shape
torch.Size([5, 27])
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm


@dataclass
class MLPConfig:
    context: int = 8            # characters of context (block size)
    n_embd: int = 16            # embedding size per character
    n_hidden: int = 256         # width of each hidden layer
    n_layers: int = 1           # hidden layers
    batchnorm: bool = True
    steps: int = 10000
    batch_size: int = 128
    lr: float = 0.005           # peak AdamW learning rate
    min_lr_ratio: float = 0.05  # the cosine decay ends at lr * min_lr_ratio
    warmup: int = 200
    weight_decay: float = 0.01
    eval_every: int = 1000


class MLP(nn.Module):
    def __init__(self, cfg: MLPConfig, vocab_size: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.emb = nn.Embedding(vocab_size, cfg.n_embd)
        layers: list[nn.Module] = []
        width = cfg.context * cfg.n_embd
        for _ in range(cfg.n_layers):
            # A bias before BatchNorm is wasted: BatchNorm subtracts the mean anyway.
            linear = nn.Linear(width, cfg.n_hidden, bias=not cfg.batchnorm)
            # Kaiming init with tanh's gain 5/3 keeps activations from saturating at the start.
            nn.init.normal_(linear.weight, std=(5 / 3) / math.sqrt(width))
            layers += [linear, nn.BatchNorm1d(cfg.n_hidden)] if cfg.batchnorm else [linear]
            layers.append(nn.Tanh())
            width = cfg.n_hidden
        self.hidden = nn.Sequential(*layers)
        self.out = nn.Linear(width, vocab_size)
        # A small output layer starts near uniform: loss log(V) instead of a confident wrong guess.
        with torch.no_grad():
            self.out.weight.mul_(0.1)
            self.out.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, context] ids -> logits [B, vocab]."""
        return self.out(self.hidden(self.emb(x).flatten(1)))


def lr_at(step: int, cfg: MLPConfig) -> float:
    """Linear warmup, then cosine decay from lr to lr * min_lr_ratio."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    ratio = cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return cfg.lr * ratio


@torch.no_grad()
def evaluate(model: MLP, x: torch.Tensor, y: torch.Tensor, batch: int = 65536) -> float:
    """Average NLL over all examples, in eval mode (BatchNorm uses its running statistics)."""
    was_training = model.training
    model.eval()
    total = sum(F.cross_entropy(model(x[i:i + batch]), y[i:i + batch], reduction="sum").item()
                for i in range(0, len(x), batch))
    model.train(was_training)
    return total / len(x)


def _optimizer(model: MLP, cfg: MLPConfig) -> torch.optim.Optimizer:
    # Decay matrices only: shrinking biases and norm gains does not regularise, it just hurts.
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr)


def _step(model: MLP, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, lr: float,
          gen: torch.Generator) -> torch.Tensor:
    """One AdamW step at `lr` on a random minibatch; returns its loss."""
    for group in opt.param_groups:
        group["lr"] = lr
    idx = torch.randint(0, len(x), (model.cfg.batch_size,), generator=gen)
    loss = F.cross_entropy(model(x[idx]), y[idx])
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss


def train_mlp(model: MLP, train: tuple[torch.Tensor, torch.Tensor], val: tuple[torch.Tensor, torch.Tensor],
              seed: int = 0, log=None, progress: bool = True) -> dict:
    """Minibatch AdamW; calls `log(dict)` every eval_every steps; returns the final figures."""
    cfg = model.cfg
    opt = _optimizer(model, cfg)
    gen = torch.Generator().manual_seed(seed)
    (xt, yt), (xv, yv) = train, val
    model.train()
    bar = tqdm(range(cfg.steps), desc="mlp", disable=not progress)
    for step in bar:
        loss = _step(model, opt, xt, yt, lr_at(step, cfg), gen)
        if (step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps:
            record = {"step": step + 1, "lr": lr_at(step, cfg), "batch_loss": loss.item(),
                      "val_loss": evaluate(model, xv, yv)}
            bar.set_postfix(val=f"{record['val_loss']:.4f}")
            if log:
                log(record)
    return {"train_loss": evaluate(model, xt, yt), "val_loss": evaluate(model, xv, yv)}


def lr_find(model: MLP, x: torch.Tensor, y: torch.Tensor, lo: float = 1e-4, hi: float = 1.0,
            steps: int = 300, seed: int = 0) -> tuple[list[float], list[float]]:
    """Sweep the learning rate from lo to hi exponentially, one minibatch step each.

    Returns (lrs, losses); the loss falls fastest around a good peak lr and blows up past it.
    The model is trained by the sweep, so pass a fresh copy.
    """
    cfg = model.cfg
    opt = _optimizer(model, cfg)
    gen = torch.Generator().manual_seed(seed)
    lrs, losses = [], []
    for i in range(steps):
        lr = lo * (hi / lo) ** (i / (steps - 1))
        loss = _step(model, opt, x, y, lr, gen)
        lrs.append(lr)
        losses.append(loss.item())
    return lrs, losses


@torch.no_grad()
def sample(model: torch.nn.Module, context: int, pad_id: int, stop_id: int | None, n: int,
           max_len: int, generator: torch.Generator) -> list[list[int]]:
    """Draw `n` sequences, each from an all-pad context, until `stop_id` (not kept) or `max_len` ids.

    Works for any model mapping [B, context] ids to [B, vocab] logits (the bigram has context 1).
    """
    was_training = model.training
    model.eval()
    out = []
    for _ in range(n):
        ctx, ids = [pad_id] * context, []
        while len(ids) < max_len:
            probs = F.softmax(model(torch.tensor([ctx])), dim=-1)
            nxt = torch.multinomial(probs[0], 1, generator=generator).item()
            if nxt == stop_id:
                break
            ids.append(nxt)
            ctx = ctx[1:] + [nxt]
        out.append(ids)
    model.train(was_training)
    return out
