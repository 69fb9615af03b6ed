"""How a route module describes its operations for the OpenAPI document, next to its handlers.

Why a decorator on the handler rather than a separate spec file: a description kept apart from the
code drifts (a new route, a changed limit), and nobody notices until a client breaks. Here each
handler carries its :class:`Operation` (``@describe(...)`` under ``@routes.post(...)``), the limits
in it are the constants the handler checks (``MAX_TYPE_CHARS``, ``BUTTONS``, ...), and
:mod:`appliance.api.openapi_doc` builds the document by walking the app's router: a route is in the
document exactly when the app registered it (so the facets a target lacks are absent there too),
and ``tests/test_openapi.py`` fails on a registered route whose handler carries no description.

The description is an attribute of the handler function, not an entry in a module-level registry:
nothing global to mutate, and importing a route module costs one small frozen dataclass per route.
Schemas are plain dicts (JSON Schema 2020-12, the dialect of OpenAPI 3.1).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from appliance.roles import Permission

Schema = dict[str, Any]
F = TypeVar("F", bound=Callable[..., Any])

ATTRIBUTE = "__openapi_operation__"
JSON = "application/json"


@dataclass(frozen=True, slots=True)
class Param:
    """A query or path parameter."""

    name: str
    schema: Schema
    description: str = ""
    where: str = "query"  # "query" | "path"
    required: bool = False


@dataclass(frozen=True, slots=True)
class Reply:
    """One documented answer: a description and, if it has a body, its media type and schema."""

    description: str
    schema: Schema | None = None
    media_type: str = JSON
    headers: Mapping[str, str] = field(default_factory=dict)  # name → description


@dataclass(frozen=True, slots=True)
class Operation:
    """What one handler accepts and answers.

    ``errors`` maps the 4xx/5xx statuses the handler itself sends to what they mean; the
    document adds the ones every route shares (401 and the Basic check's 429/503 on private
    routes, 403 on cross-origin writes and upgrades, 413/400 on JSON bodies, 500 on ``/api/``),
    all with the JSON error object as their body.

    ``permission`` names the right the route needs and ``audit`` the audit-log event it writes:
    access control and auditing are declared here, next to the description, in one place.
    """

    summary: str
    replies: Mapping[int, Reply]
    description: str = ""
    tag: str = ""
    body: Schema | None = None
    body_required: bool = True
    body_type: str = JSON  # an upload route takes application/octet-stream
    params: tuple[Param, ...] = ()
    errors: Mapping[int, str] = field(default_factory=dict)
    public: bool = False
    extensions: Mapping[str, Any] = field(default_factory=dict)  # "x-..." keys, for WebSockets
    permission: Permission | None = None
    """The right a caller needs (``appliance.roles``), enforced by the rights middleware
    (``appliance.api.rights``) before the handler runs. None is refused there (403) and fails
    ``tests/test_rights.py``: every route must say what it needs, here, beside its handler."""
    audit: str | None = None
    """When set, every request to this route (allowed or refused) is written to the audit log
    under this event name with its outcome; the handler may add details
    (``appliance.api.rights.audit_detail``)."""


def describe(operation: Operation) -> Callable[[F], F]:
    """Attach *operation* to a handler; put it under the ``@routes.<method>(...)`` line."""

    def attach(handler: F) -> F:
        setattr(handler, ATTRIBUTE, operation)
        return handler

    return attach


def operation_of(handler: Any) -> Operation | None:
    """The operation a handler was described with, or None."""
    op = getattr(handler, ATTRIBUTE, None)
    return op if isinstance(op, Operation) else None


# --------------------------------------------------------------------------- schema helpers


def obj(required: tuple[str, ...] = (), closed: bool = False, **props: Schema) -> Schema:
    """An object schema; *closed* forbids properties not listed (only where the server refuses
    or ignores them: a request body the handler reads field by field is left open)."""
    schema: Schema = {"type": "object", "properties": props}
    if required:
        schema["required"] = list(required)
    if closed:
        schema["additionalProperties"] = False
    return schema


def string(description: str = "", **limits: Any) -> Schema:
    return {"type": "string", **({"description": description} if description else {}), **limits}


def integer(lo: int | None = None, hi: int | None = None, description: str = "") -> Schema:
    schema: Schema = {"type": "integer"}
    if lo is not None:
        schema["minimum"] = lo
    if hi is not None:
        schema["maximum"] = hi
    if description:
        schema["description"] = description
    return schema


def number(lo: float | None = None, hi: float | None = None, description: str = "") -> Schema:
    schema: Schema = {"type": "number"}
    if lo is not None:
        schema["minimum"] = lo
    if hi is not None:
        schema["maximum"] = hi
    if description:
        schema["description"] = description
    return schema


def enum(*values: str, description: str = "") -> Schema:
    schema: Schema = {"type": "string", "enum": list(values)}
    if description:
        schema["description"] = description
    return schema


def array(items: Schema, **limits: Any) -> Schema:
    return {"type": "array", "items": items, **limits}


def nullable(schema: Schema) -> Schema:
    """*schema* or ``null`` (JSON Schema 2020-12 spelling; OpenAPI 3.1 has no ``nullable``)."""
    return {"anyOf": [schema, {"type": "null"}]}


BOOLEAN: Schema = {"type": "boolean"}
EMPTY: Schema = obj(closed=True)
ERROR_REF: Schema = {"$ref": "#/components/schemas/Error"}
REDFISH_ERROR_REF: Schema = {"$ref": "#/components/schemas/RedfishError"}
JOB_REF: Schema = {"$ref": "#/components/schemas/Job"}
STATE_REF: Schema = {"$ref": "#/components/schemas/State"}


def ok(description: str, schema: Schema | None = None, media_type: str = JSON) -> Reply:
    return Reply(description, schema, media_type)
