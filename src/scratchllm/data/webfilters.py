"""Web-page filters: C4's rules (Raffel et al. 2020, section 2.2), FineWeb's (Penedo et al. 2024,
section 3.3) and URL block lists. Like `filters.py`, every rule is a switch with its threshold
and a dropped page returns `Drop(rule, value)`, so the report can explain it.

C4 works on lines first, then on the page that is left (`c4_lines`):
  * a line is kept only if it ends in terminal punctuation (. ! ? ") and has >= 3 words, no
    word over 1,000 characters, no "javascript" (cookie/JS notices) and no policy boilerplate
    ("terms of use", "privacy policy", "uses cookies", ...); Wikipedia-style citation marks
    "[1]" / "[edit]" are cut out of lines;
  * the page is dropped if any line says "lorem ipsum", any kept line holds a curly brace
    (code), a bad word occurs, or fewer than 5 sentences remain.
FineWeb's three page rules (`fineweb_rules`, datatrove's FineWebQualityFilter):
  * lines ending in punctuation <= 12% of lines: drop (menus, lists, tables);
  * lines of <= 30 characters >= 67% of lines: drop;
  * characters in lines that repeat an earlier line >= 1% of all characters: drop;
  * newlines per word > 0.3: drop (a list, one item a line).
URL rules (`url_blocked`): a domain on the list blocks itself and its subdomains; a pattern is
a regex searched in the whole URL.

>>> text, drop = c4_lines("Home | About\\nThe river ran high. It was cold! Snow fell. We stayed in. "
...                       "Night came.\\nAccept our privacy policy.", C4Config(bad_words=[]))
>>> text, drop
('The river ran high. It was cold! Snow fell. We stayed in. Night came.', None)
>>> fineweb_rules("Home\\nNews\\nSport\\nWeather", FineWebConfig())
Drop(rule='fineweb_line_punct_ratio', value=0.0)
>>> url_blocked("https://ads.spam.example/x", UrlConfig(blocked_domains=["spam.example"]))
Drop(rule='url_domain', value=1)
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from scratchllm.data.filters import Drop
from scratchllm.errors import UserError

TERMINAL = (".", "!", "?", '"')
# FineWeb's END_PUNCTUATION: terminal marks plus closing quotes and the ellipsis
FINEWEB_END = (".", "?", "!", '"', "'", "”", "’", "…", ")", ";", ":")
POLICY = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")
# A short default; C4 used the ~400-word LDNOOBW list: point `bad_words_file` at it. Words that
# are also placeholders in technical text ("xxx" in the Python docs) are left out on purpose.
DEFAULT_BAD_WORDS = ("fuck", "fucking", "shit", "cunt", "porn", "porno", "pussy", "blowjob", "dildo",
                     "milf", "hentai", "nigger", "faggot")
_CITATION = re.compile(r"\[\d+\]|\[edit\]|\[citation needed\]", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*(?=\s|$)")
_WORD = re.compile(r"\w+")


@dataclass
class C4Config:
    """C4's line and page rules; each bound 0 / switch false turns that rule off."""
    enabled: bool = False
    terminal_punct: bool = True       # keep only lines ending in . ! ? "
    min_words_per_line: int = 3
    max_word_length: int = 1000
    min_sentences: int = 5
    lorem_ipsum: bool = True          # drop the page
    javascript: bool = True           # drop the line
    curly_braces: bool = True         # drop the page
    policy: bool = True               # drop the line
    citations: bool = True            # cut "[1]", "[edit]" out of lines
    bad_words: list[str] = field(default_factory=lambda: list(DEFAULT_BAD_WORDS))
    bad_words_file: str = ""          # one word a line, added to bad_words (e.g. LDNOOBW's "en")

    def word_set(self) -> frozenset[str]:
        words = {w.lower() for w in self.bad_words}
        if self.bad_words_file:
            try:
                text = Path(self.bad_words_file).read_text(encoding="utf-8")
            except OSError as e:
                raise UserError(f"cannot read c4.bad_words_file '{self.bad_words_file}' ({e.strerror}); "
                                f"fix the path or set it to \"\"") from None
            words |= {w.strip().lower() for w in text.splitlines() if w.strip()}
        return frozenset(words)


@dataclass
class FineWebConfig:
    """FineWeb's page rules (datatrove defaults); 0 turns a rule off."""
    enabled: bool = False
    min_line_punct_ratio: float = 0.12
    max_short_line_ratio: float = 0.67
    short_line_chars: int = 30
    max_dup_line_char_frac: float = 0.01
    max_newline_word_ratio: float = 0.3


@dataclass
class UrlConfig:
    """Block lists: domains (and their subdomains), regex patterns, and a file of either."""
    enabled: bool = False
    blocked_domains: list[str] = field(default_factory=list)
    blocked_patterns: list[str] = field(default_factory=list)
    blocklist_file: str = ""          # one domain a line; lines starting with "re:" are patterns

    def compiled(self) -> tuple[frozenset[str], list[re.Pattern]]:
        domains = [d.lower().strip(".") for d in self.blocked_domains]
        patterns = list(self.blocked_patterns)
        if self.blocklist_file:
            try:
                lines = Path(self.blocklist_file).read_text(encoding="utf-8").splitlines()
            except OSError as e:
                raise UserError(f"cannot read urls.blocklist_file '{self.blocklist_file}' ({e.strerror}); "
                                f"fix the path or set it to \"\"") from None
            for ln in (x.strip() for x in lines):
                if ln and not ln.startswith("#"):
                    (patterns.append(ln[3:]) if ln.startswith("re:") else domains.append(ln.lower().strip(".")))
        try:
            return frozenset(domains), [re.compile(p, re.IGNORECASE) for p in patterns]
        except re.error as e:
            raise UserError(f"URL block pattern '{e.pattern}' is not a valid regex ({e}); fix it") from None


def c4_lines(text: str, cfg: C4Config, bad_words: frozenset[str] | None = None) -> tuple[str, Drop | None]:
    """C4's cleaning of one page: the kept lines joined by newlines, or the rule that drops it."""
    kept = []
    for raw in text.split("\n"):
        line = _CITATION.sub("", raw).strip() if cfg.citations else raw.strip()
        if not line:
            continue
        low = line.lower()
        if cfg.lorem_ipsum and "lorem ipsum" in low:
            return "", Drop("c4_lorem_ipsum", 1)
        if cfg.terminal_punct and not line.endswith(TERMINAL):
            continue
        words = line.split()
        if cfg.min_words_per_line and len(words) < cfg.min_words_per_line:
            continue
        if cfg.max_word_length and max(map(len, words)) > cfg.max_word_length:
            continue
        if cfg.javascript and "javascript" in low:
            continue
        if cfg.policy and any(p in low for p in POLICY):
            continue
        if cfg.curly_braces and ("{" in line or "}" in line):
            return "", Drop("c4_curly_braces", 1)
        kept.append(line)
    page = "\n".join(kept)
    bad = bad_words if bad_words is not None else cfg.word_set()
    if bad:
        hits = sum(1 for w in _WORD.findall(page.lower()) if w in bad)
        if hits:
            return "", Drop("c4_bad_words", hits)
    sentences = len(_SENTENCE_END.findall(page))
    if cfg.min_sentences and sentences < cfg.min_sentences:
        return "", Drop("c4_min_sentences", sentences)
    return page, None


def fineweb_rules(text: str, cfg: FineWebConfig) -> Drop | None:
    """FineWeb's line-structure rules on a page (None: keep)."""
    lines = [ln for ln in text.split("\n") if ln.strip()]
    if not lines:
        return Drop("fineweb_line_punct_ratio", 0.0)
    punct = sum(ln.rstrip().endswith(FINEWEB_END) for ln in lines) / len(lines)
    if cfg.min_line_punct_ratio and punct <= cfg.min_line_punct_ratio:
        return Drop("fineweb_line_punct_ratio", round(punct, 4))
    short = sum(len(ln) <= cfg.short_line_chars for ln in lines) / len(lines)
    if cfg.max_short_line_ratio and short >= cfg.max_short_line_ratio:
        return Drop("fineweb_short_line_ratio", round(short, 4))
    if cfg.max_dup_line_char_frac:
        counts = Counter(lines)
        dup_chars = sum(len(ln) * (c - 1) for ln, c in counts.items())
        frac = dup_chars / (len(text.replace("\n", "")) or 1)
        if frac >= cfg.max_dup_line_char_frac:
            return Drop("fineweb_dup_line_char_frac", round(frac, 4))
    n_words = len(text.split())
    ratio = text.count("\n") / (n_words or 1)
    if cfg.max_newline_word_ratio and ratio > cfg.max_newline_word_ratio:
        return Drop("fineweb_newline_word_ratio", round(ratio, 4))
    return None


def url_blocked(url: str, cfg: UrlConfig, compiled=None) -> Drop | None:
    """Drop a page whose URL's host is (a subdomain of) a blocked domain or matches a pattern."""
    if not url:
        return None
    domains, patterns = compiled if compiled is not None else cfg.compiled()
    host = (urlsplit(url).hostname or "").lower()
    parts = host.split(".")
    # "a.b.spam.example" is blocked by "spam.example" and "b.spam.example": test every suffix
    if any(".".join(parts[i:]) in domains for i in range(len(parts))):
        return Drop("url_domain", 1)
    for i, p in enumerate(patterns):
        if p.search(url):
            return Drop("url_pattern", i)
    return None
