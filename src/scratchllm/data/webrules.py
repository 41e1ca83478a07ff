"""The web steps one document goes through on a worker, in order, each timed: PII scrubbing
(part of cleaning), then the filters URL block list -> C4 (which also trims lines) -> Gopher ->
FineWeb -> quality classifier. The first filter that fails names the drop.

`WebRules` is what a recipe or the `--rules` flag switches on; `prepared()` turns it into what
workers use (compiled patterns, the bad-word set, the loaded model), once per process.

>>> rules = WebRules(c4=C4Config(enabled=True, bad_words=[], min_sentences=1)).prepared()
>>> screen("Menu\\nThe page says one thing.", "", None, rules)
('The page says one thing.', None)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from scratchllm.data.filters import Drop, FilterConfig, check
from scratchllm.data.pii import parse_kinds, scrub
from scratchllm.data.quality import QualityConfig, QualityModel, load_model
from scratchllm.data.webfilters import C4Config, FineWebConfig, UrlConfig, c4_lines, fineweb_rules, url_blocked
from scratchllm.errors import UserError

RULE_NAMES = ("gopher", "c4", "fineweb", "quality", "urls")


@dataclass
class WebRules:
    """Which web steps run (a config's `enabled` false, or None, skips it)."""
    pii: tuple[str, ...] = ()
    urls: UrlConfig | None = None
    c4: C4Config | None = None
    fineweb: FineWebConfig | None = None
    quality: QualityConfig | None = None
    # filled by prepared(): what the rules need at run time
    _urls: tuple | None = None
    _bad_words: frozenset | None = None
    _model: QualityModel | None = None
    _ready: bool = field(default=False, repr=False)

    @property
    def filters(self) -> bool:
        return any(c is not None and c.enabled for c in (self.urls, self.c4, self.fineweb, self.quality))

    def prepared(self) -> "WebRules":
        if self._ready:
            return self
        if self.urls and self.urls.enabled:
            self._urls = self.urls.compiled()
        if self.c4 and self.c4.enabled:
            self._bad_words = self.c4.word_set()
        if self.quality and self.quality.enabled:
            if not self.quality.model:
                raise UserError("the quality filter needs a model; pass --quality-model FILE (train one with "
                                "`scratchllm data quality-train`) or set quality.model in the recipe")
            self._model = load_model(self.quality.model)
        self._ready = True
        return self


def rules_from_names(spec: str, pii: str = "none", quality_model: str = "", threshold: float = 0.5,
                     block_domains: list[str] | None = None, blocklist: str = "") -> tuple[bool, WebRules]:
    """`--rules gopher,c4,fineweb,quality` -> (Gopher on?, WebRules). URL rules join when given."""
    names = [n.strip().lower() for n in spec.split(",") if n.strip()]
    bad = [n for n in names if n not in RULE_NAMES]
    if bad:
        raise UserError(f"unknown filter rule {', '.join(bad)}; use a comma list of {', '.join(RULE_NAMES)}")
    urls = UrlConfig(enabled=bool(block_domains or blocklist) or "urls" in names,
                     blocked_domains=list(block_domains or []), blocklist_file=blocklist)
    return "gopher" in names, WebRules(
        pii=parse_kinds(pii), urls=urls,
        c4=C4Config(enabled="c4" in names), fineweb=FineWebConfig(enabled="fineweb" in names),
        quality=QualityConfig(enabled="quality" in names, model=quality_model, threshold=threshold))


def scrub_pii(text: str, rules: WebRules | None, t=None) -> tuple[str, dict]:
    """The cleaning-time step: PII replaced (counts per kind), timed as stage 'pii'."""
    if not rules or not rules.pii:
        return text, {}
    t0 = time.process_time()
    text, counts = scrub(text, rules.pii)
    if t is not None:
        t.add("pii", time.process_time() - t0, len(text))
    return text, counts


def screen(text: str, url: str, gopher: FilterConfig | None, rules: WebRules | None, t=None) -> tuple[str, Drop | None]:
    """Run the enabled filters in order; returns the (C4-trimmed) text and the first Drop or None."""

    def timed(stage: str, fn, nbytes: int):
        t0 = time.process_time()
        out = fn()
        if t is not None:
            t.add(stage, time.process_time() - t0, nbytes)
        return out

    size = len(text.encode("utf-8"))
    r = rules.prepared() if rules else None
    if r and r.urls and r.urls.enabled:
        drop = timed("filter_urls", lambda: url_blocked(url, r.urls, r._urls), size)
        if drop:
            return text, drop
    if r and r.c4 and r.c4.enabled:
        page, drop = timed("filter_c4", lambda: c4_lines(text, r.c4, r._bad_words), size)
        if drop:
            return text, drop  # the page as it came, for the report's examples
        text = page
    if gopher is not None and gopher.enabled:
        drop = timed("filter_gopher", lambda: check(text, gopher), len(text.encode("utf-8")))
        if drop:
            return text, drop
    if r and r.fineweb and r.fineweb.enabled:
        drop = timed("filter_fineweb", lambda: fineweb_rules(text, r.fineweb), len(text.encode("utf-8")))
        if drop:
            return text, drop
    if r and r._model is not None:
        score = timed("filter_quality", lambda: r._model.score(text), len(text.encode("utf-8")))
        if score < r.quality.threshold:
            return text, Drop("quality_score", round(score, 4))
    return text, None
