"""Continuous batching: requests join and leave the running batch between decode steps.

A static batch runs until its longest member ends, so most slots idle while the last long
answer finishes, and a request that arrives meanwhile waits for the whole batch. Continuous
batching (Orca, vLLM) schedules per *step* instead: a finished sequence frees its slot at once
and the next waiting request takes it, so the decode step stays full. Long prompts are
prefilled in chunks of at most `prefill_budget` tokens per step, so one long prompt never
stalls the tokens of the sequences already decoding.

The caller is a server. Its API:

    scheduler = Scheduler(model, n_slots=32, max_queue=256)
    scheduler.start()                          # a background thread steps while there is work
    handle = scheduler.submit(Request(ids, 64, SamplingParams(0.8, seed=1)))   # QueueFull → HTTP 429
    for token in handle: ...                   # blocking stream (a worker thread), or:
    scheduler.submit(request, on_event=lambda h, token, reason:
                     loop.call_soon_threadsafe(queue.put_nowait, (token, reason)))   # asyncio
    scheduler.cancel(handle)                   # the client went away: the slot is freed next step
    scheduler.stop()

`submit` and `cancel` only touch a lock-protected queue, so an asyncio event loop can call them
directly; the model runs on the scheduler's thread (or the caller drives `step()` itself, as
the tests do). `on_event(handle, token, finish_reason)` runs on that thread: token None with a
reason is the end. Token ids only; text lives one layer up.

>>> import torch
>>> from scratchllm.model.config import ModelConfig
>>> from scratchllm.model.transformer import Transformer
>>> from scratchllm.inference.sampling import SamplingParams
>>> model = Transformer(ModelConfig(n_layer=1, n_head=2, n_embd=16, vocab_size=50, block_size=32)).eval()
>>> scheduler = Scheduler(model, n_slots=2, max_queue=4)
>>> handles = [scheduler.submit(Request([1, 2, 3], n, SamplingParams(temperature=0))) for n in (2, 5, 3)]
>>> while scheduler.step():              # three requests through two slots
...     pass
>>> [(len(h.tokens), h.finish_reason) for h in handles]
[(2, 'length'), (5, 'length'), (3, 'length')]
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections import deque
from typing import Callable, Iterator

import torch

from scratchllm.errors import UserError
from scratchllm.inference.slot_speculation import SlotSpeculator, check_draft
from scratchllm.inference.slots import Event, Request, SlotBatch, check_prompt

_END = object()   # what a handle's queue holds after the last token


class QueueFull(UserError):
    """The scheduler's queue of waiting requests is full (a server answers 429: try again later)."""


class Handle:
    """One submitted request: iterate it for its tokens; `finish_reason` once it has ended."""

    def __init__(self, request_id: int, request: Request, on_event: Callable | None = None):
        self.id, self.request, self.on_event = request_id, request, on_event
        self.tokens: list[int] = []
        self.finish_reason: str | None = None
        self.stop_id: int | None = None      # the stop id it ended on, if it did
        # (token, log-prob, best) of the event being delivered, when the request asks for log-probs:
        # set on the scheduler's thread just before `on_event` runs there, so the callback may read it.
        self.last_logprob: tuple | None = None
        self.cancelled = False
        self.done = threading.Event()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()

    def _deliver(self, token: int | None, reason: str | None) -> None:
        if token is not None:
            self.tokens.append(token)
            self._queue.put(token)
        if reason is not None:
            self.finish_reason = reason
            self._queue.put(_END)
            self.done.set()
        if self.on_event is not None:
            self.on_event(self, token, reason)

    def __iter__(self) -> Iterator[int]:
        """Block for each token as it comes; ends when the request finishes."""
        while (item := self._queue.get()) is not _END:
            yield item


class Scheduler:
    """Admits, prefills (chunked), decodes and retires requests over `n_slots` slots of one KV cache.

    `max_len` is each slot's capacity (default block_size); `max_queue` bounds the waiting
    requests; `prefill_budget` bounds the prompt tokens prefilled per step. With a `draft` model
    (same vocabulary), a request decoding alone is decoded speculatively, `draft_k` drafts a round
    (`slot_speculation.py`); `speculative_stats()` counts the drafts proposed and kept.
    """

    def __init__(self, model: torch.nn.Module, n_slots: int = 8, max_len: int | None = None,
                 vocab_size: int | None = None, max_queue: int = 64, prefill_budget: int = 512,
                 sliding_window: bool = False, cuda_graph: bool = False, compile: bool = False,
                 draft: torch.nn.Module | None = None, draft_k: int = 4):
        if prefill_budget < 1 or max_queue < 0 or n_slots < 1:
            raise UserError("n_slots and prefill_budget must be at least 1 and max_queue at least 0")
        if draft is not None:
            check_draft(model, draft)
        with torch.inference_mode():
            self.slots = SlotBatch(model, n_slots, max_len, vocab_size, sliding_window, cuda_graph, compile)
            self.speculator = None if draft is None else SlotSpeculator(draft, n_slots, self.slots.max_len, draft_k)
        self.max_queue, self.prefill_budget = max_queue, prefill_budget
        self._waiting: deque[Handle] = deque()
        self._running: dict[int, Handle] = {}           # slot → handle
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None
        self._stopping = False

    def submit(self, request: Request, on_event: Callable | None = None) -> Handle:
        """Queue `request`; raises QueueFull when `max_queue` requests already wait, UserError if it is bad."""
        check_prompt(len(request.prompt), self.slots.max_len)
        request.sampling.check()
        with self._lock:
            if len(self._waiting) >= self.max_queue:
                raise QueueFull(f"{len(self._waiting)} requests are already waiting (max_queue={self.max_queue}); "
                                "retry later or start the scheduler with a larger max_queue")
            handle = Handle(next(self._ids), request, on_event)
            self._waiting.append(handle)
            self._wake.notify()
        return handle

    def cancel(self, handle: Handle) -> None:
        """Stop `handle` at the next step (finish_reason "cancelled"); its slot goes to the next request."""
        with self._lock:
            handle.cancelled = True
            self._wake.notify()

    def speculative_stats(self):
        """Rounds, drafts proposed and drafts kept so far (`SpeculativeStats`), or None without a draft."""
        return None if self.speculator is None else self.speculator.stats

    def pending(self) -> int:
        """Requests waiting or running."""
        with self._lock:
            return len(self._waiting) + len(self._running)

    @torch.inference_mode()
    def step(self) -> bool:
        """One scheduling step: retire cancelled, admit, prefill within the budget, decode. True while work remains."""
        self._retire_cancelled()
        self._admit()
        events = self._prefill()
        with self._lock:
            waiting = len(self._waiting)
        if self.speculator is not None and self.speculator.applies(self.slots, waiting):
            events += self.speculator.round(self.slots)
        else:
            events += self.slots.decode()
        for event in events:
            self._deliver(event)
        return self.pending() > 0

    def _retire_cancelled(self) -> None:
        with self._lock:
            cancelled = [h for h in self._waiting if h.cancelled]
            for h in cancelled:
                self._waiting.remove(h)
        for h in cancelled:
            h._deliver(None, "cancelled")
        for slot, h in list(self._running.items()):
            if h.cancelled:
                self.slots.release(slot, "cancelled")
                del self._running[slot]
                h._deliver(None, "cancelled")

    def _admit(self) -> None:
        for slot in self.slots.free_slots():
            with self._lock:
                if not self._waiting:
                    return
                handle = self._waiting.popleft()
            self.slots.admit(slot, handle.request)
            self._running[slot] = handle

    def _prefill(self) -> list[Event]:
        # Lowest slots first, neighbouring slots in one forward, at most prefill_budget tokens a step.
        return self.slots.prefill_within(self.prefill_budget)

    def _deliver(self, event: Event) -> None:
        handle = self._running.get(event.slot)
        if handle is None:
            return
        if event.finish_reason is not None:
            del self._running[event.slot]
            handle.stop_id = event.stop_id      # set before the end is delivered: a consumer may read it at once
        token = event.token if event.token is not None else event.stop_id
        handle.last_logprob = None if event.logprob is None else (token, *event.logprob)
        handle._deliver(event.token, event.finish_reason)

    def start(self) -> "Scheduler":
        """Step on a background thread whenever there is work; sleep when there is none."""
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="scratchllm-scheduler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """End the background thread (requests still running stay unfinished)."""
        with self._lock:
            self._stopping = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _loop(self) -> None:
        while True:
            with self._lock:
                while not self._stopping and not self._waiting and not self._running:
                    self._wake.wait()
                if self._stopping:
                    return
            self.step()
