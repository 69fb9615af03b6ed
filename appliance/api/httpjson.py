"""JSON request parsing and JSON errors: bad input gets a 4xx with a message, never a 500."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from aiohttp import web

from appliance import fields
from appliance.jsondecode import JsonError, decode_json

T = TypeVar("T")

MAX_JSON_BODY = 1 << 20
"""The documented body limit of every JSON route (also the app's ``client_max_size``)."""


def error(status: int, message: str, **extra: Any) -> web.HTTPException:
    body = json.dumps({"error": message, **extra})
    cls = web.HTTPException
    exc = cls(text=body, content_type="application/json")
    exc.set_status(status)
    return exc


def fail(status: int, message: str, **extra: Any) -> NoReturn:
    raise error(status, message, **extra)


class BodyTooLarge(ValueError):
    """The request body is over its limit (the message says which); answer 413."""


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole request body, or :class:`BodyTooLarge` as soon as it passes ``limit`` bytes.

    ``request.content.read(n)`` returns whatever has arrived so far, not ``n`` bytes: one call
    cut bodies of a few hundred kilobytes short (and they then failed as malformed JSON). So read
    until EOF, asking for no more than one byte past the limit, which also stops a chunked body
    (no Content-Length to check up front) from being buffered past it. aiohttp discards the rest.
    """
    too_large = f"request body larger than {limit} bytes"
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge(too_large)
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(limit + 1 - size):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(too_large)
    return b"".join(chunks)


async def read_json(request: web.Request, *, optional: bool = False) -> dict[str, Any]:
    """Parse a JSON object body or raise 400/413 with a message that says what is wrong."""
    try:
        raw = await read_body(request, MAX_JSON_BODY)
    except BodyTooLarge as exc:
        fail(413, str(exc))
    return parse_json_body(raw, optional=optional)


def parse_json_body(raw: bytes, *, optional: bool = False) -> dict[str, Any]:
    """The JSON object in *raw*, or a 400 saying what is wrong (*optional*: empty gives {})."""
    if not raw.strip():
        if optional:
            return {}
        fail(400, "request body must be a JSON object")
    try:
        data = decode_json(raw)
    except JsonError as exc:
        fail(400, str(exc))
    if not isinstance(data, dict):
        fail(400, "request body must be a JSON object")
    return data


def get_field(
    data: dict[str, Any], name: str, kind: type[T] | tuple[type, ...], default: Any = ...
) -> Any:
    """Typed field access (:func:`appliance.fields.typed`); a bad field is a 400."""
    try:
        return fields.typed(data, name, kind, fields.MISSING if default is ... else default)
    except fields.FieldError as exc:
        fail(400, str(exc))


def field_or_400(check: Callable[[], T]) -> T:
    """Run one :mod:`appliance.fields` check; its FieldError becomes a 400 with its message."""
    try:
        return check()
    except fields.FieldError as exc:
        fail(400, str(exc))


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=json.dumps)
