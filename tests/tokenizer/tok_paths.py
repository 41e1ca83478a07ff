"""Where the shared tokenizer files are (a uniquely named module, importable from any test file)."""

import os
from pathlib import Path

DATA = Path(os.environ.get("SCRATCHLLM_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
TOKDIR = DATA / "tokenizer"
ENCODINGS = ["gpt2", "cl100k_base", "o200k_base"]
