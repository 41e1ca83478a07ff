"""On the shared raw Gutenberg books when present (skipped otherwise): cleaning removes the licence
boilerplate, the filters keep ordinary novels, language id says English."""

import re
from pathlib import Path

import pytest

from scratchllm.data import langid
from scratchllm.data.clean import CleanConfig, clean_text
from scratchllm.data.filters import FilterConfig, check
from scratchllm.data.sources import read_documents

SHARD = Path(__file__).resolve().parents[3] / "shared/data/pretrain/gutenberg/gutenberg-000.jsonl.xz"
BOILERPLATE = re.compile(r"START OF TH[EI]S? PROJECT GUTENBERG|END OF TH[EI]S? PROJECT GUTENBERG|"
                         r"Project Gutenberg-tm|SMALL PRINT", re.IGNORECASE)


@pytest.fixture(scope="module")
def books():
    if not SHARD.is_file():
        pytest.skip(f"shared Gutenberg data not found at {SHARD}")
    return list(read_documents([str(SHARD)], limit=12))


def test_cleaning_removes_licence_boilerplate(books):
    for doc in books:
        assert BOILERPLATE.search(doc.text), doc.id  # the raw book has it
        cleaned = clean_text(doc.text, CleanConfig())
        assert not BOILERPLATE.search(cleaned), (doc.id, BOILERPLATE.search(cleaned).group(0))
        assert "\r" not in cleaned and len(cleaned) > 0.8 * len(doc.text) - 25_000


def test_filters_keep_ordinary_books_and_langid_says_english(books):
    cfg = FilterConfig(max_words=0)
    kept = [d for d in books if check(clean_text(d.text, CleanConfig()), cfg) is None]
    assert len(kept) >= 10
    assert all(langid.identify(d.text)[0] == "en" for d in books)
