"""Text cleaning: Unicode NFC, line endings, control characters, whitespace, and Project
Gutenberg header/footer boilerplate. Each step is a switch in `CleanConfig`.

Order matters: line endings are fixed first so the Gutenberg markers, which are matched per
line, see LF-only text; whitespace is tidied last so stripping leaves no blank runs behind.

>>> clean_text("Cafe\\u0301\\r\\nline\\x07 two   \\r\\n\\r\\n\\r\\n\\r\\nend", CleanConfig())
'Café\\nline two\\n\\nend'
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass


@dataclass
class CleanConfig:
    """Which cleaning steps run (all on by default)."""
    nfc: bool = True                 # compose accents: "e\u0301" -> "é", so equal texts hash equal
    line_endings: bool = True        # CRLF and lone CR -> LF
    control_chars: bool = True       # drop C0/C1 controls except tab and newline
    whitespace: bool = True          # strip line ends, collapse 3+ blank lines, trim the document
    gutenberg: bool = True           # cut the Project Gutenberg licence header and footer


# Control characters other than \t and \n (and \r, handled by line_endings), plus DEL and C1.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufeff]")
_BLANK_RUNS = re.compile(r"\n{3,}")

# The markers that occur in the raw Gutenberg files (found by scanning all 2,090 books).
# Headers end with "*** START OF THIS/THE PROJECT GUTENBERG EBOOK ... ***" (2000s files); the
# oldest files instead open a licence with "***START**THE SMALL PRINT!**..." and close it with
# "*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*", and the 1990s World Library
# Shakespeare files close theirs with "****   SMALL PRINT! FOR __ COMPLETE SHAKESPEARE ****".
# The last such line in the head window ends the header.
_START = re.compile(
    r"^\W*(?:\*+\s*START\s+OF\s+(?:THE|THIS)\s+PROJECT\s+GUTENBERG"
    r"|\*+\s*END\W*THE\s+SMALL\s+PRINT"
    r"|\*+\s*SMALL\s+PRINT!?\s+FOR\s+[\W_]*COMPLETE\s+SHAKESPEARE"
    r"|START\s+OF\s+(?:THE|THIS)\s+PROJECT\s+GUTENBERG\s+E(?:BOOK|TEXT)).*$",
    re.IGNORECASE | re.MULTILINE,
)
# Footers start with "*** END OF THIS PROJECT GUTENBERG EBOOK" or, a few lines earlier, with
# "End of the Project Gutenberg EBook of X" / "End of Project Gutenberg's X" / "End of this
# Etext of X"; the first one in the tail window starts the footer.
_END = re.compile(
    r"^\W*(?:\*+\s*END\s+OF\s+(?:THE|THIS)\s+PROJECT\s+GUTENBERG"
    r"|END\s+OF\s+(?:THE\s+|THIS\s+)?PROJECT\s+GUTENBERG"
    r"|END\s+OF\s+(?:THE|THIS)\s+E-?TEXT\s+OF).*$",
    re.IGNORECASE | re.MULTILINE,
)
# The World Library licence is repeated inside those Shakespeare plays, between the acts.
_WLI_NOTICE = re.compile(r"<<THIS ELECTRONIC VERSION OF THE COMPLETE WORKS.*?MEMBERSHIP\.>>", re.DOTALL)
# A START marker is only believed in the first 30% of the book (at least 30,000 characters:
# the 1990s licence alone is ~12k), an END marker only in the last 30% (at least 30,000: the
# 2000s licence footer is ~19k). Real text may mention either phrase elsewhere.
_WINDOW_FRACTION = 0.3
_WINDOW_MIN = 30_000
# Credit lines just after the header ("Produced by ...", "E-text prepared by ...").
_CREDITS = re.compile(r"\A\s*(?:Produced by|E-text prepared by|This etext was prepared by|"
                      r"Etext prepared by|Transcribed from)\b.*?(?:\n\s*\n|\Z)", re.IGNORECASE | re.DOTALL)


def strip_gutenberg(text: str) -> str:
    """Remove the Project Gutenberg header (up to the START marker) and footer (from the END marker).

    Text without markers is returned unchanged, so the step is safe on non-Gutenberg sources.

    >>> strip_gutenberg("licence\\n*** START OF THIS PROJECT GUTENBERG EBOOK X ***\\nBody.\\n"
    ...                 "*** END OF THIS PROJECT GUTENBERG EBOOK X ***\\nlicence")
    '\\nBody.\\n'
    """
    n = len(text)
    start = 0
    window = max(int(n * _WINDOW_FRACTION), _WINDOW_MIN)
    for m in _START.finditer(text, 0, min(n, window)):
        start = m.end()  # the last header marker wins: some files repeat it after a preface
    end = n
    tail_from = max(start, n - window)
    tail_from = text.rfind("\n", 0, tail_from) + 1  # from a line start, so ^ can match there
    m = _END.search(text, tail_from)
    if m:
        end = m.start()
    body = _WLI_NOTICE.sub("", text[start:end])
    return _CREDITS.sub("", body, count=1) if start else body


def clean_text(text: str, cfg: CleanConfig) -> str:
    """Apply the enabled cleaning steps to one document."""
    if cfg.line_endings:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if cfg.nfc:
        text = unicodedata.normalize("NFC", text)
    if cfg.control_chars:
        text = _CONTROL.sub("", text)
    if cfg.gutenberg:
        text = strip_gutenberg(text)
    if cfg.whitespace:
        text = "\n".join(line.rstrip(" \t\u00a0") for line in text.split("\n"))
        text = _BLANK_RUNS.sub("\n\n", text).strip()
    return text
