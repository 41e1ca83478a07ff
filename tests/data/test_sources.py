"""Reading every input kind, document ids, and bad input: corrupt files, malformed lines, missing fields."""

import gzip
import json
import lzma

import pytest

from data_helpers import write_jsonl
from scratchllm.data.sources import ReadStats, read_documents
from scratchllm.errors import UserError

ROWS = [{"id": "a", "text": "first"}, {"text": "second"}, {"id": 7, "text": "third"}]


def _lines():
    return "".join(json.dumps(r) + "\n" for r in ROWS).encode()


def test_txt_file_directory_and_glob(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "one.txt").write_text("one\r\n")
    (tmp_path / "d" / "two.txt").write_text("two")
    (tmp_path / "d" / "skip.bin").write_bytes(b"\0")
    docs = list(read_documents([str(tmp_path / "d")]))
    assert [d.text for d in docs] == ["one\r\n", "two"]  # raw: line endings are cleaning's job
    assert docs[0].id.endswith("one.txt")
    assert [d.text for d in read_documents([str(tmp_path / "d" / "t*.txt")])] == ["two"]


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".jsonl.xz", ".jsonl.zst"])
def test_jsonl_compressed_and_ids(tmp_path, suffix):
    path = tmp_path / f"x{suffix}"
    data = _lines()
    if suffix.endswith(".gz"):
        data = gzip.compress(data)
    elif suffix.endswith(".xz"):
        data = lzma.compress(data)
    elif suffix.endswith(".zst"):
        zstandard = pytest.importorskip("zstandard")
        data = zstandard.ZstdCompressor().compress(data)
    path.write_bytes(data)
    docs = list(read_documents([str(path)]))
    assert [d.text for d in docs] == ["first", "second", "third"]
    assert [d.id for d in docs] == ["a", f"{path}:2", "7"]


def test_parquet_streaming(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"content": ["x", "y", None], "id": ["p", None, "r"]}), tmp_path / "t.parquet")
    stats = ReadStats()
    docs = list(read_documents([str(tmp_path / "t.parquet")], text_field="content", stats=stats))
    assert [(d.id.split("/")[-1], d.text) for d in docs] == [("p", "x"), ("t.parquet:2", "y")]
    assert stats.missing_field == 1
    with pytest.raises(UserError, match="no column 'text'"):
        list(read_documents([str(tmp_path / "t.parquet")]))


def test_malformed_json_line_is_skipped_and_counted(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [ROWS[0], '{"text": "trunc', "[1, 2]", ROWS[1]])
    stats = ReadStats()
    assert [d.text for d in read_documents([str(path)], stats=stats)] == ["first", "second"]
    assert stats.malformed == 1 and stats.missing_field == 1 and stats.malformed_examples == [f"{path}:2"]


def test_missing_field_everywhere_is_a_clear_error(tmp_path):
    path = write_jsonl(tmp_path / "x.jsonl", [{"content": "a"}, {"content": "b"}])
    with pytest.raises(UserError, match="no document .* has a text field 'text'.*--field"):
        list(read_documents([str(path)]))
    assert [d.text for d in read_documents([str(path)], text_field="content")] == ["a", "b"]


def test_unreadable_and_missing_inputs(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        list(read_documents([str(tmp_path / "nope.jsonl")]))
    (tmp_path / "broken.jsonl.xz").write_bytes(lzma.compress(_lines())[:40])
    with pytest.raises(UserError, match="corrupt or truncated"):
        list(read_documents([str(tmp_path / "broken.jsonl.xz")]))
    with pytest.raises(UserError, match="matched no"):
        list(read_documents([str(tmp_path / "*.parquet")]))


def test_hf_source_without_datasets_is_a_clear_error():
    try:
        import datasets  # noqa: F401
        pytest.skip("datasets is installed; the error path needs it absent")
    except ImportError:
        with pytest.raises(UserError, match="needs the datasets library"):
            list(read_documents(["hf:roneneldan/TinyStories"]))


def test_limit_stops_early(tmp_path):
    path = write_jsonl(tmp_path / "x.jsonl", ROWS)
    assert len(list(read_documents([str(path)], limit=2))) == 2
