"""Quality filters: the Gopher rules (Rae et al. 2021, "Scaling Language Models: Methods,
Analysis & Insights from Training Gopher", Appendix A), length bounds and language id.

A filter returns `None` to keep a document, or a `Drop(rule, value)` naming the first rule that
failed and the measured value, so every dropped document can be explained in the report.

Gopher quality rules (defaults = the paper's values):
  * 50 <= words <= 100,000 (raise `max_words` for books: a novel has 50k-200k words);
  * mean word length in [3, 10] characters;
  * symbol-to-word ratio ("#" and "..." / "…" per word) <= 0.1;
  * <= 90% of lines start with a bullet; <= 30% of lines end with an ellipsis;
  * >= 80% of words contain a letter; >= 2 of the stop words the, be, to, of, and, that, have, with.
Gopher repetition rules (Table A1), all fractions of the document:
  * duplicate lines <= 0.30 of lines, and <= 0.20 of characters;
  * duplicate paragraphs <= 0.30 of paragraphs, and <= 0.20 of characters;
  * top 2/3/4-gram covers <= 0.20 / 0.18 / 0.16 of characters;
  * duplicated 5..10-grams cover <= 0.15, 0.14, 0.13, 0.12, 0.11, 0.10 of characters.
The n-gram rules are computed on the hashed lower-cased words of `textstats` (vectorized, so a
whole book costs milliseconds) with characters counted as the word characters they cover.

>>> cfg = FilterConfig(languages=[])
>>> check("It was the best of times, it was the worst of times; and we had everything before "
...       "us, we had nothing before us, we were all going direct to Heaven.", cfg)
Drop(rule='min_words', value=30)
>>> check("The morning was cold and the river ran high with the melting snow of the hills.",
...       FilterConfig(languages=[], min_words=10)) is None
True
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import regex

from scratchllm.data import langid
from scratchllm.data.textstats import ngram_hashes, words

STOP_WORDS = frozenset("the be to of and that have with".split())
_BULLETS = ("•", "●", "○", "■", "□", "▪", "▫", "◦", "‣", "⁃", "-", "*", "·")
_ELLIPSIS = ("...", "…")
# a whitespace-separated token with no letter in it ("--", "1850", "*"); counted in one C-level pass
_NO_ALPHA_TOKEN = regex.compile(r"(?<!\S)[^\s\p{L}]+(?!\S)")


@dataclass
class FilterConfig:
    """Thresholds of every quality rule; set a rule's bound to 0 (or `enabled=false`) to turn it off."""
    enabled: bool = True
    min_chars: int = 0
    max_chars: int = 0
    min_words: int = 50
    max_words: int = 100_000
    min_mean_word_length: float = 3.0
    max_mean_word_length: float = 10.0
    max_symbol_word_ratio: float = 0.1
    max_bullet_lines: float = 0.9
    max_ellipsis_lines: float = 0.3
    min_alpha_words: float = 0.8
    min_stop_words: int = 2
    max_dup_line_frac: float = 0.30
    max_dup_para_frac: float = 0.30
    max_dup_line_char_frac: float = 0.20
    max_dup_para_char_frac: float = 0.20
    max_top_ngram_char_frac: dict = field(default_factory=lambda: {"2": 0.20, "3": 0.18, "4": 0.16})
    max_dup_ngram_char_frac: dict = field(default_factory=lambda: {
        "5": 0.15, "6": 0.14, "7": 0.13, "8": 0.12, "9": 0.11, "10": 0.10})
    languages: list[str] = field(default_factory=lambda: ["en"])  # empty: no language filter
    min_language_score: float = 0.2


@dataclass
class Drop:
    """Why a document was dropped: the rule's name and the value that broke it."""
    rule: str
    value: float


def length_rules(text: str, cfg: FilterConfig) -> Drop | None:
    n = len(text)
    if cfg.min_chars and n < cfg.min_chars:
        return Drop("min_chars", n)
    if cfg.max_chars and n > cfg.max_chars:
        return Drop("max_chars", n)
    return None


def gopher_quality(text: str, cfg: FilterConfig) -> Drop | None:
    """The Gopher quality rules on whitespace-separated words and on lines."""
    tokens = text.split()
    n = len(tokens)
    if cfg.min_words and n < cfg.min_words:
        return Drop("min_words", n)
    if cfg.max_words and n > cfg.max_words:
        return Drop("max_words", n)
    if n == 0:
        return Drop("min_words", 0)
    mean_len = sum(map(len, tokens)) / n
    if cfg.min_mean_word_length and mean_len < cfg.min_mean_word_length:
        return Drop("min_mean_word_length", round(mean_len, 3))
    if cfg.max_mean_word_length and mean_len > cfg.max_mean_word_length:
        return Drop("max_mean_word_length", round(mean_len, 3))
    symbols = text.count("#") + text.count("...") + text.count("…")
    if cfg.max_symbol_word_ratio and symbols / n > cfg.max_symbol_word_ratio:
        return Drop("max_symbol_word_ratio", round(symbols / n, 4))
    lines = [ln.strip() for ln in text.split("\n") if ln.strip()]
    if lines:
        bullets = sum(ln.startswith(_BULLETS) for ln in lines) / len(lines)
        if cfg.max_bullet_lines and bullets > cfg.max_bullet_lines:
            return Drop("max_bullet_lines", round(bullets, 4))
        ellipsis = sum(ln.endswith(_ELLIPSIS) for ln in lines) / len(lines)
        if cfg.max_ellipsis_lines and ellipsis > cfg.max_ellipsis_lines:
            return Drop("max_ellipsis_lines", round(ellipsis, 4))
    if cfg.min_alpha_words:
        alpha = 1.0 - len(_NO_ALPHA_TOKEN.findall(text)) / n
        if alpha < cfg.min_alpha_words:
            return Drop("min_alpha_words", round(alpha, 4))
    if cfg.min_stop_words:
        # subtle: strip punctuation so "the," counts, and stop early: books have thousands.
        seen = 0
        for t in tokens:
            if t.lower().strip(".,;:!?\"'()[]") in STOP_WORDS:
                seen += 1
                if seen >= cfg.min_stop_words:
                    break
        if seen < cfg.min_stop_words:
            return Drop("min_stop_words", seen)
    return None


def _dup_fracs(parts: list[str]) -> tuple[float, float]:
    """Fraction of items that repeat an earlier one, and the fraction of characters they hold."""
    if not parts:
        return 0.0, 0.0
    counts = Counter(parts)
    dup_items = sum(c - 1 for c in counts.values())
    dup_chars = sum(len(p) * (c - 1) for p, c in counts.items())
    total_chars = sum(len(p) for p in parts) or 1
    return dup_items / len(parts), dup_chars / total_chars


def gopher_repetition(text: str, cfg: FilterConfig) -> Drop | None:
    """Duplicate lines/paragraphs and n-gram repetition (Gopher Table A1)."""
    lines = [ln.strip() for ln in text.split("\n") if ln.strip()]
    line_frac, line_chars = _dup_fracs(lines)
    if cfg.max_dup_line_frac and line_frac > cfg.max_dup_line_frac:
        return Drop("max_dup_line_frac", round(line_frac, 4))
    if cfg.max_dup_line_char_frac and line_chars > cfg.max_dup_line_char_frac:
        return Drop("max_dup_line_char_frac", round(line_chars, 4))
    paras = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    para_frac, para_chars = _dup_fracs(paras)
    if cfg.max_dup_para_frac and para_frac > cfg.max_dup_para_frac:
        return Drop("max_dup_para_frac", round(para_frac, 4))
    if cfg.max_dup_para_char_frac and para_chars > cfg.max_dup_para_char_frac:
        return Drop("max_dup_para_char_frac", round(para_chars, 4))
    if not (cfg.max_top_ngram_char_frac or cfg.max_dup_ngram_char_frac):
        return None
    w = words(text)
    total = float(w.lengths.sum()) or 1.0
    for n_str, limit in sorted(cfg.max_top_ngram_char_frac.items(), key=lambda kv: int(kv[0])):
        n = int(n_str)
        g = ngram_hashes(w.hashes, n)
        if g.size == 0:
            continue
        order = np.argsort(g)
        s = g[order]
        starts = np.flatnonzero(np.concatenate([[True], s[1:] != s[:-1]]))
        counts = np.diff(np.concatenate([starts, [len(s)]]))
        top = int(np.argmax(counts))
        if counts[top] < 2:
            continue
        first = int(order[starts[top]])
        # characters of the most frequent n-gram times its count, as Gopher defines it
        frac = counts[top] * float(w.lengths[first : first + n].sum()) / total
        if frac > limit:
            return Drop(f"max_top_{n}gram_char_frac", round(float(frac), 4))
    limits = sorted((int(n), limit) for n, limit in cfg.max_dup_ngram_char_frac.items())
    for i, (n, limit) in enumerate(limits):
        frac = dup_ngram_char_frac(w.hashes, w.lengths, n)
        if frac > limit:
            return Drop(f"max_dup_{n}gram_char_frac", round(frac, 4))
        # subtle: a repeated longer n-gram contains repeated shorter ones, so the covered fraction
        # only falls as n grows; once it is under every remaining limit, no longer n can fail.
        if all(frac <= lim for _, lim in limits[i + 1 :]):
            break
    return None


def dup_ngram_char_frac(hashes: np.ndarray, lengths: np.ndarray, n: int) -> float:
    """Fraction of word characters inside n-grams that occur more than once (each word counted once)."""
    g = ngram_hashes(hashes, n)
    if g.size == 0:
        return 0.0
    # sort once (np.unique is several times slower here); equal neighbours are repeats
    order = np.argsort(g)
    s = g[order]
    same = s[1:] == s[:-1]
    dup_sorted = np.zeros(len(g), dtype=np.int32)
    dup_sorted[1:] |= same
    dup_sorted[:-1] |= same
    dup = np.empty_like(dup_sorted)
    dup[order] = dup_sorted
    # word j is covered if any n-gram starting in [j-n+1, j] is duplicated: a sliding-window sum
    window = np.convolve(dup, np.ones(n, dtype=np.int32))[: len(hashes)]
    covered = window > 0
    return float(lengths[covered].sum()) / (float(lengths.sum()) or 1.0)


def check(text: str, cfg: FilterConfig) -> Drop | None:
    """Run every enabled rule, cheapest first; return the first failure or None (keep)."""
    if not cfg.enabled:
        return None
    for rule in (length_rules, gopher_quality):
        drop = rule(text, cfg)
        if drop:
            return drop
    if cfg.languages:
        lang, score = langid.identify(text)
        if lang not in cfg.languages:
            return Drop(f"language:{lang}", round(score, 4))
        if score < cfg.min_language_score:
            return Drop("min_language_score", round(score, 4))
    return gopher_repetition(text, cfg)
