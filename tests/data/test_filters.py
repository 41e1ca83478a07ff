"""Each quality rule on crafted documents that must pass and must fail; language id."""

import pytest

from data_helpers import prose
from scratchllm.data import langid
from scratchllm.data.filters import FilterConfig, check, dup_ngram_char_frac
from scratchllm.data.textstats import words

NO_LANG = FilterConfig(languages=[])


def rule(text, **overrides):
    cfg = FilterConfig(**{"languages": [], **overrides})
    drop = check(text, cfg)
    return drop.rule if drop else None


def test_clean_prose_passes_every_rule():
    assert check(prose(300, 0), FilterConfig()) is None


def test_word_count_bounds():
    assert rule(prose(30, 1)) == "min_words"
    assert rule(prose(300, 1), max_words=200) == "max_words"
    assert rule(prose(300, 1), max_words=0) is None


def test_mean_word_length():
    assert rule(" ".join(["a", "to", "of", "the", "an"] * 40)) == "min_mean_word_length"
    long_words = " ".join(f"the{'x' * 20}{i} and" for i in range(60))
    assert rule(long_words) == "max_mean_word_length"


def test_symbol_to_word_ratio():
    doc = prose(200, 2) + " #tag" * 30
    assert rule(doc) == "max_symbol_word_ratio"
    assert rule(prose(200, 2) + " #tag" * 5) is None


def test_bullet_and_ellipsis_lines():
    bullets = "\n".join(f"- {prose(8, i)}" for i in range(40))
    assert rule(bullets) == "max_bullet_lines"
    ellipses = "\n".join(prose(8, i)[:-1] + "..." for i in range(40))
    assert rule(ellipses, max_symbol_word_ratio=0) == "max_ellipsis_lines"
    some = "\n".join(prose(8, i)[:-1] + ("..." if i % 5 == 0 else ".") for i in range(40))
    assert rule(some) is None


def test_alphabetic_words_and_stop_words():
    numbers = prose(100, 3) + " " + " ".join(str(1000 + i) for i in range(60))
    assert rule(numbers) == "min_alpha_words"
    no_stop = " ".join(f"garden{i} window{i} candle{i}." for i in range(40))
    assert rule(no_stop) == "min_stop_words"


def test_duplicate_lines_and_paragraphs():
    lines = [prose(10, i) for i in range(20)]
    dup_lines = "\n".join(lines + [lines[0]] * 12)
    assert rule(dup_lines) == "max_dup_line_frac"
    paras = [prose(40, i) for i in range(6)]
    dup_paras = "\n\n".join(paras + [paras[0]] * 3)
    # (each paragraph is one line here, so switch the line rules off to reach the paragraph ones)
    assert rule(dup_paras, max_dup_line_frac=0, max_dup_line_char_frac=0) == "max_dup_para_frac"
    assert rule(dup_paras, max_dup_line_frac=0, max_dup_line_char_frac=0, max_dup_para_frac=0) == "max_dup_para_char_frac"
    long_line = prose(400, 9)
    assert rule("\n".join([long_line] * 2 + [prose(10, i) for i in range(20)])) == "max_dup_line_char_frac"


def test_top_ngram_and_duplicate_ngram_fractions():
    spam = prose(150, 4) + " " + " ".join(["buy cheap stuff"] * 40)
    assert rule(spam, max_dup_line_frac=0, max_dup_line_char_frac=0) == "max_top_2gram_char_frac"
    block = prose(60, 5)
    repeated = " ".join([prose(200, 6), block, prose(100, 7), block])
    assert rule(repeated).startswith("max_dup_")  # ~20% of the words are a repeated 60-word span


def test_dup_ngram_fraction_matches_a_python_oracle():
    text = "a b c d e f a b c d e g h i j k l m a b c d e"
    w = words(text)
    toks = text.split()
    grams = [tuple(toks[i:i + 5]) for i in range(len(toks) - 4)]
    covered = set()
    for i, g in enumerate(grams):
        if grams.count(g) > 1:
            covered.update(range(i, i + 5))
    expected = sum(len(toks[i]) for i in covered) / sum(map(len, toks))
    assert dup_ngram_char_frac(w.hashes, w.lengths, 5) == pytest.approx(expected)


def test_drop_records_rule_and_value():
    drop = check(prose(30, 1), NO_LANG)
    assert drop.rule == "min_words" and drop.value == 30


def test_length_bounds_in_characters():
    assert rule(prose(100, 1), min_chars=10_000) == "min_chars"
    assert rule(prose(100, 1), max_chars=100) == "max_chars"


SAMPLES = {
    "en": "The old man walked slowly to the river, and he sat there for a long time with his dog, "
          "thinking of the years that had passed and of the friends who were gone.",
    "fr": "Le vieil homme marchait lentement vers la rivière, et il resta assis là pendant longtemps avec "
          "son chien, pensant aux années qui étaient passées et aux amis qui ne sont plus.",
    "de": "Der alte Mann ging langsam zum Fluss, und er saß dort lange Zeit mit seinem Hund und dachte an "
          "die Jahre, die vergangen waren, und an die Freunde, die nicht mehr da sind.",
    "es": "El viejo caminó despacio hasta el río, y se sentó allí durante mucho tiempo con su perro, "
          "pensando en los años que habían pasado y en los amigos que ya no estaban.",
    "it": "Il vecchio camminava lentamente verso il fiume, e rimase seduto lì per molto tempo con il suo "
          "cane, pensando agli anni che erano passati e agli amici che non sono più.",
    "nl": "De oude man liep langzaam naar de rivier, en hij zat daar een lange tijd met zijn hond, en hij "
          "dacht aan de jaren die voorbij waren en aan de vrienden die er niet meer zijn.",
    "ru": "Старик медленно шёл к реке и долго сидел там со своей собакой, думая о прошедших годах.",
}


@pytest.mark.parametrize("lang", sorted(SAMPLES))
def test_language_id_on_parallel_sentences(lang):
    assert langid.identify(SAMPLES[lang])[0] == lang


def test_language_filter_drops_other_languages():
    drop = check(" ".join([SAMPLES["fr"]] * 1) + " " + SAMPLES["fr"].replace("chien", "chat"),
                 FilterConfig(min_words=10, min_stop_words=0, max_dup_line_char_frac=0, max_top_ngram_char_frac={},
                              max_dup_ngram_char_frac={}))
    assert drop.rule == "language:fr"
    assert langid.identify("") == ("unknown", 0.0)
