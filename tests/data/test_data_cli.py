"""`scratchllm data clean | filter | mix` through the command line: what lands in each output file,
checked against hand-written expectations, and bad arguments as one-line errors."""

import json

import pytest
from data_helpers import prose, write_jsonl

from scratchllm.cli import main


def _rows(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_data_clean_writes_normalised_documents(tmp_path, capsys):
    body = prose(60, 1)
    src = write_jsonl(tmp_path / "in.jsonl", [
        {"id": "a", "text": "*** START OF THE PROJECT GUTENBERG EBOOK X ***\r\n" + body +
                            "\r\n*** END OF THE PROJECT GUTENBERG EBOOK X ***\r\nlicence text"},
        {"id": "b", "text": "cafe\u0301\r\nline two\x07   \r\n"},
    ])
    out = tmp_path / "clean.jsonl"
    assert main(["data", "clean", "--input", str(src), "--out", str(out), "--workers", "1"]) == 0
    assert "wrote 2 cleaned documents" in capsys.readouterr().out
    rows = {r["id"]: r["text"] for r in _rows(out)}
    assert rows["a"].strip() == body                          # boilerplate and licence gone, CRLF -> LF
    assert rows["b"] == "caf\u00e9\nline two"                    # NFC, bell removed, trailing whitespace trimmed
    kept = tmp_path / "kept.jsonl"
    assert main(["data", "clean", "--input", str(src), "--out", str(kept), "--no-gutenberg", "--workers", "1"]) == 0
    assert "START OF THE PROJECT GUTENBERG" in {r["id"]: r["text"] for r in _rows(kept)}["a"]


def test_data_filter_splits_kept_and_dropped_with_the_rule(tmp_path, capsys):
    good = [{"id": f"g{i}", "text": prose(120, i)} for i in range(3)]
    bad = [{"id": "short", "text": "Far too short."},
           {"id": "symbols", "text": " ".join(["#"] * 80 + ["word"] * 60)}]
    src = write_jsonl(tmp_path / "in.jsonl", good + bad)
    out = tmp_path / "f"
    assert main(["data", "filter", "--input", str(src), "--out", str(out), "--languages", "--workers", "1"]) == 0
    assert "kept 3, dropped 2" in capsys.readouterr().out
    assert [r["id"] for r in _rows(out / "kept.jsonl")] == ["g0", "g1", "g2"]
    assert [r["text"] for r in _rows(out / "kept.jsonl")] == [d["text"] for d in good]
    dropped = {r["id"]: r["rule"] for r in _rows(out / "dropped.jsonl")}
    assert dropped.keys() == {"short", "symbols"} and dropped["short"] == "min_words"


def test_data_mix_meets_byte_shares_and_refuses_mismatched_weights(tmp_path, capsys):
    a = write_jsonl(tmp_path / "a.jsonl", [{"id": f"a{i}", "text": prose(50, i)} for i in range(300)])
    b = write_jsonl(tmp_path / "b.jsonl", [{"id": f"b{i}", "text": prose(50, 1000 + i)} for i in range(300)])
    out = tmp_path / "mix.jsonl"
    assert main(["data", "mix", "--input", str(a), str(b), "--weights", "0.75", "0.25", "--out", str(out)]) == 0
    rates = json.loads(capsys.readouterr().out)["sampling_rates"]
    rows = _rows(out)
    size = {s: sum(len(r["text"].encode()) for r in rows if r["source"] == s) for s in (str(a), str(b))}
    assert size[str(a)] / sum(size.values()) == pytest.approx(0.75, abs=0.03)
    assert rates[str(a)] == pytest.approx(1.0) and rates[str(b)] == pytest.approx(1 / 3, rel=0.01)
    assert len({r["id"] for r in rows if r["source"] == str(a)}) == 300       # the limiting source: all of it
    assert main(["data", "mix", "--input", str(a), str(b), "--weights", "1", "--out", str(out)]) == 2
    assert "--weights has 1 values for 2 inputs" in capsys.readouterr().err
