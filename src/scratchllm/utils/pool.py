"""A bounded process pool: `fn` over a stream of work items on several processes, results in order.

Data preparation, tokenizing and tokenizer training all stream corpora far larger than memory
through worker processes. Submitting the whole stream at once would hold every pending batch
and result in memory, so at most `2 * workers` items are in flight: the reader waits for the
oldest result before it reads more. Results come back in input order, so the output does not
depend on the worker count. With `workers <= 1` everything runs in this process (the same
`initializer` first), which keeps tests and small inputs free of process start-up.

What the items are, and how big, is the caller's business: this module only schedules them.

>>> list(ordered_map(abs, iter([-1, 2, -3]), workers=1))
[(-1, 1), (2, 2), (-3, 3)]
>>> [r for _, r in ordered_map(abs, range(-5, 0), workers=2)]
[5, 4, 3, 2, 1]
>>> list(batched(["ab", "c", "def", "g"], limit=3))
[['ab', 'c'], ['def'], ['g']]
"""

from __future__ import annotations

import collections
import multiprocessing
from typing import Any, Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# fork starts workers fastest and shares what the parent already holds; spawn where there is no fork
FORK_IF_AVAILABLE = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"


def batched(items: Iterable[T], limit: int, size: Callable[[T], int] = len) -> Iterator[list[T]]:
    """`items` in lists whose `size` adds up to at least `limit` (the last one may be smaller).

    One pickle per batch instead of per item is what makes a process pool pay off for small items.
    """
    batch, total = [], 0
    for item in items:
        batch.append(item)
        total += size(item)
        if total >= limit:
            yield batch
            batch, total = [], 0
    if batch:
        yield batch


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int,
                initializer: Callable[..., Any] | None = None, initargs: tuple = (),
                start_method: str | None = None) -> Iterator[tuple[T, R]]:
    """(item, fn(item)) for each item, in input order, with at most 2 items a worker in flight.

    `fn` and `initializer` must be picklable (module-level functions); `start_method` picks the
    multiprocessing context ("fork", "spawn"; None: the platform's default).
    """
    if workers <= 1:
        if initializer is not None:
            initializer(*initargs)
        for item in items:
            yield item, fn(item)
        return
    with multiprocessing.get_context(start_method).Pool(workers, initializer, initargs) as pool:
        pending: collections.deque = collections.deque()
        for item in items:
            pending.append((item, pool.apply_async(fn, (item,))))
            # the oldest result is handed on as soon as it is ready, and waited for once the window is full
            while len(pending) >= 2 * workers or (pending and pending[0][1].ready()):
                done, result = pending.popleft()
                yield done, result.get()
        while pending:
            done, result = pending.popleft()
            yield done, result.get()
