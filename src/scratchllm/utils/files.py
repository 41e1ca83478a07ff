"""Reading TOML and JSON files with the project's error messages: one sentence naming the file and the fix.

Every stage reads configs, recipes, tokenizer files, metadata. A missing or malformed file must
end as a `UserError` ("config file 'x.toml' does not exist; check the path"), never a bare
traceback, so the checks live here once. What a file must *contain* is the caller's business:
this module only turns bytes into a dict.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "a.toml").write_text("[model]\\nn_layer = 2\\n")
>>> read_toml(d / "a.toml", "config file")
{'model': {'n_layer': 2}}
>>> _ = (d / "b.json").write_text("{oops")
>>> read_json(d / "b.json", "tokenizer file", bad="re-create it")
Traceback (most recent call last):
scratchllm.errors.UserError: tokenizer file '...b.json' is not valid JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1)); re-create it
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any

from scratchllm.errors import UserError


def _read_text(path: Path, what: str, fix: str) -> str:
    if not path.is_file():
        raise UserError(f"{what} '{path}' does not exist; {fix}")
    return path.read_text(encoding="utf-8")


def parse_toml(text: str, where: str, bad: str = "fix the file") -> dict[str, Any]:
    """TOML `text` as a dict; `where` names it in the error (e.g. "recipe 'gutenberg'")."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{where} is not valid TOML ({e}); {bad}") from None


def read_toml(path: str | os.PathLike, what: str, fix: str = "check the path",
              bad: str = "fix the file") -> dict[str, Any]:
    """The TOML file `path` as a dict; `what` names the kind of file, `fix`/`bad` end the messages."""
    path = Path(path)
    return parse_toml(_read_text(path, what, fix), f"{what} '{path}'", bad)


def read_json(path: str | os.PathLike, what: str, fix: str = "check the path",
              bad: str = "fix the file", *, obj: bool = False) -> Any:
    """The parsed JSON file `path` (with `obj=True` it must be a JSON object); messages as `read_toml`."""
    path = Path(path)
    try:
        data = json.loads(_read_text(path, what, fix))
    except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError is a ValueError
        raise UserError(f"{what} '{path}' is not valid JSON ({e}); {bad}") from None
    if obj and not isinstance(data, dict):
        raise UserError(f"{what} '{path}' must hold a JSON object; {bad}")
    return data
