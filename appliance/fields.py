"""Typed fields of client data: REST bodies, WebSocket and data-channel messages, query strings.

One family of checks for every way a client sends values, so a field means the same thing and
is refused with the same words whichever way it came (the front end turns :class:`FieldError`
into a 400 or an ``error`` event). Booleans are never numbers here: JSON ``true`` is not 1, and a
client that sends it has a bug worth hearing about. The configuration file has its own checks
(:mod:`appliance.config.checks`): its messages name dotted TOML keys, not request fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

MISSING: Final[Any] = object()
"""Default for a required field."""

_NAMES: Final[dict[type, str]] = {
    int: "a number",
    float: "a number",
    str: "a string",
    bool: "a boolean",
    list: "a list",
    dict: "an object",
}


class FieldError(ValueError):
    """A field that is missing, of the wrong type or out of range; the message says which."""


def _kinds(kinds: tuple[type, ...]) -> str:
    return " or ".join(dict.fromkeys(_NAMES.get(k, k.__name__) for k in kinds))


def typed(
    data: Mapping[str, Any], name: str, kind: type | tuple[type, ...], default: Any = MISSING
) -> Any:
    """``data[name]`` if it is of *kind*; *default* when absent (required when MISSING)."""
    if name not in data:
        if default is MISSING:
            raise FieldError(f"missing field {name!r}")
        return default
    value = data[name]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        raise FieldError(f"field {name!r} must be {_kinds(kinds)}, not a boolean")
    if not isinstance(value, kinds):
        raise FieldError(f"field {name!r} must be {_kinds(kinds)}, not {type(value).__name__}")
    return value


def number(
    data: Mapping[str, Any], name: str, lo: float, hi: float, default: Any = MISSING
) -> float:
    """A number (int or float) within ``lo..hi``."""
    value = typed(data, name, (int, float), default)
    if value is not default and not lo <= value <= hi:
        raise FieldError(f"field {name!r} must be between {lo:g} and {hi:g}")
    return float(value) if value is not default else value


def integer(data: Mapping[str, Any], name: str, lo: int, hi: int, default: Any = MISSING) -> int:
    """An integer within ``lo..hi`` (1.0 is not an integer: a client sending it has a bug)."""
    value = typed(data, name, int, default)
    if value is not default and not lo <= value <= hi:
        raise FieldError(f"field {name!r} must be between {lo} and {hi}")
    return int(value)


def boolean(data: Mapping[str, Any], name: str, default: Any = MISSING) -> bool:
    return bool(typed(data, name, bool, default))


def query_integer(query: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    """An integer query parameter (``?fps=5``) within ``lo..hi``; *default* when absent."""
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise FieldError(f"query parameter {name!r} must be an integer") from None
    if not lo <= value <= hi:
        raise FieldError(f"query parameter {name!r} must be between {lo} and {hi}")
    return value
