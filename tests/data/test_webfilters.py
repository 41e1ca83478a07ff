"""Each C4, FineWeb and URL rule on hand-made pages that should pass and pages that should not;
thresholds are switches; the first failing rule names the drop."""

import pytest

from scratchllm.data.filters import FilterConfig
from scratchllm.data.webfilters import C4Config, FineWebConfig, UrlConfig, c4_lines, fineweb_rules, url_blocked
from scratchllm.data.webrules import WebRules, rules_from_names, screen
from scratchllm.errors import UserError

MENU = "\n".join(["Home", "News", "Sport", "Weather", "Culture", "Travel", "Opinion", "Video", "Audio",
                  "The long story of the week starts here and goes on."])  # 1 of 10 lines ends in punctuation
GOOD = ("The river rose in the night and the town woke to water in the streets.",
        "By morning the bridge was closed, and the school sent the children home.",
        "Volunteers filled sandbags until noon, when the rain finally stopped.",
        "The mayor said the damage was smaller than in the flood of 1998.",
        "Most shops opened again two days later, once the water had gone down.")
PAGE = "\n".join(GOOD)


def c4(**kw):
    return C4Config(enabled=True, **kw)


def test_c4_keeps_a_clean_page_whole():
    assert c4_lines(PAGE, c4()) == (PAGE, None)


@pytest.mark.parametrize("line", [
    "Home About Contact",                          # no terminal punctuation
    "Read more.",                                  # fewer than 3 words
    "Please enable JavaScript to view the comments.",  # javascript
    "By using this site you agree to our Privacy Policy.",  # policy boilerplate
    "This website uses cookies to improve your experience.",
    "Word " + "x" * 1001 + " ends here.",         # a word over 1,000 characters
])
def test_c4_drops_bad_lines_and_keeps_the_rest(line):
    text, drop = c4_lines(line + "\n" + PAGE, c4())
    assert (text, drop) == (PAGE, None)


def test_c4_line_rules_are_switches():
    assert c4_lines("Home About Contact\n" + PAGE, c4(terminal_punct=False))[0].startswith("Home")
    assert c4_lines("Read more.\n" + PAGE, c4(min_words_per_line=0))[0].startswith("Read more.")
    assert "JavaScript" in c4_lines("Enable JavaScript now please.\n" + PAGE, c4(javascript=False))[0]


def test_c4_cuts_citation_marks():
    text, _ = c4_lines(PAGE.replace("1998.", "1998.[3]") + "\nIt was rebuilt in 2001 [edit] with stone.", c4())
    assert "[3]" not in text and "[edit]" not in text and text.endswith("It was rebuilt in 2001  with stone.")


@pytest.mark.parametrize("extra,rule", [
    ("Lorem ipsum dolor sit amet, consectetur adipiscing elit.", "c4_lorem_ipsum"),
    ("Use it like this: if (x) { return y; }.", "c4_curly_braces"),
    ("This page is full of porn and nothing else.", "c4_bad_words"),
])
def test_c4_page_rules_drop_the_page(extra, rule):
    text, drop = c4_lines(PAGE + "\n" + extra, c4())
    assert text == "" and drop.rule == rule


def test_c4_curly_braces_in_dropped_lines_do_not_count():
    # a code line without final punctuation is removed before the brace check, as in C4
    assert c4_lines("for x in y { print(x) }\n" + PAGE, c4())[1] is None


def test_c4_min_sentences_and_bad_words_file(tmp_path):
    assert c4_lines("\n".join(GOOD[:4]), c4())[1].rule == "c4_min_sentences"
    assert c4_lines("\n".join(GOOD[:4]), c4(min_sentences=4))[1] is None
    words = tmp_path / "bad.txt"
    words.write_text("flood\n")
    assert c4_lines(PAGE, c4(bad_words=[], bad_words_file=str(words)))[1].rule == "c4_bad_words"
    with pytest.raises(UserError, match="bad_words_file"):
        c4(bad_words_file=str(tmp_path / "missing.txt")).word_set()


def test_fineweb_keeps_prose_and_each_rule_fires():
    cfg = FineWebConfig(enabled=True)
    assert fineweb_rules(PAGE, cfg) is None
    drop = fineweb_rules(MENU, cfg)
    assert (drop.rule, drop.value) == ("fineweb_line_punct_ratio", 0.1)
    short = "\n".join(["Price: $10.", "Size: M.", "Color: red.", GOOD[0]])
    assert fineweb_rules(short, cfg).rule == "fineweb_short_line_ratio"
    dup = PAGE + "\n" + GOOD[0]
    assert fineweb_rules(dup, cfg).rule == "fineweb_dup_line_char_frac"
    listy = "\n".join(f"{w}." for w in "one two three four five six seven eight nine ten".split()) + "\n" + GOOD[0]
    assert fineweb_rules(listy, FineWebConfig(max_short_line_ratio=0)).rule == "fineweb_newline_word_ratio"


def test_fineweb_thresholds_are_the_papers_and_switchable():
    assert fineweb_rules(MENU, FineWebConfig(min_line_punct_ratio=0.1)).rule == "fineweb_line_punct_ratio"  # <=
    assert fineweb_rules(MENU, FineWebConfig(min_line_punct_ratio=0.09)).rule == "fineweb_short_line_ratio"
    assert fineweb_rules(PAGE + "\n" + GOOD[0], FineWebConfig(max_dup_line_char_frac=0.3)) is None


def test_url_block_lists(tmp_path):
    cfg = UrlConfig(enabled=True, blocked_domains=["spam.example"], blocked_patterns=[r"/casino/"])
    assert url_blocked("https://spam.example/a", cfg).rule == "url_domain"
    assert url_blocked("http://a.b.SPAM.example:8080/x", cfg).rule == "url_domain"
    assert url_blocked("https://notspam.example/a", cfg) is None      # a suffix, not a subdomain
    assert url_blocked("https://news.example/casino/win", cfg).rule == "url_pattern"
    assert url_blocked("", cfg) is None
    listing = tmp_path / "block.txt"
    listing.write_text("# adult\nbad.example\nre:[?&]affiliate=\n")
    fcfg = UrlConfig(enabled=True, blocklist_file=str(listing))
    assert url_blocked("http://www.bad.example/", fcfg).rule == "url_domain"
    assert url_blocked("http://ok.example/?id=3&affiliate=9", fcfg).rule == "url_pattern"
    with pytest.raises(UserError, match="not a valid regex"):
        UrlConfig(blocked_patterns=["(unclosed"]).compiled()


def test_screen_runs_rules_in_order_and_names_the_first_failure():
    rules = WebRules(urls=UrlConfig(enabled=True, blocked_domains=["spam.example"]), c4=c4(),
                     fineweb=FineWebConfig(enabled=True))
    gopher = FilterConfig(languages=[], min_words=10)
    assert screen(PAGE, "http://spam.example/", gopher, rules)[1].rule == "url_domain"
    text, drop = screen("Menu | Home\n" + PAGE, "http://ok.example/", gopher, rules)
    assert (text, drop) == (PAGE, None)  # C4 trimmed the menu, the rest passed Gopher and FineWeb
    assert screen(PAGE, "", FilterConfig(languages=[], min_words=500), rules)[1].rule == "min_words"


def test_rules_from_names():
    gopher, rules = rules_from_names("gopher,c4")
    assert gopher and rules.c4.enabled and not rules.fineweb.enabled and not rules.quality.enabled
    with pytest.raises(UserError, match="unknown filter rule"):
        rules_from_names("gopher,c5")
    with pytest.raises(UserError, match="needs a model"):
        rules_from_names("quality")[1].prepared()
