"""Byte-level BPE: the `Tokenizer` (encode, decode, train, save, load), with tiktoken's semantics.

A tokenizer is an ordered list of byte strings (`ranks`: token bytes -> id; a lower id was
merged earlier), a split regex, and special tokens. Encoding cuts text into pieces with the
regex, then merges each piece's bytes: repeatedly join the adjacent pair whose joined bytes
have the lowest rank, until no adjacent pair is a token. This is tiktoken's algorithm, so a
tokenizer loaded from OpenAI's files gives OpenAI's ids exactly.

>>> tok = Tokenizer.train(["aaabdaaabac"] * 3, vocab_size=259, pattern="gpt2", special_tokens=[],
...                       progress=False)
>>> [tok.decode_bytes([i]) for i in range(256, 259)]
[b'aa', b'ab', b'aaab']
>>> tok.encode("aaabdaaabac")
[258, 100, 258, 97, 99]
>>> tok.decode(tok.encode("hello world"))
'hello world'
"""

from __future__ import annotations

import heapq
import os
import warnings
from typing import AbstractSet, Collection, Iterable, Literal

import regex

from scratchllm.errors import UserError
from scratchllm.tokenizer import bpe_json
from scratchllm.tokenizer.patterns import fix_surrogates, has_newer_chars, resolve_pattern, split_like_tiktoken
from scratchllm.tokenizer.special import DEFAULT_SPECIAL_TOKENS
from scratchllm.utils.atomic import atomic_write_text
from scratchllm.utils.files import read_json

CACHE_SIZE = 200_000  # pieces remembered by the pre-token cache (it is emptied when full)
LONG_PIECE = 256      # bytes; longer pieces are merged with a heap instead of rescanning all pairs


def bpe_merge(ranks: dict[bytes, int], piece: bytes) -> list[int]:
    """Ids of one pre-token: merge the adjacent pair with the lowest-ranked join until none is left.

    >>> ranks = {bytes([i]): i for i in range(256)} | {b"ab": 256, b"abc": 257}
    >>> bpe_merge(ranks, b"abcab")
    [257, 256]
    """
    # subtle: a piece that is itself a token is that token, as in tiktoken (its fast path).
    whole = ranks.get(piece)
    if whole is not None:
        return [whole]
    if len(piece) > LONG_PIECE:
        return _bpe_merge_heap(ranks, piece)
    parts = [piece[i:i + 1] for i in range(len(piece))]
    while len(parts) > 1:
        best_rank, best_i = None, -1
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            # strict '<': on equal ranks the leftmost pair wins, as in tiktoken
            if r is not None and (best_rank is None or r < best_rank):
                best_rank, best_i = r, i
        if best_i < 0:
            break
        parts[best_i:best_i + 2] = [parts[best_i] + parts[best_i + 1]]
    return [ranks[p] for p in parts]


def _bpe_merge_heap(ranks: dict[bytes, int], piece: bytes) -> list[int]:
    """`bpe_merge` in O(n log n) for long pieces (a run of 100k spaces would be O(n^2) otherwise).

    Parts are kept as a linked list of start offsets; a heap holds (rank, start) of candidate
    pairs, so the lowest rank wins and, among equal ranks, the leftmost, exactly as above.
    """
    n = len(piece)
    nxt = list(range(1, n + 1))  # nxt[i]: start of the part after the one starting at i
    prv = list(range(-1, n - 1))
    alive = [True] * n
    heap = [(r, i) for i in range(n - 1) if (r := ranks.get(piece[i:i + 2])) is not None]
    heapq.heapify(heap)
    while heap:
        r, i = heapq.heappop(heap)
        if not alive[i] or nxt[i] >= n:
            continue
        j = nxt[i]
        if ranks.get(piece[i:nxt[j]]) != r:
            continue  # stale: a neighbour changed since this entry was pushed
        alive[j] = False
        nxt[i] = nxt[j]
        if nxt[i] < n:
            prv[nxt[i]] = i
        for a in (prv[i], i):  # the two pairs that now touch the merged part
            if a >= 0 and nxt[a] < n and (r2 := ranks.get(piece[a:nxt[nxt[a]]])) is not None:
                heapq.heappush(heap, (r2, a))
    out, i = [], 0
    while i < n:
        out.append(ranks[piece[i:nxt[i]]])
        i = nxt[i]
    return out


class Tokenizer:
    """A byte-level BPE tokenizer: `ranks` (bytes -> id), a split regex and special tokens."""

    def __init__(self, ranks: dict[bytes, int], pattern: str = "gpt4",
                 special_tokens: dict[str, int] | None = None, name: str = "",
                 backend: Literal["python", "tiktoken"] = "python") -> None:
        self.ranks = dict(ranks)
        self.pattern = resolve_pattern(pattern)
        self.special_tokens = dict(special_tokens or {})
        self.name = name
        self._check_ids()
        self._decoder = {i: b for b, i in self.ranks.items()}
        self._decoder.update({i: s.encode("utf-8") for s, i in self.special_tokens.items()})
        self._vocab_size = max(self._decoder) + 1
        self._regex = regex.compile(self.pattern)
        self._cache: dict[str, list[int]] = {}
        self._special_regex_cache: dict[frozenset, regex.Pattern] = {}
        self._tiktoken = None
        self.backend = backend

    def _check_ids(self) -> None:
        ids = set(self.ranks.values())
        if len(ids) != len(self.ranks):
            raise UserError("the vocabulary maps two byte strings to one id; the tokenizer file is corrupt, re-create it")
        clash = ids & set(self.special_tokens.values())
        if clash:
            raise UserError(f"special token id {min(clash)} is also a regular token id; give special tokens unused ids")
        missing = [b for b in range(256) if bytes([b]) not in self.ranks]
        if missing:
            raise UserError(f"the vocabulary lacks the single byte {missing[0]:#04x}; a byte-level BPE "
                            "needs all 256 bytes as tokens")

    # ---- sizes and well-known ids ----
    @property
    def vocab_size(self) -> int:
        """Number of ids, special tokens included (max id + 1)."""
        return self._vocab_size

    @property
    def eot_id(self) -> int | None:
        """Id of `<|endoftext|>` (the document separator), or None if this tokenizer has none."""
        return self.special_tokens.get("<|endoftext|>")

    @property
    def backend(self) -> str:
        return self._backend

    @backend.setter
    def backend(self, value: str) -> None:
        if value not in ("python", "tiktoken"):
            raise UserError(f"unknown tokenizer backend {value!r}; use 'python' or 'tiktoken'")
        if value == "tiktoken":
            self.to_tiktoken()  # fail now, with a clear message, if tiktoken is missing
        self._backend = value

    # ---- encoding ----
    def _encode_piece(self, piece: str) -> list[int]:
        ids = self._cache.get(piece)
        if ids is None:
            ids = bpe_merge(self.ranks, piece.encode("utf-8"))
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()  # a bound on memory; hot pieces come back at once
            self._cache[piece] = ids
        return ids

    def _encode_chunk(self, text: str) -> list[int]:
        out: list[int] = []
        cache = self._cache
        for piece in self._regex.findall(text):
            ids = cache.get(piece)  # inlined cache hit: most pieces of natural text are repeats
            if ids is None:
                # isascii() is O(1); a character newer than tiktoken's Unicode tables is rare and
                # changes the split, so the whole text is split again the way tiktoken does it
                if not piece.isascii() and has_newer_chars(piece):
                    return [i for p in split_like_tiktoken(self._regex, text)
                            for i in (bpe_merge(self.ranks, p.encode("utf-8")) if has_newer_chars(p)
                                      else self._encode_piece(p))]
                ids = self._encode_piece(piece)
            out.extend(ids)
        return out

    def encode_ordinary(self, text: str) -> list[int]:
        """Ids of `text`, special-token strings treated as plain text (tiktoken's `encode_ordinary`)."""
        if self._backend == "tiktoken":
            return self.to_tiktoken().encode_ordinary(text)
        return self._encode_chunk(fix_surrogates(text))

    def _special_regex(self, tokens: AbstractSet[str]) -> regex.Pattern:
        key = frozenset(tokens)
        pat = self._special_regex_cache.get(key)
        if pat is None:
            # longest first, so a token that is a prefix of another never wins by accident
            alts = sorted(key, key=lambda s: (-len(s), s))
            pat = regex.compile("(" + "|".join(regex.escape(s) for s in alts) + ")")
            self._special_regex_cache[key] = pat
        return pat

    def _allowed_specials(self, text: str, allowed_special, disallowed_special) -> set[str]:
        """The special tokens to honour in `text`; a UserError if it holds a disallowed one."""
        if allowed_special == "all":
            allowed_special = self.special_tokens.keys()
        if disallowed_special == "all":
            disallowed_special = self.special_tokens.keys() - set(allowed_special)
        if disallowed_special:
            m = self._special_regex(set(disallowed_special)).search(text)
            if m:
                raise UserError(
                    f"text contains the special token {m.group()!r}; pass allowed_special={{{m.group()!r}}} "
                    "(or 'all') to encode it as a special token, or disallowed_special=() to encode it as text")
        return set(allowed_special) & self.special_tokens.keys()

    def encode(self, text: str, *, allowed_special: Literal["all"] | AbstractSet[str] = frozenset(),
               disallowed_special: Literal["all"] | Collection[str] = "all") -> list[int]:
        """Ids of `text` with tiktoken's special-token rules.

        Special-token strings in `allowed_special` ("all" or a set) become their ids; those in
        `disallowed_special` ("all" = every special not allowed) raise a UserError; pass
        `disallowed_special=()` to encode them as ordinary text.

        >>> tok = Tokenizer({bytes([i]): i for i in range(256)}, "gpt2", {"<|endoftext|>": 256})
        >>> tok.encode("a<|endoftext|>", allowed_special="all")
        [97, 256]
        >>> len(tok.encode("<|endoftext|>", disallowed_special=()))
        13
        """
        allowed = self._allowed_specials(text, allowed_special, disallowed_special)
        if self._backend == "tiktoken":
            return self.to_tiktoken().encode(text, allowed_special=allowed, disallowed_special=())
        text = fix_surrogates(text)
        if not allowed:
            return self._encode_chunk(text)
        out: list[int] = []
        # split keeps the captured special tokens at odd positions
        for i, part in enumerate(self._special_regex(allowed).split(text)):
            if i % 2:
                out.append(self.special_tokens[part])
            elif part:
                out.extend(self._encode_chunk(part))
        return out

    def encode_batch(self, texts: list[str], *, num_workers: int | None = None, **kwargs) -> list[list[int]]:
        """`encode` of each text, spread over `num_workers` processes (default: all cores) for big batches."""
        workers = num_workers or os.cpu_count() or 1
        if self._backend == "tiktoken":
            allowed = set()
            for t in texts:  # tiktoken would raise its own ValueError; check here for our message
                allowed |= self._allowed_specials(t, kwargs.get("allowed_special", frozenset()),
                                                  kwargs.get("disallowed_special", "all"))
            return self.to_tiktoken().encode_batch(texts, num_threads=workers, allowed_special=allowed,
                                                   disallowed_special=())
        if workers <= 1 or len(texts) < 2 * workers or sum(map(len, texts)) < 1_000_000:
            return [self.encode(t, **kwargs) for t in texts]
        # CLI speed: multiprocessing loads only for big batches (`scratchllm --help` imports this package)
        from scratchllm.tokenizer.parallel import parallel_encode

        return parallel_encode(self, texts, workers, kwargs)

    # ---- decoding ----
    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """The bytes of `ids` (a token may hold part of a UTF-8 character)."""
        try:
            return b"".join(self._decoder[int(i)] for i in ids)
        except KeyError as e:
            raise UserError(f"token id {e.args[0]} is outside this tokenizer's vocabulary "
                            f"(0..{self.vocab_size - 1}); check that model and tokenizer belong together") from None

    def decode(self, ids: Iterable[int], errors: str = "replace") -> str:
        """Text of `ids`; bytes that are not valid UTF-8 become U+FFFD, as in tiktoken."""
        return self.decode_bytes(ids).decode("utf-8", errors=errors)

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes of one token."""
        return self.decode_bytes([token_id])

    # ---- training, files, other libraries ----
    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int, pattern: str = "gpt4",
              special_tokens: Iterable[str] | None = None, *, num_workers: int | None = None,
              progress: bool = True, name: str = "") -> "Tokenizer":
        """Learn merges on `texts` until `vocab_size` ids (special tokens included) are used.

        Special tokens (default: `DEFAULT_SPECIAL_TOKENS`, `<|endoftext|>` first) take the last ids.
        """
        # CLI speed: training pulls in tqdm and multiprocessing, and `scratchllm --help` imports this
        # package (tokenizer/cli.py lives in it); only training pays for them
        from scratchllm.tokenizer.train import train_bpe

        specials = list(DEFAULT_SPECIAL_TOKENS if special_tokens is None else special_tokens)
        if len(set(specials)) != len(specials):
            raise UserError("a special token is listed twice; list each special token once")
        pat = resolve_pattern(pattern)
        if vocab_size < 256 + len(specials):
            raise UserError(f"vocab_size {vocab_size} is too small: 256 byte tokens + {len(specials)} "
                            f"special tokens need at least {256 + len(specials)}")
        vocab = train_bpe(texts, vocab_size - len(specials), pat, specials,
                          num_workers=num_workers, progress=progress)
        if len(vocab) + len(specials) < vocab_size:
            warnings.warn(f"the text ran out of pairs to merge: vocabulary has {len(vocab) + len(specials)} ids, "
                          f"not {vocab_size}; train on more text for a larger vocabulary", stacklevel=2)
        ranks = {b: i for i, b in enumerate(vocab)}
        return cls(ranks, pat, {s: len(vocab) + j for j, s in enumerate(specials)}, name=name)

    def save(self, path) -> None:
        """Write this tokenizer as our JSON (`"type": "bpe"`, see bpe_json.py), atomically."""
        atomic_write_text(path, bpe_json.dumps(self.ranks, self.pattern, self.special_tokens, self.name))

    @classmethod
    def from_dict(cls, d: dict, where: str = "tokenizer") -> "Tokenizer":
        """A Tokenizer from the parsed JSON that `save` writes; `where` names it in errors."""
        try:
            return cls(**bpe_json.fields(d))
        except (KeyError, TypeError, ValueError, UnicodeEncodeError) as e:
            raise UserError(f"{where} is not a valid bpe tokenizer file ({type(e).__name__}: {e}); "
                            "re-create it") from None

    @classmethod
    def load(cls, path, backend: Literal["python", "tiktoken"] = "python") -> "Tokenizer":
        """Read a tokenizer saved by `save`."""
        d = read_json(path, "tokenizer file", "pass the path of a tokenizer JSON", "re-create it")
        if not isinstance(d, dict) or d.get("type") != "bpe":
            kind = d.get("type") if isinstance(d, dict) else None
            raise UserError(f"'{path}' is a {kind!r} tokenizer, not 'bpe'; use scratchllm.tokenizer.load_tokenizer")
        tok = cls.from_dict(d, f"'{path}'")
        tok.backend = backend
        return tok

    def to_tiktoken(self):
        """This tokenizer as a `tiktoken.Encoding` (same ids; built once, then reused)."""
        if self._tiktoken is None:
            try:  # optional dependency: tiktoken is the `fast` extra
                import tiktoken
            except ImportError:
                raise UserError("the tiktoken backend needs the tiktoken package; pip install tiktoken") from None
            self._tiktoken = tiktoken.Encoding(
                name=self.name or "scratchllm", pat_str=self.pattern,
                mergeable_ranks=self.ranks, special_tokens=self.special_tokens)
        return self._tiktoken

    def __getstate__(self) -> dict:
        # the compiled regexes, cache and tiktoken object are rebuilt, not pickled
        return {"ranks": self.ranks, "pattern": self.pattern, "special_tokens": self.special_tokens,
                "name": self.name, "backend": self._backend}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    def __repr__(self) -> str:
        return (f"Tokenizer(name={self.name!r}, vocab_size={self.vocab_size}, "
                f"special_tokens={len(self.special_tokens)})")
