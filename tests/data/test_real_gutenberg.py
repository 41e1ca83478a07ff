"""On the shared raw Gutenberg books (skipped when absent, a failure in CI): cleaning removes the licence
boilerplate, the filters keep ordinary novels, language id says English."""

import re

import pytest
from shared_data import require_shared

from scratchllm.data import langid
from scratchllm.data.clean import CleanConfig, clean_text
from scratchllm.data.filters import FilterConfig, check
from scratchllm.data.sources import read_documents

SHARD = "pretrain/gutenberg/gutenberg-000.jsonl.xz"
BOILERPLATE = re.compile(r"START OF TH[EI]S? PROJECT GUTENBERG|END OF TH[EI]S? PROJECT GUTENBERG|"
                         r"Project Gutenberg-tm|SMALL PRINT", re.IGNORECASE)


@pytest.fixture(scope="module")
def books():
    return list(read_documents([str(require_shared(SHARD))], limit=12))


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
