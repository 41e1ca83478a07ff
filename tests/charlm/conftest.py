from pathlib import Path

import pytest
from shared_data import require_shared


@pytest.fixture
def names_path() -> Path:
    return require_shared("char/names.txt")


@pytest.fixture
def words_file(tmp_path) -> Path:
    """A small one-item-per-line corpus: 400 made-up names over a handful of patterns."""
    import random

    rng = random.Random(0)
    onsets, vowels, codas = ["b", "k", "m", "s", "t", "l"], ["a", "e", "i", "o"], ["", "n", "r", "la"]
    words = ["".join(rng.choice(onsets) + rng.choice(vowels) for _ in range(rng.randint(1, 3))) + rng.choice(codas)
             for _ in range(400)]
    path = tmp_path / "words.txt"
    path.write_text("\n".join(words) + "\n")
    return path


@pytest.fixture
def prose_file(tmp_path) -> Path:
    text = "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n\n" * 60
    path = tmp_path / "prose.txt"
    path.write_text(text)
    return path
