"""JSON errors for the whole API: ``{"error": "..."}`` with ``application/json``, whoever raised.

Our handlers already answer bad input with JSON (:mod:`appliance.api.httpjson`), but aiohttp's own
answers — unknown route (404), wrong method (405), a WebSocket route fetched without an upgrade
(400), an unexpected exception (500) — are ``text/plain``, and a script that does
``resp.json()`` on every error then fails on the one it most needs to read. This middleware is
the outermost one, so it sees those too, and the auth middleware's 401/403 (already JSON) pass
through unchanged.

Only ``/api/...`` is converted. Pages (``/``, ``/login``) and ``/static/`` keep aiohttp's plain
answers: a browser shows plain text as it is, where JSON would only look broken, and unauthenticated
pages are redirected to the login page before any of this runs.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import hdrs, web

log = logging.getLogger(__name__)

API_PREFIX = "/api/"
JSON = "application/json"
# Headers of the original error that describe its body; everything else (Allow,
# WWW-Authenticate, Retry-After, ...) is kept.
_BODY_HEADERS = frozenset(
    h.lower() for h in (hdrs.CONTENT_TYPE, hdrs.CONTENT_LENGTH, hdrs.CONTENT_ENCODING)
)


def _message(request: web.Request, exc: web.HTTPException) -> str:
    """What went wrong, in words a script author can act on."""
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        return f"method {exc.method} not allowed on {request.path} (allowed: {allowed})"
    if isinstance(exc, web.HTTPNotFound) and exc.text == f"{exc.status}: {exc.reason}":
        return f"no such API route: {request.path}"
    text = (exc.text or "").strip()
    # aiohttp's default body is "<status>: <reason>"; a handler's own text is more useful.
    if not text or text == f"{exc.status}: {exc.reason}":
        return exc.reason or f"HTTP {exc.status}"
    return text


def _json_error(status: int, message: str, headers: Any = ()) -> web.Response:
    kept = {k: v for k, v in dict(headers).items() if k.lower() not in _BODY_HEADERS}
    return web.json_response({"error": message}, status=status, headers=kept)


@web.middleware
async def json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Turn every error on an ``/api/`` path into a JSON one (4xx and 5xx alike)."""
    if not request.path.startswith(API_PREFIX):
        return await handler(request)  # type: ignore[no-any-return]
    try:
        return await handler(request)  # type: ignore[no-any-return]
    except web.HTTPException as exc:
        if exc.status < 400 or (exc.content_type == JSON and exc.text):
            raise  # redirects, and errors that are JSON already (httpjson.fail)
        return _json_error(exc.status, _message(request, exc), exc.headers)
    except Exception:
        if request.writer.output_size > 0:
            # A stream or WebSocket had started: no new response can be sent. aiohttp logs it
            # and closes the connection, as it would without this middleware.
            raise
        # The client gets no traceback (it could reveal paths, config or secrets); the log does.
        log.exception("unhandled error in %s %s", request.method, request.path)
        return _json_error(500, "internal server error (see the appliance log)")
