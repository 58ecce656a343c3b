"""Plain data (YAML) into typed config dataclasses, with errors that name the dotted key.

:func:`from_dict` checks every value against the dataclass field's type hint (``Literal``
choices with a "did you mean", ``Optional`` sections, lists that also accept one value, numbers
written as strings such as ``1_000`` or ``2e-4``) and builds nested sections recursively.
"""
from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any, Literal, Optional, Union

from swinir.core.errors import ConfigError

__all__ = ["from_dict"]


def _type_name(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(hint))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(hint))
    if origin is list:
        return f"a list of {_type_name(typing.get_args(hint)[0])}"
    if hint is type(None):
        return "null"
    return getattr(hint, "__name__", str(hint))


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.replace("_", ""))
        except ValueError:
            return None
    return None


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Check ``value`` against ``hint`` (and convert numeric strings); raise :class:`ConfigError`."""
    origin = typing.get_origin(hint)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"config: {key} must be a mapping, got {value!r}")
        return from_dict(hint, value, key + ".")
    if origin in (Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError:
                if dataclasses.is_dataclass(arg) and isinstance(value, dict):
                    raise  # an optional section: report the problem inside it
                continue
        raise ConfigError(f"config: {key} must be {_type_name(hint)}, got {value!r}")
    if origin is Literal:
        choices = typing.get_args(hint)
        if value is None and "" in choices:
            value = ""
        if value not in choices:
            close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
            hint_text = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"config: {key} must be one of {_type_name(hint)}, got {value!r}{hint_text}")
        return value
    if origin is list:
        (item,) = typing.get_args(hint)
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            value = [value]  # a single value where a list is allowed (folders, noise levels)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config: {key} must be {_type_name(hint)}, got {value!r}")
        return [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    return _coerce_scalar(value, hint, key)


def _coerce_scalar(value: Any, hint: Any, key: str) -> Any:
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"config: {key} must be true or false, got {value!r}")
        return value
    if hint is int:
        number = _number(value)
        if number is None or not number.is_integer():
            raise ConfigError(f"config: {key} must be an integer, got {value!r}")
        return int(number)
    if hint is float:
        number = _number(value)
        if number is None:
            raise ConfigError(f"config: {key} must be a number, got {value!r}")
        return number
    if hint is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"config: {key} must be a string, got {value!r}")
        return str(value)
    raise TypeError(f"unsupported config type {hint!r} for {key}")  # pragma: no cover


def from_dict(cls: type, raw: dict[str, Any], prefix: str = "") -> Any:
    """An instance of the dataclass ``cls`` from plain data, every value checked against its type
    hint; unknown keys and bad values are a :class:`ConfigError` naming the dotted key."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=2, cutoff=0.5)
            hint = " (did you mean " + " or ".join(repr(prefix + c) for c in close) + "?)" if close else ""
            raise ConfigError(f"config: unknown key {prefix + str(key)!r}{hint}")
        values[key] = _coerce(value, hints[key], prefix + key)
    return cls(**values)
