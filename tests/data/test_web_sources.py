"""Web inputs: main-text extraction on real pages (python3-doc) against trafilatura as the
oracle, WARC round trips, malformed records skipped and counted, WET/JSONL/HTML detection."""

import gzip
import json

import pytest

from web_pages import add_image, add_wet, doc_pages, page, write_warc
from scratchllm.data.web import WebStats, html_document, is_web_input, read_web_documents, sniff
from scratchllm.errors import UserError

NAV = ["Navigation", "Previous topic", "Next topic", "Report a Bug", "Show Source", "Quick search",
       "Table of Contents", "© Copyright"]


def _words(text):
    return set(text.lower().split())


def test_extraction_keeps_main_text_and_drops_navigation_of_real_pages():
    for path in doc_pages(400)[::80]:
        html = path.read_bytes()
        doc = html_document(html, str(path))
        raw = html.decode("utf-8")
        assert doc.title.endswith("documentation") and doc.title.split(" — ")[0] in doc.text
        for nav in NAV:
            if nav in raw:
                assert nav not in doc.text, (path.name, nav)
        assert len(doc.text) > 500


def test_extraction_agrees_with_trafilatura():
    trafilatura = pytest.importorskip("trafilatura")
    for path in doc_pages(400)[5::100]:
        html = path.read_text(encoding="utf-8")
        ours = _words(html_document(html, "p").text)
        theirs = _words(trafilatura.extract(html, include_tables=True) or "")
        # the same main text: most words in common (they differ on code blocks and headers)
        assert len(ours & theirs) / len(ours | theirs) > 0.7, path.name


def test_warc_round_trip_of_real_pages(tmp_path):
    pages = doc_pages(12)
    for gz in (True, False):
        warc = write_warc(tmp_path / f"p{gz}.warc{'.gz' if gz else ''}",
                          [(f"https://docs.python.org/3/library/{p.name}", p.read_bytes()) for p in pages],
                          gzip=gz, extra=add_image)
        stats = WebStats()
        docs = list(read_web_documents([str(warc)], stats=stats))
        assert [d.url for d in docs] == [f"https://docs.python.org/3/library/{p.name}" for p in pages]
        assert [d.text for d in docs] == [html_document(p.read_bytes(), "x").text for p in pages]
        assert all(d.id.startswith("<urn:uuid:") for d in docs)
        assert (stats.pages, stats.documents, stats.skipped_non_html, stats.malformed_records) == (12, 12, 1, 0)


def _records(data: bytes, marker: bytes) -> list[int]:
    out, i = [], data.find(marker)
    while i >= 0:
        out.append(i)
        i = data.find(marker, i + 1)
    return out


@pytest.mark.parametrize("gz", [True, False])
def test_malformed_warc_records_are_skipped_and_counted(tmp_path, gz):
    pages = [(f"http://example.org/{i}", page(f"T{i}", f"<p>Page number {i} has its own text.</p>")) for i in range(5)]
    good = write_warc(tmp_path / "good.warc", pages, gzip=gz).read_bytes()
    starts = _records(good, b"\x1f\x8b\x08" if gz else b"WARC/1.")
    assert len(starts) == 6  # warcinfo + 5 responses
    # break record 2 (page 1): cut its member short / put garbage where its header starts
    if gz:
        bad = good[: starts[2]] + good[starts[2] : starts[2] + 40] + good[starts[3]:]
    else:
        bad = good[: starts[2]] + b"GARBAGE\r\n" + good[starts[2] + 9:]
    path = tmp_path / ("bad.warc.gz" if gz else "bad.warc")
    path.write_bytes(bad)
    stats = WebStats()
    docs = list(read_web_documents([str(path)], stats=stats))
    assert [d.url for d in docs] == ["http://example.org/0", "http://example.org/2", "http://example.org/3",
                                     "http://example.org/4"]
    assert stats.malformed_records == 1 and stats.failed_examples


def test_wet_conversion_records_are_text_already(tmp_path):
    warc = write_warc(tmp_path / "x.wet.gz", [], extra=lambda w: add_wet(w, "http://example.org/t", "Plain text.\n"))
    assert sniff(warc) == "warc"
    [doc] = read_web_documents([str(warc)])
    assert (doc.url, doc.text) == ("http://example.org/t", "Plain text.")


def test_boilerplate_only_pages_are_counted_not_fatal(tmp_path):
    (tmp_path / "a.html").write_text(page("A", "<p>The only real paragraph of this site.</p>"))
    (tmp_path / "b.html").write_text("<html><body><nav><a href='/'>Home</a></nav></body></html>")
    (tmp_path / "notes.txt").write_text("not a page")
    stats = WebStats()
    docs = list(read_web_documents([str(tmp_path)], stats=stats))
    assert [d.text for d in docs] == ["The only real paragraph of this site."]
    assert (stats.pages, stats.empty_extraction) == (2, 1)
    assert is_web_input([str(tmp_path)])


def test_html_in_jsonl_keeps_id_and_url_and_counts_bad_lines(tmp_path):
    p = tmp_path / "pages.jsonl.gz"
    with gzip.open(p, "wt", encoding="utf-8") as f:
        f.write(json.dumps({"id": "a", "url": "http://x.org/a", "html": page("A", "<p>Alpha text here.</p>")}) + "\n")
        f.write("{broken\n")
        f.write(json.dumps({"id": "b", "body": "no html field"}) + "\n")
    stats = WebStats()
    [doc] = read_web_documents([str(p)], "html", stats)
    assert (doc.id, doc.url, doc.title, doc.text) == ("a", "http://x.org/a", "A", "Alpha text here.")
    assert stats.malformed_records == 2
    assert not is_web_input([str(p)])  # JSONL is text unless --html-field says otherwise


def test_encoding_comes_from_the_page(tmp_path):
    html = page("Café", "<p>Un café très noir, s'il vous plaît.</p>").replace(
        "<head>", "<head><meta charset='iso-8859-1'>").encode("latin-1")
    doc = html_document(html, "p")
    assert doc.title == "Café" and "très" in doc.text


def test_missing_inputs_and_pages_without_text_are_one_sentence(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        list(read_web_documents([str(tmp_path / "nope.warc.gz")]))
    (tmp_path / "a.html").write_text("<html><body><nav>menu</nav></body></html>")
    with pytest.raises(UserError, match="no page .* gave any main text"):
        list(read_web_documents([str(tmp_path)]))


def test_globs_name_web_inputs(tmp_path):
    for i in range(2):
        write_warc(tmp_path / f"crawl-{i}.warc.gz", [(f"http://example.org/{i}", page(f"T{i}", f"<p>Text {i}.</p>"))])
    pattern = str(tmp_path / "crawl-*.warc.gz")
    assert is_web_input([pattern])
    assert [d.url for d in read_web_documents([pattern])] == ["http://example.org/0", "http://example.org/1"]


def test_pathological_pages_fail_fast_and_are_counted(tmp_path):
    (tmp_path / "ok.html").write_text(page("OK", "<p>A normal page with a paragraph.</p>"))
    (tmp_path / "deep.html").write_text("<html><body>" + "<div>" * 5000 + "text</body></html>")
    stats = WebStats()
    docs = list(read_web_documents([str(tmp_path)], stats=stats))
    assert [d.title for d in docs] == ["OK"]
    assert stats.extract_failed == 1
    assert any("nested 5002 deep" in e for e in stats.failed_examples)
