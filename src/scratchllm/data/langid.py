"""Offline language identification from stop-word profiles and scripts.

The most frequent words of a language are short function words ("the", "und", "que"), and
they make up 30-50% of running text. So a document's language is the one whose function
words cover the largest share of its words. This needs no model file and no network, is exact
to reason about, and works well on long documents (books, articles); it is weak on a tweet of
three words, which is why `identify` also returns the score. Texts mostly in a non-Latin script
(Cyrillic, Greek, CJK, Arabic, Hebrew, Devanagari) are labelled by script, since their words
would match no Latin-script list.

Accuracy on the raw Gutenberg set (books labelled by their "Language:" header) is measured in
bench/data_gutenberg.py and reported in docs/data.md.

>>> identify("Le chat est sur la table et il ne veut pas en descendre pour le dîner.")[0]
'fr'
>>> identify("The cat is on the table and it does not want to come down for dinner.")[0]
'en'
"""

from __future__ import annotations

import re
from collections import Counter

# ~25 of the most frequent words per language (frequency lists of each language's prose),
# chosen to overlap little between languages.
PROFILES: dict[str, frozenset[str]] = {k: frozenset(v.split()) for k, v in {
    "en": "the and of to a in that is was he for it with as his on be at by i had not are but from "
          "this have which she they you were her",
    "fr": "le la les de des et est un une du que qui dans pour pas au sur il elle ne se sont avec "
          "mais nous vous je ce aux",
    "de": "der die das und ist nicht ein eine zu den von mit sich des auf für im dem es auch er sie "
          "ich wie aber noch wird",
    "es": "el la los las de que y en un una es por con para del se no al lo como más pero sus le "
          "su ya muy fue era",
    "it": "il di che e la un una per non sono del della con si è le gli alla anche ma più come nel "
          "ho mi questo io",
    "pt": "o a os as de que e do da em um uma para com não no na por se ao dos mais mas foi ele "
          "era seu sua",
    "nl": "de het een en van is dat niet ik je die op te zijn met voor hij er maar ook als aan bij "
          "nog wat zij",
    "la": "et in est non ad cum quod ut sed qui quae enim esse sunt atque etiam quam eius autem "
          "nec per hoc ab vel",
    "fi": "ja on ei se että hän oli ovat mutta kun niin tai kuin mitä minä sinä joka myös jo "
          "vain hänen sen ole",
    "sv": "och att det är som en på för av med till den har inte jag om de ett var så men han "
          "hon sig ej",
    "da": "og at det er en til på af med for den ikke jeg har som de et var han hun sig men så "
          "om vi der",
    "pl": "i w na nie się z do że to jest jak o co ale a po od tak jego był przez dla już by "
          "tylko",
    "hu": "a az és hogy nem egy is de van meg csak mint ha már el volt én ez azt még ki sem "
          "mert vagy",
    "eo": "la kaj de en estas al ne mi li ŝi ni ili kun por sed el pri kiu tiu sia ankaŭ estis "
          "kiel unu",
}.items()}

_SCRIPTS = [  # (label, regex of the script's letters)
    ("ru", re.compile(r"[\u0400-\u04ff]")),
    ("el", re.compile(r"[\u0370-\u03ff\u1f00-\u1fff]")),
    ("zh", re.compile(r"[\u4e00-\u9fff]")),
    ("ja", re.compile(r"[\u3040-\u30ff]")),
    ("ar", re.compile(r"[\u0600-\u06ff]")),
    ("he", re.compile(r"[\u0590-\u05ff]")),
    ("hi", re.compile(r"[\u0900-\u097f]")),
]
_WORD = re.compile(r"[^\W\d_]+")
SAMPLE_CHARS = 30_000  # the language of a book is clear long before its end; bounds the cost


def identify(text: str) -> tuple[str, float]:
    """(language code, score): the language whose stop words cover the most words, and that share.

    Returns ("unknown", 0.0) for text with no words.
    """
    sample = text[:SAMPLE_CHARS] if len(text) <= 3 * SAMPLE_CHARS else \
        text[len(text) // 3 : len(text) // 3 + SAMPLE_CHARS]  # skip front matter of long texts
    tokens = _WORD.findall(sample.lower())
    letters = sum(map(len, tokens))
    if letters:
        for label, pattern in _SCRIPTS:
            if len(pattern.findall(sample)) > 0.3 * letters:
                return label, 1.0
    if not tokens:
        return "unknown", 0.0
    counts = Counter(tokens)
    scores = {lang: sum(counts[w] for w in words) / len(tokens) for lang, words in PROFILES.items()}
    best = max(scores, key=lambda k: (scores[k], k))
    return best, scores[best]
