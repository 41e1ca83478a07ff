"""Bigram models: the next character from the current one, first by counting, then by learning.

The counting model tallies how often character b follows character a, adds k to every cell
(add-k smoothing, so nothing unseen gets probability zero) and normalises each row. The neural
bigram is one V x V weight table (an embedding whose rows are logits) trained by gradient
descent on the same pairs; its softmax rows converge to the counts' rows, the bridge from
counting to learning.

>>> import torch
>>> x, y = torch.tensor([0, 1, 1]), torch.tensor([1, 1, 0])   # '.a', 'aa', 'a.'
>>> m = CountingBigram.fit(x, y, vocab_size=2, smoothing=0.0)
>>> m.probs.tolist()
[[0.0, 1.0], [0.5, 0.5]]
>>> round(m.nll(x, y), 4)   # -(log 1 + log .5 + log .5) / 3
0.4621
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm import tqdm


@dataclass
class BigramConfig:
    smoothing: float = 1.0      # add-k: k added to every count (1.0 = Laplace)


@dataclass
class NeuralBigramConfig:
    steps: int = 200            # full-batch gradient-descent steps
    lr: float = 50.0            # large: the loss is a mean over many pairs, so gradients are small
    momentum: float = 0.9
    weight_decay: float = 0.0   # pulls logits toward 0 (uniform), the learned twin of add-k smoothing


class CountingBigram(torch.nn.Module):
    """A V x V count table, add-k smoothed into next-character probabilities.

    A Module only so that it saves, loads and samples like the learned models; the counts
    are a buffer, nothing is trained.
    """

    def __init__(self, counts: torch.Tensor, smoothing: float = 1.0) -> None:
        super().__init__()
        self.register_buffer("counts", counts)
        self.smoothing = smoothing

    @property
    def probs(self) -> torch.Tensor:
        smoothed = self.counts.double() + self.smoothing
        return (smoothed / smoothed.sum(1, keepdim=True)).float()

    @classmethod
    def fit(cls, x: torch.Tensor, y: torch.Tensor, vocab_size: int, smoothing: float = 1.0) -> "CountingBigram":
        """Count the pairs (x[i], y[i]) -- one bincount over the flattened cell index."""
        counts = torch.bincount(x * vocab_size + y, minlength=vocab_size * vocab_size)
        return cls(counts.view(vocab_size, vocab_size), smoothing)

    def nll(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """Average negative log-likelihood (nats per character) of the pairs."""
        return -self.probs[x, y].double().log().mean().item()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Log-probabilities as logits, so sampling treats it like the neural models. x: [B] or [B, 1]."""
        return self.probs.log()[x.reshape(-1)]


class NeuralBigram(torch.nn.Module):
    """One weight table W: the logits for the next character are the row W[current]."""

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        # Zero init = the uniform distribution, log(V) loss, the honest starting point.
        self.W = torch.nn.Parameter(torch.zeros(vocab_size, vocab_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B] or [B, 1] current ids -> logits [B, V]."""
        # Indexing a row is the one-hot(x) @ W of the lecture, without building the one-hot.
        return self.W[x.reshape(-1)]


def train_neural_bigram(x: torch.Tensor, y: torch.Tensor, vocab_size: int,
                        cfg: NeuralBigramConfig, progress: bool = True) -> tuple[NeuralBigram, list[float]]:
    """Full-batch gradient descent (with momentum) on all pairs; returns the model and its loss curve."""
    model = NeuralBigram(vocab_size)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum)
    losses = []
    bar = tqdm(range(cfg.steps), desc="bigram-nn", disable=not progress)
    for _ in bar:
        loss = F.cross_entropy(model(x), y)
        losses.append(loss.item())
        if cfg.weight_decay:
            loss = loss + cfg.weight_decay * model.W.pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        bar.set_postfix(loss=f"{losses[-1]:.4f}")
    return model, losses


@torch.no_grad()
def neural_nll(model: NeuralBigram, x: torch.Tensor, y: torch.Tensor) -> float:
    return F.cross_entropy(model(x), y).item()
