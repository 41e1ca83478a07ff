"""One decode step at fixed shapes over every slot of a ragged KV cache, optionally a CUDA graph.

Decoding one token is a few hundred tiny kernels; at batch 1 a GPU spends more time waiting for
Python to launch them than running them. A CUDA graph records the launches once and replays
them with one call, which only works if every tensor the step touches keeps its shape and its
address. So the step reads its input tokens from a buffer it owns (`tokens` [B, 1]), runs the
model on all B slots of a cache of fixed capacity (ragged mode: each row writes at its own
length and attends to its own positions, the mask built on the device), and writes its logits
to a buffer it owns. Free slots and slots still prefilling are computed too (a fixed shape is
the price of the graph) but their lengths are put back (`decoding` [B] marks the rows that
advance); whatever they wrote sits past their length and is overwritten later.

The step also writes each decoding row's greedy choice (the argmax over the tokenizer's
`vocab_size`) into `tokens`, inside the graph: a batch that decodes greedily feeds itself and the
host launches one replay per token, no sampling kernels. A row that samples overwrites its entry.

The same `_forward` runs eagerly on the CPU (the readable reference, and what the tests
exercise), under `torch.compile` (fuses the elementwise kernels), and captured as a graph.

>>> import torch
>>> from scratchllm.model.config import ModelConfig
>>> from scratchllm.model.transformer import Transformer
>>> model = Transformer(ModelConfig(n_layer=1, n_head=2, n_embd=16, vocab_size=50, block_size=32)).eval()
>>> cache = model.make_kv_cache(batch_size=2); cache.set_lengths(torch.tensor([3, 0]))
>>> step = DecodeStep(model, cache)
>>> step.decoding[0] = True                       # row 0 decodes; row 1 is a free slot
>>> logits = step(); logits.shape, cache.lengths.tolist()
(torch.Size([2, 50]), [4, 0])
>>> step.tokens[0, 0] == logits[0].argmax(), step.tokens[1, 0].item()   # row 0's next input; row 1 kept
(tensor(True), 0)
"""

from __future__ import annotations

import torch

from scratchllm.model.kv_cache import KVCache


class DecodeStep:
    """`step()` feeds `tokens` [B, 1] to the model through `cache` and returns logits [B, V].

    `cuda_graph` captures the step once (at construction, while no row decodes) and replays it;
    `compile` runs it through `torch.compile` first. Both are for CUDA; the eager step is the
    reference they must match.
    """

    def __init__(self, model: torch.nn.Module, cache: KVCache, cuda_graph: bool = False, compile: bool = False,
                 vocab_size: int | None = None):
        n_rows, device = cache.lengths.shape[0], cache.lengths.device
        self.model, self.cache, self.vocab_size = model, cache, vocab_size
        self.tokens = torch.zeros(n_rows, 1, dtype=torch.long, device=device)
        self.decoding = torch.zeros(n_rows, dtype=torch.bool, device=device)
        self._fn = torch.compile(self._forward, dynamic=False) if compile else self._forward
        self.graph: torch.cuda.CUDAGraph | None = None
        self.logits: torch.Tensor | None = None
        if cuda_graph:
            self._capture()

    def _forward(self) -> torch.Tensor:
        before = self.cache.lengths.clone()
        logits = self.model(self.tokens, kv_cache=self.cache)[:, -1]
        # Rows that are not decoding keep their length: a free slot stays empty, a prefill waits.
        self.cache.lengths.copy_(torch.where(self.decoding, self.cache.lengths, before))
        greedy = logits[:, :self.vocab_size].argmax(dim=-1)     # first maximum, as the sampler's argmax
        self.tokens.copy_(torch.where(self.decoding, greedy, self.tokens[:, 0])[:, None])
        return logits

    def _capture(self) -> None:
        # Warm up on a side stream (cuBLAS picks its kernels, compile generates its code) so
        # the capture records steady-state work; nothing decodes yet, so no row moves.
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                self._fn()
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.logits = self._fn()

    def __call__(self) -> torch.Tensor:
        if self.graph is None:
            return self._fn()
        self.graph.replay()
        return self.logits
