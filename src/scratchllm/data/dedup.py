"""Deduplication: exact (hash of the normalized text) and near-duplicate (MinHash + LSH), with
union-find clusters and one kept document per cluster.

Documents are added one at a time as fingerprints (`fingerprint` runs in worker processes);
the index keeps only per-document data — an exact-hash digest, a 128 x uint32 signature and
the LSH bucket entries — so memory grows with the number of documents, not their size
(~0.7 KB a document at the defaults).

Keep rule (deterministic): in each cluster keep the longest document (the most complete
edition of a book), ties broken by input order.

>>> d = Deduplicator(DedupConfig(threshold=0.8, shingle=3))
>>> texts = ["one two three four five six seven eight nine ten",
...          "one two three four five six seven eight nine ten",
...          "completely different words in this little text here now"]
>>> for i, t in enumerate(texts):
...     d.add(f"doc{i}", len(t), *fingerprint(t, d.cfg, d.hasher))
>>> result = d.finish()
>>> result.keep, [c.ids for c in result.clusters]
([True, False, True], [['doc0', 'doc1']])
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

import numpy as np

from scratchllm.data.minhash import MinHasher, choose_bands, estimate_jaccard
from scratchllm.errors import UserError

_SPACE = re.compile(r"\s+")
LINE_UNITS = ("off", "line", "paragraph")


@dataclass
class DedupConfig:
    """Exact and near-duplicate settings; bands/rows 0 = chosen from the threshold."""
    exact: bool = True
    near: bool = True
    threshold: float = 0.8      # Jaccard similarity of word-shingle sets
    shingle: int = 5            # words per shingle
    num_perm: int = 128         # MinHash signature length
    bands: int = 0
    rows: int = 0
    verify: bool = True         # confirm LSH candidates by estimated Jaccard >= threshold
    seed: int = 0
    lines: str = "off"          # web: drop every "line"/"paragraph" an earlier document already had
    lines_min_words: int = 50   # a page left with fewer words after that is dropped

    def validate(self) -> None:
        if self.lines not in LINE_UNITS:
            raise UserError(f"dedup.lines must be one of {', '.join(LINE_UNITS)}, got '{self.lines}'")


@dataclass
class Cluster:
    """A group of duplicates: their ids (kept one first) and how they were found."""
    ids: list[str]
    kind: str  # "exact" or "near"

    @property
    def kept(self) -> str:
        return self.ids[0]


@dataclass
class DedupResult:
    keep: list[bool]
    clusters: list[Cluster] = field(default_factory=list)

    @property
    def removed(self) -> int:
        return sum(not k for k in self.keep)


def exact_key(text: str) -> bytes:
    """16-byte digest of the text, lower-cased with whitespace collapsed."""
    return hashlib.blake2b(_SPACE.sub(" ", text.lower()).strip().encode("utf-8"), digest_size=16).digest()


def fingerprint(text: str, cfg: DedupConfig, hasher: MinHasher | None) -> tuple[bytes, np.ndarray | None]:
    """What the index needs of one document: (exact key, MinHash signature or None)."""
    key = exact_key(text) if cfg.exact else b""
    sig = hasher.signature(text) if (cfg.near and hasher is not None) else None
    return key, sig


class _UnionFind:
    def __init__(self) -> None:
        self.parent: list[int] = []

    def add(self) -> None:
        self.parent.append(len(self.parent))

    def find(self, x: int) -> int:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]  # path halving
            x = self.parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


class Deduplicator:
    """Streaming duplicate index: `add` documents in order, then `finish` for the keep mask."""

    MAX_BUCKET_CHECKS = 32  # verify against at most this many bucket members: bounds the cost of big clusters

    def __init__(self, cfg: DedupConfig):
        self.cfg = cfg
        self.hasher = MinHasher(cfg.num_perm, cfg.shingle, cfg.seed) if cfg.near else None
        if cfg.bands and cfg.rows:
            self.bands, self.rows = cfg.bands, cfg.rows
        else:
            self.bands, self.rows = choose_bands(cfg.threshold, cfg.num_perm)
        if self.bands * self.rows > cfg.num_perm:
            raise UserError(f"dedup bands*rows = {self.bands * self.rows} exceeds num_perm = {cfg.num_perm}; "
                            f"lower bands or rows, or leave them 0 to choose from the threshold")
        self.ids: list[str] = []
        self.lengths: list[int] = []
        self.keys: list[bytes] = []
        self.sigs: list[np.ndarray] = []
        self._sig_of: dict[int, int] = {}  # document index -> row in sigs (exact copies have none)
        self._exact: dict[bytes, int] = {}
        self._buckets: list[dict[bytes, list[int]]] = [{} for _ in range(self.bands)]
        self._uf = _UnionFind()

    def add(self, doc_id: str, length: int, key: bytes, sig: np.ndarray | None) -> None:
        i = len(self.ids)
        self.ids.append(doc_id)
        self.lengths.append(length)
        self.keys.append(key)
        self._uf.add()
        if self.cfg.exact:
            j = self._exact.setdefault(key, i)
            if j != i:
                self._uf.union(i, j)
                return  # an exact copy adds nothing new to the near-duplicate index
        if sig is None:
            return
        self._sig_of[i] = len(self.sigs)
        self.sigs.append(sig)
        for band, table in enumerate(self._buckets):
            chunk = sig[band * self.rows : (band + 1) * self.rows].tobytes()
            members = table.setdefault(chunk, [])
            for j in members[: self.MAX_BUCKET_CHECKS]:
                if self._uf.find(j) == self._uf.find(i):
                    break
                if not self.cfg.verify or estimate_jaccard(sig, self.sigs[self._sig_of[j]]) >= self.cfg.threshold:
                    self._uf.union(i, j)
                    break
            members.append(i)

    def finish(self) -> DedupResult:
        """Clusters (size >= 2) and which documents to keep: the longest of each cluster."""
        groups: dict[int, list[int]] = {}
        for i in range(len(self.ids)):
            groups.setdefault(self._uf.find(i), []).append(i)
        keep = [True] * len(self.ids)
        clusters = []
        for root, members in sorted(groups.items()):
            if len(members) < 2:
                continue
            best = max(members, key=lambda m: (self.lengths[m], -m))
            for m in members:
                keep[m] = m == best
            ordered = [best] + [m for m in members if m != best]
            kind = "exact" if self.cfg.exact and len({self.keys[m] for m in members}) == 1 else "near"
            clusters.append(Cluster([self.ids[m] for m in ordered], kind))
        return DedupResult(keep, clusters)


class LineDeduplicator:
    """Exact dedup of lines (or paragraphs) across documents, C4-style: the first document to
    have a line keeps it, every later copy is cut. Menus, footers and cookie banners repeat on
    every page of a site and survive page-level dedup; this removes them, line by line.

    Keys are 8-byte digests of the lower-cased, space-collapsed line (~60 bytes a unique line
    in the set), so memory grows with the distinct lines of the corpus, not its size.

    >>> d = LineDeduplicator("line")
    >>> d.strip("Home | Shop\\nFirst page text."), d.strip("Home | Shop\\nSecond page text.")
    ('Home | Shop\\nFirst page text.', 'Second page text.')
    >>> d.chars_removed, d.chars_in
    (11, 57)
    """

    def __init__(self, unit: str = "line"):
        if unit not in ("line", "paragraph"):
            raise UserError(f"line dedup unit must be line or paragraph, got '{unit}'")
        self.sep = "\n" if unit == "line" else "\n\n"
        self.seen: set[bytes] = set()
        self.chars_in = 0
        self.chars_removed = 0

    def strip(self, text: str) -> str:
        """The text without the lines an earlier document had; remembers this one's."""
        kept = []
        parts = re.split(r"\n\s*\n", text) if self.sep == "\n\n" else text.split("\n")
        for part in parts:
            norm = _SPACE.sub(" ", part.lower()).strip()
            if not norm:
                continue
            key = hashlib.blake2b(norm.encode("utf-8"), digest_size=8).digest()
            if key in self.seen:
                self.chars_removed += len(part)
            else:
                self.seen.add(key)
                kept.append(part)
        self.chars_in += len(text)
        return self.sep.join(kept)

    @property
    def removed_fraction(self) -> float:
        return self.chars_removed / self.chars_in if self.chars_in else 0.0
