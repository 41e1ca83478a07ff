"""A rule file: small declarative checks on a reply, each with a weight, that rank replies (`align pairs --rules`).

The file is TOML, one `[[rule]]` table per check; a reply's score is the sum of the weights of
the rules it passes (weight 1 unless given; a negative weight marks something to avoid):

    [[rule]]                      # the reply must match this regex (Python `re` syntax)
    kind = "require"
    pattern = "(?i)\\\\bbecause\\\\b"
    weight = 2

    [[rule]]                      # the reply must not match this regex
    kind = "forbid"
    pattern = "(?i)as an ai"

    [[rule]]                      # length bounds, in "chars" (the default) or "words"; min or max may be left out
    kind = "length"
    min = 20
    max = 400
    unit = "chars"

    [[rule]]                      # the reply, stripped of trailing whitespace, ends with one of these
    kind = "ends_with"
    any = [".", "!", "?"]

    [[rule]]                      # the reply parses as JSON (after stripping surrounding whitespace)
    kind = "json"
    weight = 3

Every rule may carry a `name` (shown in messages). A rule of an unknown kind, a key a kind does
not take, or a regex that does not compile is one `UserError` naming the rule's number. The
rules see the reply only, not the prompt: they say what a good reply looks like everywhere.

>>> rules = parse_rules({"rule": [{"kind": "forbid", "pattern": "sorry", "weight": 2},
...                               {"kind": "ends_with", "any": ["."]}]})
>>> [score_reply(rules, r) for r in ["Sure, here it is.", "sorry", "sorry."]]
[3.0, 0.0, 1.0]
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from scratchllm.errors import UserError
from scratchllm.utils.files import read_toml

# kind -> (the keys it takes besides kind/name/weight, the keys it needs)
KINDS: dict[str, tuple[set[str], set[str]]] = {
    "require": ({"pattern"}, {"pattern"}),
    "forbid": ({"pattern"}, {"pattern"}),
    "length": ({"min", "max", "unit"}, set()),
    "ends_with": ({"any"}, {"any"}),
    "json": (set(), set()),
}
COMMON = {"kind", "name", "weight"}


@dataclass
class Rule:
    name: str
    weight: float
    passes: Callable[[str], bool]


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _check(kind: str, spec: dict, where: str) -> Callable[[str], bool]:
    """The test of one rule: reply -> passes?"""
    if kind in ("require", "forbid"):
        if not isinstance(spec["pattern"], str):
            raise UserError(f"{where}: 'pattern' must be a string; write the regex in quotes")
        try:
            regex = re.compile(spec["pattern"])
        except re.error as e:
            raise UserError(f"{where}: pattern {spec['pattern']!r} is not a valid regex ({e}); fix it") from None
        return (lambda r: regex.search(r) is not None) if kind == "require" else (lambda r: regex.search(r) is None)
    if kind == "length":
        unit = spec.get("unit", "chars")
        if unit not in ("chars", "words"):
            raise UserError(f"{where}: unit {unit!r} is unknown; use \"chars\" or \"words\"")
        low, high = spec.get("min", 0), spec.get("max", float("inf"))
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)) or low > high:
            raise UserError(f"{where}: min and max must be numbers with min <= max; fix the bounds")
        measure = len if unit == "chars" else (lambda r: len(r.split()))
        return lambda r: low <= measure(r) <= high
    if kind == "ends_with":
        ends = spec["any"]
        ends = [ends] if isinstance(ends, str) else ends
        if not isinstance(ends, list) or not ends or not all(isinstance(e, str) for e in ends):
            raise UserError(f"{where}: 'any' must be a string or a non-empty list of strings")
        return lambda r: r.rstrip().endswith(tuple(ends))
    return lambda r: _is_json(r.strip())


def parse_rules(doc: dict, source: str = "the rule file") -> list[Rule]:
    """The rules of a parsed rule file ({"rule": [tables]}); one sentence for whatever is wrong."""
    extra = sorted(set(doc) - {"rule"})
    if extra:
        raise UserError(f"{source} has an unknown top-level key '{extra[0]}'; write each check as a [[rule]] table")
    tables = doc.get("rule", [])
    if not isinstance(tables, list) or not tables:
        raise UserError(f"{source} has no rules; add at least one [[rule]] table with a kind "
                        f"({', '.join(KINDS)})")
    rules = []
    for n, spec in enumerate(tables, start=1):
        where = f"{source}, rule {n}"
        if not isinstance(spec, dict):
            raise UserError(f"{where} is not a table; write each check as a [[rule]] table with a kind")
        kind = spec.get("kind")
        if kind not in KINDS:
            raise UserError(f"{where} has an unknown kind {kind!r}; use one of {', '.join(KINDS)}")
        takes, needs = KINDS[kind]
        unknown = sorted(set(spec) - COMMON - takes)
        if unknown:
            raise UserError(f"{where} ({kind}) has an unknown key '{unknown[0]}'; it takes "
                            f"{', '.join(sorted(takes | COMMON))}")
        missing = sorted(needs - set(spec))
        if missing:
            raise UserError(f"{where} ({kind}) needs '{missing[0]}'")
        weight = spec.get("weight", 1.0)
        if not isinstance(weight, (int, float)) or isinstance(weight, bool):
            raise UserError(f"{where}: weight must be a number, got {weight!r}")
        rules.append(Rule(str(spec.get("name", f"{kind} #{n}")), float(weight), _check(kind, spec, where)))
    return rules


def read_rules(path: str | Path) -> list[Rule]:
    """The rules of the TOML file at `path`."""
    return parse_rules(read_toml(Path(path), "rule file"), f"rule file '{path}'")


def score_reply(rules: list[Rule], reply: str) -> float:
    """The sum of the weights of the rules `reply` passes."""
    return float(sum(rule.weight for rule in rules if rule.passes(reply)))
