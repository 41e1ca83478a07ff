"""Cleaning steps, each on and off, and Gutenberg header/footer variants seen in the real files."""

from scratchllm.data.clean import CleanConfig, clean_text, strip_gutenberg

BODY = "It was a dark and stormy night.\n\nThe end."


def test_line_endings_nfc_controls_whitespace():
    raw = "Cafe\u0301 au lait\r\nline\x00\x07 two  \rthree\n\n\n\n\nfour\ufeff  "
    assert clean_text(raw, CleanConfig()) == "Café au lait\nline two\nthree\n\nfour"


def test_each_step_can_be_turned_off():
    off = CleanConfig(nfc=False, line_endings=False, control_chars=False, whitespace=False, gutenberg=False)
    raw = "Cafe\u0301\r\n\x07  \n\n\n\n*** START OF THIS PROJECT GUTENBERG EBOOK X ***\n"
    assert clean_text(raw, off) == raw
    assert "\r" in clean_text(raw, CleanConfig(line_endings=False, whitespace=False, gutenberg=False))
    assert "e\u0301" in clean_text(raw, CleanConfig(nfc=False, gutenberg=False))
    assert "\x07" in clean_text(raw, CleanConfig(control_chars=False, gutenberg=False))
    assert "START OF THIS" in clean_text(raw, CleanConfig(gutenberg=False))


def _book(header: str, footer: str) -> str:
    licence = "Licence words about Project Gutenberg.\n" * 20
    return f"{licence}{header}\n\n{BODY}\n\n{footer}\n{licence}"


def test_modern_markers():
    for start, end in [("*** START OF THIS PROJECT GUTENBERG EBOOK DRACULA ***", "*** END OF THIS PROJECT GUTENBERG EBOOK DRACULA ***"),
                       ("***START OF THE PROJECT GUTENBERG EBOOK DRACULA***", "***END OF THE PROJECT GUTENBERG EBOOK DRACULA***"),
                       ("*** START OF THE PROJECT GUTENBERG EBOOK DRACULA ***", "End of the Project Gutenberg EBook of Dracula")]:
        assert clean_text(_book(start, end), CleanConfig()) == BODY


def test_old_small_print_and_world_library_variants():
    old = _book("*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*", "End of Project Gutenberg's Dracula")
    assert clean_text(old, CleanConfig()) == BODY
    wli = ("<<THIS ELECTRONIC VERSION OF THE COMPLETE WORKS OF WILLIAM\nSHAKESPEARE IS COPYRIGHT.\n"
           "TIME OR FOR MEMBERSHIP.>>\n")
    shakespeare = _book("****   SMALL PRINT! FOR __ COMPLETE SHAKESPEARE ****",
                        "End of this Etext of The Complete Works of William Shakespeare")
    shakespeare = shakespeare.replace("The end.", wli + "\nThe end.")
    assert clean_text(shakespeare, CleanConfig()) == BODY


def test_credits_line_after_header_is_removed():
    book = _book("*** START OF THIS PROJECT GUTENBERG EBOOK X ***\n\nProduced by Jane Doe and the Online\nDistributed Proofreading Team",
                 "*** END OF THIS PROJECT GUTENBERG EBOOK X ***")
    assert clean_text(book, CleanConfig()) == BODY


def test_text_without_markers_is_unchanged():
    text = "A letter that mentions the end of the project and gutenberg presses.\n" * 3
    assert strip_gutenberg(text) == text


def test_marker_phrase_inside_the_body_does_not_cut_it():
    # "End of the Project Gutenberg" quoted early in a long book is outside the tail window.
    body = "He read: End of the Project Gutenberg edition.\n" + "Words of the story.\n" * 5000
    book = "*** START OF THIS PROJECT GUTENBERG EBOOK X ***\n" + body + "*** END OF THIS PROJECT GUTENBERG EBOOK X ***\n"
    assert strip_gutenberg(book).strip() == body.strip()
