"""The one JSON decoder for everything a client sends: HTTP bodies, the login form, ``/api/ws``
messages and WebRTC data-channel messages.

``json.loads`` recurses once per ``[`` or ``{``, so a few kilobytes of brackets raise
``RecursionError`` — not a ``ValueError``, so every caller that only caught ``ValueError`` turned
it into a 500 with a traceback (HTTP) or a dead socket (WebSocket). Here it becomes a
:class:`JsonError` like any other bad input. Nesting that Python can still decode but no API
message needs (deeper than :data:`MAX_DEPTH`) is refused too, so later code that walks or
re-encodes a value (``json.dumps`` of an error's ``extra`` fields, ``repr`` in a log line) can
never hit the recursion limit on client data.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 64
"""Deepest nesting accepted; the deepest API body today is 2 (``templates`` in a script run)."""


class JsonError(ValueError):
    """Client-supplied JSON that cannot be used; the message says why and is safe to send back."""


def decode_json(raw: bytes | str) -> Any:
    """Decode ``raw`` or raise :class:`JsonError` (malformed, undecodable text, or too deep)."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise JsonError(f"JSON nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # includes JSONDecodeError and UnicodeDecodeError
        raise JsonError(f"malformed JSON: {exc}") from None
    # Cheap gate: without more brackets than MAX_DEPTH the value cannot be too deep, so the walk
    # below only runs for bodies with many containers (or many brackets inside strings).
    if _brackets(raw) > MAX_DEPTH and _deeper_than(value, MAX_DEPTH):
        raise JsonError(f"JSON nested deeper than {MAX_DEPTH} levels")
    return value


def _brackets(raw: bytes | str) -> int:
    if isinstance(raw, str):
        return raw.count("[") + raw.count("{")
    return raw.count(b"[") + raw.count(b"{")


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value`` nests more than ``limit`` containers; iterative, so it cannot recurse."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False
