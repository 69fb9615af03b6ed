"""``GET /api/openapi.json``: the OpenAPI 3.1 document, assembled from the app's own router.

Why from the router: the routes an appliance serves depend on its target (no ``/api/power``
without a power facet, ``/api/demo/*`` only on the demo), so a static file would be wrong for
some target. Walking ``app.router`` and reading the :class:`~appliance.api.openapi.Operation`
each handler carries gives the document of *this* app, and a route without a description is
found by :func:`documented_routes` (``tests/test_openapi.py`` fails on it).

Built on the first request, not at start-up: on a 512 MB board the service should not spend
start-up time and memory on a document most appliances are never asked for. The JSON bytes are
then kept on the app (:data:`OPENAPI`), not in a module global.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from appliance import __version__
from appliance.api import openapi as oa
from appliance.api.openapi import Operation, Param, Reply, describe, ok

routes = web.RouteTableDef()

STATIC_PREFIX = "/static/"
_STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
AUTH_SCHEMES = {
    "cookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": "ipkvm_session",
        "description": "The session cookie set by POST /api/auth/login.",
    },
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token from `ipkvm token create NAME` (ipk_...).",
    },
    "basic": {
        "type": "http",
        "scheme": "basic",
        "description": "admin and the appliance password; throttled like logins.",
    },
}

# aiohttp's static handler, which carries no description of its own.
STATIC_OPERATION = Operation(
    summary="The console's static files (no login needed)",
    description="Any path segment starting with '.' is 404, whether or not the file exists. "
    "The path may contain '/'. Errors here are plain text, not JSON.",
    tag="pages",
    public=True,
    params=(Param("filename", oa.string("a file under web/"), where="path", required=True),),
    replies={200: ok("the file", {}, "*/*")},
    errors={403: "refused by the static handler", 404: "not a file, or a hidden one"},
)


@dataclass(frozen=True, slots=True)
class RouteDoc:
    """One registered route and the operation that documents it (None: undocumented)."""

    method: str
    path: str
    operation: Operation | None


def _path_of(resource: web.AbstractResource) -> str:
    if isinstance(resource, web.StaticResource):
        return STATIC_PREFIX + "{filename}"
    return resource.canonical


def documented_routes(app: web.Application) -> list[RouteDoc]:
    """Every route the app registered, with its operation.

    aiohttp adds a HEAD route next to each GET (``allow_head``); HEAD answers like GET without a
    body, so it is documented by its GET and left out here.
    """
    out: list[RouteDoc] = []
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        resource = route.resource
        if resource is None:
            continue
        if isinstance(resource, web.StaticResource):
            op: Operation | None = STATIC_OPERATION
        else:
            op = oa.operation_of(route.handler)
        out.append(RouteDoc(route.method, _path_of(resource), op))
    return out


def _error(description: str, redfish: bool = False) -> dict[str, Any]:
    schema = oa.REDFISH_ERROR_REF if redfish else oa.ERROR_REF
    return {"description": description, "content": {oa.JSON: {"schema": schema}}}


def _plain_error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}}


def _reply(reply: Reply) -> dict[str, Any]:
    out: dict[str, Any] = {"description": reply.description}
    if reply.schema is not None:
        out["content"] = {reply.media_type: {"schema": reply.schema}}
    if reply.headers:
        out["headers"] = {
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in reply.headers.items()
        }
    return out


def _auth_errors(method: str, op: Operation) -> dict[int, str]:
    """What the auth middleware may answer before the handler runs (always JSON)."""
    errors: dict[int, str] = {}
    if not op.public:
        errors[401] = "no credentials, or wrong ones"
        # The HTTP Basic check is throttled and bounded (see docs/api.md).
        errors[429] = "too many failed password checks from this address (Retry-After)"
        errors[503] = "too many password checks in progress (Retry-After)"
        errors[403] = (
            f"the caller's role lacks the right '{op.permission}' (docs/security.md#roles), "
            "someone else has exclusive control, or two-factor enrolment is required"
        )
    if method in _STATE_CHANGING or op.extensions.get("x-websocket"):
        errors[403] = (
            errors.get(403, "") + "; " if 403 in errors else ""
        ) + "cross-origin request refused (Origin does not match Host)"
    return errors


def _handler_errors(path: str, op: Operation) -> dict[int, str]:
    """The errors any handler of this kind can answer, besides those it declares."""
    errors: dict[int, str] = {}
    if op.body is not None:
        errors[400] = "malformed JSON, a missing or wrong field, or a value out of range"
        errors[413] = "request body too large"
    if path.startswith(("/api/", "/redfish")):
        errors[500] = "internal server error (details in the appliance log, not here)"
    return errors


def _operation(method: str, path: str, op: Operation) -> dict[str, Any]:
    out: dict[str, Any] = {
        "operationId": f"{method.lower()}{path}".replace("/", "_").replace(".", "_").strip("_"),
        "summary": op.summary,
    }
    if op.description:
        out["description"] = op.description
    if op.tag:
        out["tags"] = [op.tag]
    if op.public:
        out["security"] = []
    if op.permission is not None:
        out["x-permission"] = op.permission
    if op.params:
        out["parameters"] = [
            {
                "name": p.name,
                "in": p.where,
                "required": p.required or p.where == "path",
                "schema": p.schema,
                **({"description": p.description} if p.description else {}),
            }
            for p in op.params
        ]
    if op.body is not None:
        out["requestBody"] = {
            "required": op.body_required,
            "content": {op.body_type: {"schema": op.body}},
        }
    # Handler errors under /api/ are JSON (appliance.api.errors), under /redfish Redfish's error
    # bodies (appliance.api.redfish); pages and /static/ keep aiohttp's plain text. The auth
    # middleware's answers are JSON everywhere.
    replies = {s: _reply(r) for s, r in op.replies.items()}
    handler = {**_handler_errors(path, op), **op.errors}
    redfish = path.startswith("/redfish")
    plain = not path.startswith("/api/") and not redfish
    for status, text in handler.items():
        replies[status] = _plain_error(text) if plain else _error(text, redfish)
    for status, text in _auth_errors(method, op).items():
        replies[status] = _error(text, redfish)
    out["responses"] = {str(s): replies[s] for s in sorted(replies)}
    out.update(op.extensions)
    return out


def _components() -> dict[str, Any]:
    job = oa.obj(
        ("job", "kind", "status", "completed", "total", "started", "finished"),
        job=oa.integer(1),
        kind=oa.enum("type", "keys", "script", "media_fetch"),
        status=oa.enum("running", "done", "failed", "cancelled"),
        completed=oa.integer(
            0, description="characters, chords, script commands or bytes (media_fetch) done"
        ),
        total=oa.integer(0),
        started=oa.number(description="Unix time, seconds"),
        finished=oa.nullable(oa.number()),
        detail={"type": "object"},
        result={"type": "object"},
        error=oa.string("why it failed or was cancelled (plus kind-specific fields)"),
    )
    device = oa.obj(
        ("online", "error", "queued", "discarded"),
        online=oa.nullable(oa.BOOLEAN),
        error=oa.nullable(oa.string()),
        queued=oa.integer(0),
        discarded=oa.integer(0),
    )
    state = oa.obj(
        ("version", "target", "hid", "video", "clients"),
        version=oa.string(),
        target=oa.obj(
            ("kind", "facets", "power"),
            kind=oa.string(),
            facets={"type": "object", "additionalProperties": oa.BOOLEAN},
            power=oa.enum("on", "off", "unknown"),
        ),
        hid=oa.obj(
            ("output", "online", "leds", "mouse_mode", "keys_held", "queued", "layout", "error"),
            output=oa.string(),
            online=oa.nullable(oa.BOOLEAN),
            leds={"type": "object", "additionalProperties": oa.BOOLEAN},
            mouse_mode=oa.enum("absolute", "relative"),
            keys_held=oa.array(oa.string()),
            queued=oa.integer(0),
            layout=oa.string(),
            error=oa.nullable(oa.string()),
            devices={"type": "object", "additionalProperties": device},
        ),
        video=oa.obj(
            ("status", "message", "width", "height", "fps"),
            status=oa.enum("ok", "no_signal", "no_device", "starting", "target_off"),
            message=oa.string(),
            width=oa.integer(0),
            height=oa.integer(0),
            fps=oa.number(0),
            format=oa.nullable(oa.enum("bgr", "mjpeg", "yuyv", "uyvy", "nv12", "i420")),
            work={
                "type": "object",
                "description": "passes over a picture since start: decodes, encodes, "
                "conversions, copies (totals, per_frame, and per stage with cpu_ms); "
                "docs/video.md",
            },
            encoder=oa.obj(
                ("requested", "codec", "hardware", "fallback_reason", "subscribers"),
                requested=oa.enum("auto", "libx264", "h264_v4l2m2m"),
                codec=oa.string("the H.264 encoder in use; empty before the first frame"),
                hardware=oa.BOOLEAN,
                fallback_reason=oa.string("why the hardware encoder is not in use"),
                subscribers=oa.integer(0),
            ),
        ),
        clients=oa.integer(0),
    )
    error = oa.obj(
        ("error",),
        error=oa.string("what went wrong; some errors add fields (line, column, job, ...)"),
    )
    redfish_error = oa.obj(
        ("error",),
        error={
            "type": "object",
            "required": ["code", "message", "@Message.ExtendedInfo"],
            "properties": {
                "code": oa.string("the MessageId of the Base registry message that says it"),
                "message": oa.string("what went wrong"),
                "@Message.ExtendedInfo": oa.array({"type": "object"}),
            },
        },
    )
    return {
        "schemas": {"Error": error, "Job": job, "RedfishError": redfish_error, "State": state},
        "securitySchemes": AUTH_SCHEMES,
    }


def build_document(app: web.Application) -> dict[str, Any]:
    """The OpenAPI 3.1 document of *app*'s documented routes."""
    paths: dict[str, dict[str, Any]] = {}
    for doc in documented_routes(app):
        if doc.operation is None:
            continue  # tests/test_openapi.py fails on these; the document stays valid
        paths.setdefault(doc.path, {})[doc.method.lower()] = _operation(
            doc.method, doc.path, doc.operation
        )
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "info": {
            "title": "ipkvm",
            "version": __version__,
            "description": "The HTTP and WebSocket API of this appliance (docs/api.md has the "
            "prose). Every GET route also answers HEAD. Errors under /api/ are JSON objects "
            '{"error": "..."}; pages and /static/ answer errors in plain text.',
        },
        "security": [{name: []} for name in AUTH_SCHEMES],
        "paths": dict(sorted(paths.items())),
        "components": _components(),
    }


class LazyDocument:
    """The document's JSON, built on first use and kept for the app's lifetime (its routes do
    not change once it serves)."""

    def __init__(self) -> None:
        self._body: bytes | None = None

    def body(self, app: web.Application) -> bytes:
        if self._body is None:
            self._body = json.dumps(build_document(app), separators=(",", ":")).encode()
        return self._body


OPENAPI: web.AppKey[LazyDocument] = web.AppKey("openapi", LazyDocument)


def setup(app: web.Application) -> None:
    """Add ``GET /api/openapi.json``; the document is built when it is first asked for."""
    app[OPENAPI] = LazyDocument()
    app.add_routes(routes)


@routes.get("/api/openapi.json")
@describe(
    Operation(
        permission="view",
        summary="This OpenAPI 3.1 document",
        description="Describes the routes of this appliance: they depend on its target "
        "(e.g. /api/power only with a power facet, /api/demo/* only on the demo target).",
        tag="meta",
        replies={200: ok("the document", {"type": "object"})},
    )
)
async def openapi_json(request: web.Request) -> web.Response:
    body = request.app[OPENAPI].body(request.app)
    return web.Response(body=body, content_type=oa.JSON)
