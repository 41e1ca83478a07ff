"""Garbage in is refused by name: binary files, undecodable bytes counted and warned, --encoding honoured."""

from __future__ import annotations

import random
import warnings

import pytest
from data_helpers import prose

from scratchllm.data.builtin import read_corpus
from scratchllm.data.prepare import prepare
from scratchllm.data.recipe import Recipe, SourceConfig
from scratchllm.data.sources import ReadStats, read_documents
from scratchllm.errors import UserError

FRENCH = "Le garçon a mangé une crème brûlée à la fenêtre, où l'été était déjà là.\n"


def _read(path, **kw):
    stats = ReadStats()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        docs = list(read_documents([str(path)], stats=stats, **kw))
    return docs, stats, [str(w.message) for w in caught]


def test_random_bytes_are_refused_by_name(tmp_path):
    rng = random.Random(0)
    (tmp_path / "noise.txt").write_bytes(bytes(rng.randrange(256) for _ in range(200_000)))
    with pytest.raises(UserError, match=r"'.*noise.txt' looks like binary data, not text \(\d+ NUL bytes\)"):
        _read(tmp_path / "noise.txt")


def test_binary_without_nul_bytes_is_refused_by_its_share_of_bad_bytes(tmp_path):
    rng = random.Random(1)
    (tmp_path / "noise.txt").write_bytes(bytes(rng.randrange(1, 256) for _ in range(50_000)))
    with pytest.raises(UserError, match=r"of its bytes are not valid utf-8"):
        _read(tmp_path / "noise.txt")


def test_latin1_is_read_with_replacements_counted_and_one_warning(tmp_path):
    text = FRENCH * 30
    (tmp_path / "fr.txt").write_bytes(text.encode("latin-1"))
    docs, stats, caught = _read(tmp_path / "fr.txt")
    accented = sum(ch > "\x7f" for ch in text)
    assert stats.replaced == accented == docs[0].text.count("\ufffd")
    assert docs[0].text.replace("\ufffd", "") == "".join(ch for ch in text if ch <= "\x7f")
    assert len(caught) == 1 and f"{accented:,} bytes" in caught[0] and "--encoding" in caught[0]


@pytest.mark.parametrize("encoding", ["latin-1", "utf-16", "cp1252"])
def test_encoding_decodes_exactly_what_python_does(tmp_path, encoding):
    data = (FRENCH * 10).encode(encoding)
    (tmp_path / "fr.txt").write_bytes(data)
    docs, stats, caught = _read(tmp_path / "fr.txt", encoding=encoding)
    assert docs[0].text == data.decode(encoding) and stats.replaced == 0 and not caught
    assert "".join(read_corpus(str(tmp_path / "fr.txt"), encoding=encoding)) == data.decode(encoding)


def test_utf8_text_is_untouched(tmp_path):
    (tmp_path / "fr.txt").write_text(FRENCH, encoding="utf-8")
    docs, stats, caught = _read(tmp_path / "fr.txt")
    assert docs[0].text == FRENCH and stats.replaced == 0 and not caught


def test_unknown_encoding(tmp_path):
    (tmp_path / "a.txt").write_text("hi")
    with pytest.raises(UserError, match="unknown text encoding 'klingon'"):
        _read(tmp_path / "a.txt", encoding="klingon")


def _one_book_recipe(path, tokenizer_path):
    recipe = Recipe(sources=[SourceConfig(name="book", paths=[str(path)])], tokenizer=str(tokenizer_path), workers=1)
    recipe.filter.enabled = False
    return recipe


def test_prepare_refuses_a_short_corpus_with_nothing_for_validation(tmp_path, tokenizer_path):
    (tmp_path / "note.txt").write_text(prose(3000, 0))
    with pytest.raises(UserError, match="none of them for validation"):
        prepare(_one_book_recipe(tmp_path / "note.txt", tokenizer_path), tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_prepare_splits_a_single_long_document_into_train_and_val_pieces(tmp_path, tokenizer_path):
    book = "\n".join(prose(60, i) for i in range(400)) + "\n"   # ~150 kB, one document
    (tmp_path / "book.txt").write_text(book)
    recipe = _one_book_recipe(tmp_path / "book.txt", tokenizer_path)
    recipe.val_fraction = 0.1
    manifest = prepare(recipe, tmp_path / "out", progress=False)
    sp = manifest["splits"]
    assert sp["val"]["documents"] >= 1 and sp["train"]["documents"] >= 1
    cleaned = manifest["sources"][0]["bytes_after_clean_and_filter"]
    assert abs(cleaned - len(book.encode())) <= 1  # cleaning drops at most the final newline
    assert sp["train"]["bytes"] + sp["val"]["bytes"] == cleaned  # every byte once: no overlap, no loss
