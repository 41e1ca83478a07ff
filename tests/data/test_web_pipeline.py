"""The web stage commands end to end on a WARC of real pages (python3-doc) plus hand-made
adversarial ones: `data clean` extracts and scrubs, `data filter --rules ...` explains each drop,
`data quality-train` reports held-out accuracy, `data prepare --recipe mini-c4` runs it all and
reports extraction, PII, line dedup and the drop table."""

import json

import pytest

from data_helpers import prose
from web_pages import doc_pages, page, write_warc
from scratchllm.cli import main

NEWSLETTER = "<p>Subscribe to our newsletter for the weekly news of the valley.</p>"


def _paras(seed, n=4):
    return "".join(f"<p>{prose(60, seed * 10 + i)}</p>" for i in range(n))


@pytest.fixture(scope="module")
def warc(tmp_path_factory):
    real = [(f"https://docs.python.org/3/library/{p.name}", p.read_bytes()) for p in doc_pages(60)[::6]]
    made = [
        ("http://news.example/pii", page("PII", _paras(1) + "<p>Write to jane.doe@mail.example.com or visit "
                                         "8.8.8.8 for the mirror; the team runs Python 3.12.1 since 2024-01-15.</p>"
                                         + NEWSLETTER)),
        ("http://news.example/a", page("A", _paras(2) + NEWSLETTER)),
        ("http://news.example/b", page("B", _paras(3) + NEWSLETTER)),
        ("http://news.example/lorem", page("L", _paras(4) + "<p>Lorem ipsum dolor sit amet, consectetur.</p>")),
        ("http://ads.spam.example/buy", page("S", _paras(5))),
        ("http://news.example/menu", page("M", "".join(f"<p>Blue cotton shirt, size {i}</p>" for i in range(40)))),
        ("http://news.example/empty", "<html><body><nav><a href='/'>Home</a></nav></body></html>"),
    ]
    return write_warc(tmp_path_factory.mktemp("warc") / "pages.warc.gz", real + made)


def _rows(path):
    return [json.loads(line) for line in open(path, encoding="utf-8")]


def test_clean_extracts_scrubs_and_counts(tmp_path, warc, capsys):
    assert main(["data", "clean", "--input", str(warc), "--out", str(tmp_path / "c.jsonl"), "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "extracted 16 of 17 pages" in out and "1 without main text" in out and "email 1, ip 1" in out
    rows = _rows(tmp_path / "c.jsonl")
    assert len(rows) == 16 and all({"id", "text", "url"} <= set(r) for r in rows)
    pii = next(r for r in rows if r["url"].endswith("/pii"))
    assert "email@example.com" in pii["text"] and "22.214.171.124" in pii["text"]
    assert "Python 3.12.1 since 2024-01-15" in pii["text"] and "jane.doe" not in pii["text"]
    assert "Home" not in pii["text"] and "Copyright" not in pii["text"]  # nav and footer gone
    assert main(["data", "clean", "--input", str(warc), "--pii", "none", "--out", str(tmp_path / "raw.jsonl")]) == 0
    assert "jane.doe@mail.example.com" in next(r["text"] for r in _rows(tmp_path / "raw.jsonl") if r["url"].endswith("/pii"))


def test_filter_rules_explain_each_drop(tmp_path, warc):
    main(["data", "clean", "--input", str(warc), "--out", str(tmp_path / "c.jsonl"), "--workers", "1"])
    assert main(["data", "filter", "--input", str(tmp_path / "c.jsonl"), "--rules", "gopher,c4,fineweb",
                 "--block-domains", "spam.example", "--out", str(tmp_path / "f"), "--workers", "1"]) == 0
    dropped = {r["id"]: r["rule"] for r in _rows(tmp_path / "f" / "dropped.jsonl")}
    kept = _rows(tmp_path / "f" / "kept.jsonl")
    by_url = {r["url"]: r["id"] for r in _rows(tmp_path / "c.jsonl")}
    assert dropped[by_url["http://ads.spam.example/buy"]] == "url_domain"
    assert dropped[by_url["http://news.example/lorem"]] == "c4_lorem_ipsum"
    assert dropped[by_url["http://news.example/menu"]] == "c4_min_sentences"
    assert {r["url"] for r in kept} >= {"http://news.example/a", "http://news.example/b"}
    assert len(kept) + len(dropped) == 16


def test_quality_train_filter_and_report(tmp_path, warc, capsys, tokenizer_path):
    main(["data", "clean", "--input", str(warc), "--out", str(tmp_path / "c.jsonl"), "--workers", "1"])
    ref = tmp_path / "ref.jsonl"
    ref.write_text("".join(json.dumps({"text": prose(300, 100 + i)}) + "\n" for i in range(30)))
    assert main(["data", "quality-train", "--reference", str(ref), "--web", str(tmp_path / "c.jsonl"),
                 "--chunk-chars", "1500", "--out", str(tmp_path / "q.safetensors")]) == 0
    assert "held-out accuracy" in capsys.readouterr().out
    assert main(["data", "filter", "--input", str(tmp_path / "c.jsonl"), "--rules", "quality",
                 "--quality-model", str(tmp_path / "q.safetensors"), "--out", str(tmp_path / "f")]) == 0
    rules = {r["rule"] for r in _rows(tmp_path / "f" / "dropped.jsonl")}
    assert rules == {"quality_score"}
    # in a recipe: the report carries the model's held-out accuracy
    assert main(["data", "prepare", "--recipe", "mini-c4", "--input", str(warc), "--tokenizer", str(tokenizer_path),
                 "--out", str(tmp_path / "d"), "--set", "workers=1", "quality.enabled=true",
                 f"quality.model=\"{tmp_path / 'q.safetensors'}\"", "quality.threshold=0.01"]) == 0
    m = json.loads((tmp_path / "d" / "manifest.json").read_text())
    assert m["web"]["quality"]["heldout_accuracy"] is not None
    assert "Quality classifier" in (tmp_path / "d" / "report.md").read_text()


def test_prepare_mini_c4_reports_web_steps(tmp_path, warc, tokenizer_path):
    out = tmp_path / "d"
    assert main(["data", "prepare", "--recipe", "mini-c4", "--input", str(warc), "--tokenizer", str(tokenizer_path),
                 "--out", str(out), "--set", "urls.blocked_domains=[\"spam.example\"]", "workers=1",
                 "val_fraction=0.2"]) == 0
    m = json.loads((out / "manifest.json").read_text())
    web = m["web"]
    assert web["extraction"]["input"]["pages"] == 17 and web["extraction"]["input"]["empty_extraction"] == 1
    assert web["pii_replaced"] == {"email": 1, "ip": 1}
    # the newsletter line of pages a and b repeats the one of the PII page: cut by line dedup
    assert web["line_dedup"]["unit"] == "line" and web["line_dedup"]["chars_removed"] >= 2 * 60
    for rule in ("url_domain", "c4_lorem_ipsum"):
        assert m["drops"][rule]["count"] == 1
    report = (out / "report.md").read_text()
    assert "## Web pages" in report and "line dedup removed" in report and "### url_domain: 1 documents" in report
    assert m["splits"]["train"]["documents"] >= 2


def test_bad_flags_are_one_sentence(tmp_path, warc, capsys):
    assert main(["data", "clean", "--input", str(warc), "--pii", "ssn", "--out", str(tmp_path / "c.jsonl")]) == 2
    assert "unknown PII kind ssn" in capsys.readouterr().err
    assert main(["data", "filter", "--input", str(warc), "--rules", "c5", "--out", str(tmp_path / "f")]) == 2
    assert not (tmp_path / "f").exists() and not (tmp_path / "c.jsonl").exists()


def test_dedup_lines_stage_and_prepare_with_html_field(tmp_path, tokenizer_path, capsys):
    banner = "Subscribe to our newsletter for the weekly news of the valley."
    rows = [{"id": f"p{i}", "url": f"http://news.example/{i}", "html": page(f"P{i}", _paras(20 + i) + f"<p>{banner}</p>")}
            for i in range(6)]
    src = tmp_path / "pages.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["data", "clean", "--input", str(src), "--html-field", "html", "--out", str(tmp_path / "c.jsonl")]) == 0
    assert main(["data", "dedup", "--input", str(tmp_path / "c.jsonl"), "--lines", "line", "--out",
                 str(tmp_path / "d"), "--workers", "1"]) == 0
    assert "line dedup removed" in capsys.readouterr().out
    texts = [r["text"] for r in _rows(tmp_path / "d" / "documents.jsonl")]
    assert len(texts) == 6 and sum(banner in t for t in texts) == 1
    out = tmp_path / "prep"
    assert main(["data", "prepare", "--recipe", "mini-c4", "--input", str(src), "--html-field", "html",
                 "--tokenizer", str(tokenizer_path), "--out", str(out), "--set", "workers=1"]) == 0
    m = json.loads((out / "manifest.json").read_text())
    assert m["web"]["extraction"]["input"]["documents"] == 6
    assert m["web"]["line_dedup"]["chars_removed"] == 5 * len(banner)
