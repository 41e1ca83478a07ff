"""BPE training: count pre-tokens once, then merge with incremental pair counts and a heap.

1. Counting. The text stream is cut into chunks of documents; worker processes split each
   document with the regex and count its pieces. Only the table of distinct pieces and their
   counts is kept, so memory grows with the vocabulary of the corpus, not with its size.
2. Merging. Each distinct piece becomes a list of byte ids with a weight (its count). We keep
   the count of every adjacent pair, an index pair -> pieces containing it, and a max-heap of
   (count, pair). Merging the best pair rewrites only the pieces that contain it and adjusts
   the counts of the pairs around each occurrence; the heap is never rebuilt. Heap entries
   whose count is out of date are fixed when they surface ("lazy deletion").

Tie-break (deterministic): the highest count wins; among equal counts, the pair with the
smallest (left id, right id) wins, ids being byte values for bytes and creation order for merges.
When the winning pair's bytes already form a token (the same bytes can be reached by two
different splits), the pieces are rewritten to that token and no new id is spent.

>>> vocab = train_bpe(["aaabdaaabac"], 259, r"\\S+", [], num_workers=1, progress=False)
>>> vocab[256:]
[b'aa', b'ab', b'aaab']
"""

from __future__ import annotations

import functools
import heapq
import os
from collections import Counter, defaultdict
from typing import Iterable

import regex
from tqdm import tqdm

from scratchllm.tokenizer.patterns import fix_surrogates, has_newer_chars, split_like_tiktoken
from scratchllm.utils.pool import FORK_IF_AVAILABLE, ordered_map

CHUNK_CHARS = 1_000_000  # characters of text a counting task handles (small: a few MB still spread over cores)
SHIFT = 32               # a pair (a, b) is stored as the int a << SHIFT | b: cheap to hash and to order
MASK = (1 << SHIFT) - 1

@functools.cache
def _compiled(pattern: str, specials: tuple[str, ...]) -> tuple[regex.Pattern, regex.Pattern | None]:
    sp = regex.compile("|".join(regex.escape(s) for s in specials)) if specials else None
    return regex.compile(pattern), sp


def count_chunk(docs: list[str], pattern: str, specials: tuple[str, ...]) -> Counter:
    """Counts of the regex pieces of `docs`; special-token strings are cut out, never learned."""
    pat, sp = _compiled(pattern, specials)
    parts = [part for doc in docs for part in (sp.split(doc) if sp is not None and "<|" in doc else (doc,))]
    counts: Counter = Counter()
    for part in parts:
        counts.update(pat.findall(part))
    # the encoder splits text holding characters newer than tiktoken's Unicode tables the way
    # tiktoken does (see patterns.py); training must see the same pieces (rare: count again)
    if any(not p.isascii() and has_newer_chars(p) for p in counts):
        counts = Counter(p for part in parts for p in split_like_tiktoken(pat, part))
    return counts


# A lone newline between two non-space characters: every built-in pattern (gpt2, gpt4, o200k)
# ends a piece before it and after it, so cutting a long document there changes no piece.
_SAFE_CUT = regex.compile(r"(?<=\S)\n(?=\S)")


def _cut_long(text: str) -> Iterable[str]:
    """`text` in parts of about CHUNK_CHARS, cut only where no pre-token can span the cut."""
    start = 0
    while len(text) - start > CHUNK_CHARS:
        m = _SAFE_CUT.search(text, start + CHUNK_CHARS)
        if m is None:
            break
        yield text[start:m.end()]
        start = m.end()
    yield text[start:]


def _chunks(texts: Iterable[str]) -> Iterable[tuple[list[str], int]]:
    docs, size = [], 0
    for text in texts:
        for t in _cut_long(text) if len(text) > CHUNK_CHARS else (text,):
            docs.append(t)
            size += len(t)
            if size >= CHUNK_CHARS:
                yield docs, size
                docs, size = [], 0
    if docs:
        yield docs, size


def count_pretokens(texts: Iterable[str], pattern: str, specials: Iterable[str] = (),
                    num_workers: int | None = None, progress: bool = True) -> Counter:
    """Counts of every distinct pre-token in the stream `texts`, counted on `num_workers` processes.

    A document longer than CHUNK_CHARS is cut at safe newlines (see `_SAFE_CUT`) so that one
    huge file still spreads over the workers; with a custom pattern, pass shorter documents if
    pieces may span a newline.
    """
    specials = tuple(specials)
    workers = num_workers or os.cpu_count() or 1
    total: Counter = Counter()
    bar = tqdm(desc="count pre-tokens", unit="char", unit_scale=True, disable=not progress)
    count = functools.partial(_count_item, pattern=pattern, specials=specials)
    # bounded in-flight work keeps memory flat however long the stream is
    for (_, size), counts in ordered_map(count, _chunks(texts), workers, start_method=FORK_IF_AVAILABLE):
        total.update(counts)
        bar.update(size)
    bar.close()
    return total


def _count_item(item: tuple[list[str], int], pattern: str, specials: tuple[str, ...]) -> Counter:
    return count_chunk(item[0], pattern, specials)


def _to_words(counts: dict[str, int]) -> tuple[list[list[int]], list[int]]:
    merged: dict[bytes, int] = {}
    for s, c in counts.items():
        b = fix_surrogates(s).encode("utf-8")  # lone surrogates: U+FFFD, as the encoder will see them
        if len(b) > 1:  # a single byte has no pair: it can never take part in a merge
            merged[b] = merged.get(b, 0) + c
    return [list(b) for b in merged], list(merged.values())


def merge_words(counts: dict[str, int], n_tokens: int, progress: bool = True) -> list[bytes]:
    """Token byte strings (256 bytes, then merges in order) learned from pre-token `counts`."""
    vocab = [bytes([i]) for i in range(256)]
    index = {b: i for i, b in enumerate(vocab)}
    words, wcounts = _to_words(counts)
    pair_counts: defaultdict[int, int] = defaultdict(int)
    where: defaultdict[int, set[int]] = defaultdict(set)
    for wi, w in enumerate(words):
        c = wcounts[wi]
        for a, b in zip(w, w[1:]):
            k = a << SHIFT | b
            pair_counts[k] += c
            where[k].add(wi)
    heap = [(-c, k) for k, c in pair_counts.items()]
    heapq.heapify(heap)
    bar = tqdm(total=n_tokens - 256, desc="merge", unit="tok", disable=not progress)
    while len(vocab) < n_tokens and heap:
        negc, k = heapq.heappop(heap)
        c = pair_counts.get(k, 0)
        if c != -negc:
            # stale entry: if the count fell, re-queue it at its true count; if it rose, a
            # fresher entry with the higher count is already in the heap
            if 0 < c < -negc:
                heapq.heappush(heap, (-c, k))
            continue
        a, b = k >> SHIFT, k & MASK
        joined = vocab[a] + vocab[b]
        new = index.get(joined)
        if new is None:
            new = len(vocab)
            vocab.append(joined)
            index[joined] = new
            bar.update(1)
        _apply_merge(a, b, new, where.pop(k), words, wcounts, pair_counts, where, heap)
    bar.close()
    return vocab


def _apply_merge(a: int, b: int, new: int, word_ids: set[int], words: list[list[int]], wcounts: list[int],
                 pair_counts: dict[int, int], where: defaultdict[int, set[int]], heap: list) -> None:
    """Rewrite every word holding the pair (a, b); adjust only the pair counts around each occurrence."""
    delta: defaultdict[int, int] = defaultdict(int)
    ab = a << SHIFT | b
    for wi in word_ids:
        w = words[wi]
        n = len(w)
        try:
            i = w.index(a, 0, n - 1)  # C-speed search for the first `a` that has a right neighbour
        except ValueError:
            continue  # stale index entry: this word no longer holds the pair
        if w[i + 1] == b and a not in w[i + 2:]:
            # fast path, the common case: one occurrence, edited in place
            c = wcounts[wi]
            delta[ab] -= c
            if i > 0:
                x = w[i - 1]
                delta[x << SHIFT | a] -= c
                k = x << SHIFT | new
                delta[k] += c
                where[k].add(wi)
            if i + 2 < n:
                y = w[i + 2]
                delta[b << SHIFT | y] -= c
                k = new << SHIFT | y
                delta[k] += c
                where[k].add(wi)
            w[i:i + 2] = [new]
            continue
        out: list[int] = []
        occ: list[int] = []  # positions in w where (a, b) is merged, left to right
        occ_out: list[int] = []  # ... and the positions of the merged tokens in out
        i = start = 0
        while True:
            try:
                i = w.index(a, i, n - 1)  # C-speed search for the next `a` that has a right neighbour
            except ValueError:
                break
            if w[i + 1] == b:
                out.extend(w[start:i])
                occ_out.append(len(out))
                out.append(new)
                occ.append(i)
                i = start = i + 2  # left to right, no overlap: in "aaa" (a, a) gives [aa, a]
            else:
                i += 1
        if not occ:
            continue  # stale index entry: this word no longer holds the pair
        out.extend(w[start:])
        c = wcounts[wi]
        prev_end = -1
        for i in occ:  # pairs that disappear
            delta[ab] -= c
            if i > 0 and i - 1 != prev_end:  # subtle: after an adjacent merge, (b, a) was counted as its right pair
                delta[w[i - 1] << SHIFT | a] -= c
            if i + 2 < n:
                delta[b << SHIFT | w[i + 2]] -= c
            prev_end = i + 1
        m = len(out)
        last = len(occ_out) - 1
        for j, p in enumerate(occ_out):  # pairs that appear: those touching a merged token
            if p > 0:
                k = out[p - 1] << SHIFT | new
                delta[k] += c
                where[k].add(wi)
            # (new, new) of two adjacent merges is counted once, as the right one's left pair
            if p + 1 < m and not (j < last and occ_out[j + 1] == p + 1):
                k = new << SHIFT | out[p + 1]
                delta[k] += c
                where[k].add(wi)
        words[wi] = out
    for k, d in delta.items():
        if d:
            c = pair_counts.get(k, 0) + d
            if c > 0:
                pair_counts[k] = c
                if d > 0:
                    heapq.heappush(heap, (-c, k))
            else:
                pair_counts.pop(k, None)


def train_bpe(texts: Iterable[str], n_tokens: int, pattern: str, specials: Iterable[str] = (),
              num_workers: int | None = None, progress: bool = True) -> list[bytes]:
    """Count pre-tokens of `texts`, then learn merges until there are `n_tokens` mergeable tokens."""
    counts = count_pretokens(texts, pattern, specials, num_workers=num_workers, progress=progress)
    return merge_words(counts, n_tokens, progress=progress)
