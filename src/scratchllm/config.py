"""Configs are dataclasses; presets are TOML files; the command line overrides with `key=value`.

Every stage defines its config as a (possibly nested) dataclass with defaults that work.
This module turns TOML tables and dotted overrides into those dataclasses, checking every key
and type so a typo is a one-line error instead of a silently ignored setting.

>>> from dataclasses import dataclass, field
>>> @dataclass
... class Model:
...     n_layer: int = 2
...     dropout: float = 0.0
>>> @dataclass
... class Run:
...     model: Model = field(default_factory=Model)
...     name: str = "demo"
>>> cfg = from_dict(Run, {"model": {"n_layer": 4}})
>>> cfg = apply_overrides(cfg, ["model.dropout=0.1", "name=big"])
>>> cfg.model.n_layer, cfg.model.dropout, cfg.name
(4, 0.1, 'big')
"""


import dataclasses
import difflib
import tomllib
import types
import typing
from importlib import resources
from typing import Any, TypeVar

import tomli_w

from scratchllm.errors import UserError
from scratchllm.utils.files import parse_toml, read_toml

T = TypeVar("T")


def _unknown_key(key: str, valid: list[str], where: str) -> UserError:
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f"did you mean '{where}{close[0]}'?" if close else f"valid keys: {', '.join(sorted(valid))}"
    return UserError(f"unknown config key '{where}{key}'; {hint}")


def _coerce(value: Any, typ: Any, name: str) -> Any:
    """Check `value` against the annotation `typ`, converting int→float where a float is wanted."""
    origin = typing.get_origin(typ)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(typ)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, name)
            except UserError as e:
                errors.append(e)
        raise errors[0]
    if origin is typing.Literal:
        if value not in typing.get_args(typ):
            choices = ", ".join(repr(a) for a in typing.get_args(typ))
            raise UserError(f"config key '{name}' got {value!r}; choose one of {choices}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise UserError(f"config key '{name}' needs a list, got {value!r}")
        (inner, *_) = typing.get_args(typ) or (Any,)
        items = [_coerce(v, inner, name) for v in value]
        return items if origin is list else tuple(items)
    if origin is dict or typ is dict:
        if not isinstance(value, dict):
            raise UserError(f"config key '{name}' needs a table, got {value!r}")
        return dict(value)
    if dataclasses.is_dataclass(typ):
        if not isinstance(value, dict):
            raise UserError(f"config key '{name}' is a table; set its fields as '{name}.FIELD=VALUE'")
        return from_dict(typ, value, where=f"{name}.")
    if typ is Any:
        return value
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if typ is bool and not isinstance(value, bool):
        raise UserError(f"config key '{name}' needs true or false, got {value!r}")
    if typ in (int, float) and isinstance(value, bool):
        raise UserError(f"config key '{name}' needs a number, got {value!r}")
    if isinstance(typ, type) and not isinstance(value, typ):
        raise UserError(f"config key '{name}' needs a {typ.__name__}, got {value!r}")
    return value


def from_dict(cls: type[T], data: dict[str, Any], where: str = "") -> T:
    """Build dataclass `cls` from a (nested) dict; unknown keys and wrong types raise UserError."""
    types_ = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            raise _unknown_key(key, names, where)
        kwargs[key] = _coerce(value, types_[key], f"{where}{key}")
    obj = cls(**kwargs)
    post = getattr(obj, "validate", None)
    if callable(post):
        post()
    return obj


def to_dict(cfg: Any) -> dict[str, Any]:
    """The config as a plain nested dict (what `from_dict` takes back)."""
    return dataclasses.asdict(cfg)


def _parse_value(text: str) -> Any:
    # Values are TOML literals (4, 0.1, true, "x", [1, 2]); a bare word is taken as a string.
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(cfg: T, overrides: list[str]) -> T:
    """Return a copy of `cfg` with dotted `key=value` overrides applied (and type-checked)."""
    data = to_dict(cfg)
    for item in overrides:
        if "=" not in item:
            raise UserError(f"override '{item}' is not of the form key=value (e.g. model.n_layer=4)")
        key, text = item.split("=", 1)
        parts = key.strip().split(".")
        node = data
        for i, part in enumerate(parts[:-1]):
            if not isinstance(node.get(part), dict):
                raise _unknown_key(part, [k for k, v in node.items() if isinstance(v, dict)],
                                   ".".join(parts[:i]) + ("." if i else ""))
            node = node[part]
        if parts[-1] not in node:
            raise _unknown_key(parts[-1], list(node), ".".join(parts[:-1]) + ("." if len(parts) > 1 else ""))
        node[parts[-1]] = _parse_value(text.strip())
    return from_dict(type(cfg), data)


def dotted_keys(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested table as one level of dotted keys, the names overrides use.

    >>> dotted_keys({"model": {"n_layer": 4}, "name": "big"})
    {'model.n_layer': 4, 'name': 'big'}
    """
    out: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            out.update(dotted_keys(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_drop_none(v) for v in value]
    return value


def dumps_toml(cfg: Any) -> str:
    """The config as TOML text (None values are left out: they mean 'use the default')."""
    return tomli_w.dumps(_drop_none(to_dict(cfg)))


def preset_names() -> list[str]:
    """Names of the presets shipped with the package (src/scratchllm/presets/*.toml)."""
    root = resources.files("scratchllm") / "presets"
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".toml"))


def load_preset(name: str) -> dict[str, Any]:
    """A shipped preset by name (e.g. 'tiny-cpu') or any TOML file by path, as a dict."""
    if name.endswith(".toml") or "/" in name:
        return read_toml(name, "config file")
    root = resources.files("scratchllm") / "presets"
    path = root / f"{name}.toml"
    if not path.is_file():
        raise UserError(f"unknown preset '{name}'; choose one of: {', '.join(preset_names())}")
    return parse_toml(path.read_text(encoding="utf-8"), f"preset '{name}'")
