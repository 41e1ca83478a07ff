"""Answer extraction for generative tasks: the number GSM8K asks for, and exact match.

GSM8K references end in "#### N". A generation is read two ways, as lm-eval does: `strict`
takes the number after "####" only; `flexible` takes the last number anywhere in the text.
Numbers are normalised before comparison: thousands commas, a leading `$`, a trailing period
and trailing zeros after a decimal point go ("$1,200.00." == "1200"); the sign stays.

>>> extract_gsm8k("so she makes 9 * 2 = $18.\\n#### 18")
'18'
>>> extract_gsm8k("The answer is -1,234.50.", strict=False)
'-1234.5'
>>> exact_match(" Paris ", "Paris")
True
"""

from __future__ import annotations

import re

_STRICT = re.compile(r"####\s*(-?\s*\$?\s*[0-9][0-9,]*(?:\.[0-9]+)?)")
_ANY_NUMBER = re.compile(r"-?\$?[0-9][0-9,]*(?:\.[0-9]+)?")


def normalize_number(s: str) -> str:
    s = s.replace(",", "").replace("$", "").replace(" ", "").rstrip(".")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    if s in ("-0", ""):
        s = s.lstrip("-") or s
    return s


def extract_gsm8k(text: str, strict: bool = True) -> str | None:
    """The final answer in `text` as a normalised number string, or None if there is none."""
    if strict:
        m = _STRICT.search(text)
        return normalize_number(m.group(1)) if m else None
    found = _ANY_NUMBER.findall(text)
    return normalize_number(found[-1]) if found else None


def exact_match(prediction: str, reference: str) -> bool:
    """Equal after stripping surrounding whitespace."""
    return prediction.strip() == reference.strip()
