"""GSM8K answer extraction on the formats models really write."""

from __future__ import annotations

import pytest

from scratchllm.eval.answers import exact_match, extract_gsm8k, normalize_number


@pytest.mark.parametrize("text,strict,flexible", [
    ("#### 18", "18", "18"),
    ("She makes 9 * 2 = $18 a day.\n#### 18", "18", "18"),
    ("#### 1,234", "1234", "1234"),
    ("#### $1,200.00", "1200", "1200"),
    ("#### -7", "-7", "-7"),
    ("The answer is 42.", None, "42"),
    ("It loses 3 then 5, so the total is -8.", None, "-8"),
    ("Total: $3,000.50.", None, "3000.5"),
    ("no number here", None, None),
    ("#### 0.5", "0.5", "0.5"),
    ("first 12 then #### 30\n\nQuestion: 99", "30", "99"),
])
def test_extraction(text, strict, flexible):
    assert extract_gsm8k(text) == strict
    assert extract_gsm8k(text, strict=False) == flexible


def test_reference_and_prediction_compare_after_normalising():
    assert extract_gsm8k("so 5 + 13 = <<5+13=18>>18\n#### 18") == extract_gsm8k("The answer is $18.", strict=False)
    assert normalize_number("1,000.") == "1000"
    assert normalize_number("-0") == "0"
    assert exact_match(" Paris\n", "Paris") and not exact_match("paris", "Paris")
