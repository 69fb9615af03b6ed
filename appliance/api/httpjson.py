"""JSON request parsing and JSON errors: bad input gets a 4xx with a message, never a 500."""

from __future__ import annotations

import json
from typing import Any, NoReturn, TypeVar

from aiohttp import web

T = TypeVar("T")

MAX_JSON_BODY = 1 << 20


def error(status: int, message: str, **extra: Any) -> web.HTTPException:
    body = json.dumps({"error": message, **extra})
    cls = web.HTTPException
    exc = cls(text=body, content_type="application/json")
    exc.set_status(status)
    return exc


def fail(status: int, message: str, **extra: Any) -> NoReturn:
    raise error(status, message, **extra)


async def read_json(request: web.Request, *, optional: bool = False) -> dict[str, Any]:
    """Parse a JSON object body or raise 400/413 with a message that says what is wrong."""
    if request.content_length is not None and request.content_length > MAX_JSON_BODY:
        fail(413, f"request body larger than {MAX_JSON_BODY} bytes")
    raw = await request.content.read(MAX_JSON_BODY + 1)
    if len(raw) > MAX_JSON_BODY:
        fail(413, f"request body larger than {MAX_JSON_BODY} bytes")
    return parse_json_body(raw, optional=optional)


def parse_json_body(raw: bytes, *, optional: bool = False) -> dict[str, Any]:
    """The JSON object in *raw*, or a 400 saying what is wrong (*optional*: empty gives {})."""
    if not raw.strip():
        if optional:
            return {}
        fail(400, "request body must be a JSON object")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        fail(400, f"malformed JSON: {exc}")
    except RecursionError:
        # "[[[[..." raises RecursionError, not ValueError: it was a 500 (and a traceback per
        # request) for a body far below the size limit.
        fail(400, "malformed JSON: nested too deeply")
    if not isinstance(data, dict):
        fail(400, "request body must be a JSON object")
    return data


def get_field(
    data: dict[str, Any], name: str, kind: type[T] | tuple[type, ...], default: Any = ...
) -> Any:
    """Typed field access; bool is never accepted where a number is expected."""
    if name not in data:
        if default is ...:
            fail(400, f"missing field {name!r}")
        return default
    value = data[name]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        fail(400, f"field {name!r} must be {_names(kinds)}, not a boolean")
    if not isinstance(value, kinds):
        fail(400, f"field {name!r} must be {_names(kinds)}, not {type(value).__name__}")
    return value


def _names(kinds: tuple[type, ...]) -> str:
    names = {
        int: "a number",
        float: "a number",
        str: "a string",
        bool: "a boolean",
        list: "a list",
        dict: "an object",
    }
    return " or ".join(dict.fromkeys(names.get(k, k.__name__) for k in kinds))


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=json.dumps)
