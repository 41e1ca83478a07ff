"""Plain helpers for the data tests: natural-looking random prose, JSONL writers (a uniquely named
module: `from conftest import` would pick whichever test folder's conftest was imported first)."""

import json
import random

# Common English words (stop words included, so documents pass the Gopher stop-word rule) plus
# a larger pool of content words: random sentences over them repeat no 5-gram by chance.
STOP = "the of and to in that was with for as on at by his her be have had it is".split()
CONTENT = [f"{a}{b}" for a in ("gar", "mel", "ton", "ris", "pal", "dun", "vek", "sol", "bra", "fin")
           for b in ("den", "low", "mer", "sith", "ka", "ward", "ish", "ton", "ble", "ron")]
CONTENT += "river mountain candle window letter garden morning evening silver winter summer forest".split()


def prose(n_words: int, seed: int) -> str:
    """A document of `n_words` words in sentences, deterministic from `seed`."""
    rng = random.Random(seed)
    words = []
    while len(words) < n_words:
        sentence = [rng.choice(STOP if rng.random() < 0.4 else CONTENT) for _ in range(rng.randint(6, 14))]
        sentence[0] = sentence[0].capitalize()
        sentence[-1] += "."
        words.extend(sentence)
    text = " ".join(words[:n_words])
    return text if text.endswith(".") else text + "."


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write((row if isinstance(row, str) else json.dumps(row)) + "\n")
    return path
