"""Where the shared tokenizer files are (a uniquely named module, importable from any test file)."""

from shared_data import SHARED_DATA

TOKDIR = SHARED_DATA / "tokenizer"
ENCODINGS = ["gpt2", "cl100k_base", "o200k_base"]
