"""``/redfish/v1``: the Redfish service fleet tools drive (OpenStack Ironic through sushy, Ansible's
Redfish modules). docs/redfish.md lists the resources and what each action does.

The resources are built by :mod:`appliance.redfish`; this module is the HTTP side:

- **Logins** are the console's: HTTP Basic and ``X-Auth-Token`` sessions (``POST Sessions`` makes
  one of the console's persisted sessions and answers its secret in ``X-Auth-Token``; the auth
  middleware takes it in that header). The service root is public, as the Redfish specification
  asks, and so is the ``POST`` that logs in; everything else needs a login.
- **Errors** are Redfish's body everywhere under ``/redfish`` — the handlers' own, the auth
  middleware's 401/403/429/503 and aiohttp's 404/405 alike (:func:`redfish_errors`, a middleware
  outside the auth middleware), so a client reads ``error.code`` whatever answered.
- **ETags**: every resource ``GET`` carries one (a hash of the document); a ``PATCH`` with
  ``If-Match`` naming another is refused with 412, so two tools changing the boot override cannot
  overwrite each other unseen.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from aiohttp import hdrs, web

from appliance.api.auth import AUTH_STORE, USER, check_login
from appliance.api.httpjson import BodyTooLarge, read_body
from appliance.api.openapi import (
    Operation,
    Param,
    Reply,
    Schema,
    describe,
    enum,
    obj,
    string,
)
from appliance.jsondecode import JsonError, decode_json
from appliance.redfish import documents as d
from appliance.redfish.media import SLOTS, InsertRequest, RedfishMedia, Slot
from appliance.redfish.messages import (
    STATUS_MESSAGES,
    Message,
    RedfishError,
    fail,
    not_found,
)
from appliance.redfish.systems import RESET_TYPES, System, find_system, reset
from appliance.runtime import APPLIANCE
from appliance.sessions import session_digest
from appliance.targets.boot import BOOT_ENABLED, BOOT_MODES, BOOT_SOURCES

log = logging.getLogger(__name__)

PREFIX = "/redfish"
MAX_BODY = 64 * 1024  # Redfish bodies here are a few hundred bytes
JSON_UTF8 = "application/json"
PUBLIC_PATHS = frozenset({PREFIX, d.ROOT, d.ROOT + "/"})
PUBLIC_ROUTES = frozenset({("POST", d.SESSIONS)})

routes = web.RouteTableDef()
power_routes = web.RouteTableDef()
"""Added only for targets with a power facet (the Reset action)."""
media_routes = web.RouteTableDef()
"""Added only for targets with virtual media."""
REDFISH_MEDIA: web.AppKey[RedfishMedia] = web.AppKey("redfish_media", RedfishMedia)

TAG = "redfish"


def _doc_reply(kind: str, required: Iterable[str] = ()) -> dict[int, Reply]:
    schema: Schema = {
        "type": "object",
        "required": ["@odata.id", "@odata.type", *required],
        "properties": {
            "@odata.id": string(),
            "@odata.type": string(f"#{d.TYPES.get(kind, kind)}.{kind}"),
        },
    }
    return {200: Reply(f"the {kind} resource", schema, headers={"ETag": "the resource's ETag"})}


def _id(name: str, what: str) -> Param:
    return Param(name, string(what), where="path", required=True)


SYSTEM_ID = _id("system_id", "a System's Id (1, or the switch port's number)")
NOT_FOUND = {404: "no such resource"}


# --------------------------------------------------------------------------- responses


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    resp = web.Response(
        body=json.dumps(data).encode(),
        status=status,
        content_type=JSON_UTF8,
        charset="utf-8",
        headers=headers,
    )
    resp.headers["OData-Version"] = "4.0"
    resp.headers[hdrs.CACHE_CONTROL] = "no-store"
    return resp


def _resource(doc: d.Doc, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return _json(doc, status, {hdrs.ETAG: d.etag(doc), **(headers or {})})


def _error(exc: RedfishError) -> web.Response:
    return _json(exc.body(), exc.status, dict(exc.headers))


def _challenged(request: web.Request, resp: web.StreamResponse) -> web.StreamResponse:
    """A 401 names the scheme to use (RFC 9110), except to a browser (``Sec-Fetch-Mode``),
    which would pop up a password dialog, as the console's API does."""
    if resp.status == 401 and not resp.prepared and hdrs.SEC_FETCH_MODE not in request.headers:
        resp.headers.setdefault(hdrs.WWW_AUTHENTICATE, 'Basic realm="ipkvm", charset="UTF-8"')
    return resp


def _translated(status: int, detail: str, headers: Iterable[tuple[str, str]]) -> RedfishError:
    """Someone else's error (auth middleware, aiohttp) in Redfish's words; headers that matter
    to a client (WWW-Authenticate, Retry-After, Allow) are kept."""
    kept = {k: v for k, v in headers if k.lower() in ("www-authenticate", "retry-after", "allow")}
    message_id = STATUS_MESSAGES.get(status, "GeneralError")
    args: tuple[str, ...] = ()
    if status == 503 and "Retry-After" in kept:
        message_id, args = "ServiceTemporarilyUnavailable", (kept["Retry-After"],)
    return RedfishError(status, detail, [Message(message_id, args)], kept)


@web.middleware
async def redfish_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every error under ``/redfish`` as a Redfish error body (see the module docstring)."""
    if not request.path.startswith(PREFIX):
        return await handler(request)  # type: ignore[no-any-return]
    return _challenged(request, await _redfish_errors(request, handler))


async def _redfish_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        resp: web.StreamResponse = await handler(request)
    except RedfishError as exc:
        return _error(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if isinstance(exc, web.HTTPNotFound):
            return _error(not_found("resource", request.path))
        detail = exc.reason or f"HTTP {exc.status}"
        if isinstance(exc, web.HTTPMethodNotAllowed):
            detail = f"method {exc.method} not allowed on {request.path}"
        return _error(_translated(exc.status, detail, exc.headers.items()))
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return _error(
            RedfishError(500, "internal error (see the appliance log)", [Message("InternalError")])
        )
    if (
        resp.status >= 400
        and isinstance(resp, web.Response)
        and resp.content_type == "application/json"
    ):
        try:
            body = json.loads(resp.body) if isinstance(resp.body, bytes) else None
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            return _error(_translated(resp.status, body["error"], resp.headers.items()))
    return resp


async def _body(request: web.Request, action: str | None = None) -> dict[str, Any]:
    try:
        raw = await read_body(request, MAX_BODY)
    except BodyTooLarge as exc:
        raise RedfishError(413, str(exc), [Message("PayloadTooLarge")]) from exc
    if not raw.strip():
        return {}
    try:
        data = decode_json(raw)
    except JsonError as exc:
        raise RedfishError(400, f"malformed JSON: {exc}", [Message("MalformedJSON")]) from exc
    if not isinstance(data, dict):
        raise RedfishError(400, "the body must be a JSON object", [Message("MalformedJSON")])
    return data


def _system(request: web.Request) -> System:
    name = request.match_info["system_id"]
    system = find_system(request.app[APPLIANCE], name)
    if system is None:
        raise not_found("ComputerSystem", name)
    return system


def _check_if_match(request: web.Request, current: str) -> None:
    """``If-Match`` (when sent) must name the resource's ETag as it is now: 412 otherwise.
    A weak form of ours (``W/"..."``) matches too: the content is the same document."""
    header = request.headers.get(hdrs.IF_MATCH)
    if header is None:
        return
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    if "*" in tags or current in tags:
        return
    raise RedfishError(
        412,
        f"If-Match {header!r} does not match the resource's ETag {current}",
        [Message("PreconditionFailed")],
    )


# --------------------------------------------------------------------------- service root


@routes.get(PREFIX)
@describe(
    Operation(
        permission="public",
        summary="The Redfish protocol versions this service speaks",
        tag=TAG,
        public=True,
        replies={200: Reply("versions", obj(("v1",), v1=string()))},
    )
)
async def versions(request: web.Request) -> web.Response:
    return _json({"v1": d.ROOT + "/"})


_ROOT_OP = Operation(
    permission="public",
    summary="The Redfish service root (no login needed)",
    tag=TAG,
    public=True,
    replies=_doc_reply("ServiceRoot", ("Links",)),
)


@routes.get(d.ROOT)
@describe(_ROOT_OP)
async def service_root(request: web.Request) -> web.Response:
    return _resource(d.service_root())


@routes.get(d.ROOT + "/")
@describe(_ROOT_OP)
async def service_root_slash(request: web.Request) -> web.Response:
    return _resource(d.service_root())


# --------------------------------------------------------------------------- systems


@routes.get(d.SYSTEMS)
@describe(
    Operation(
        permission="view",
        summary="The machines: one, or one per KVM switch port",
        tag=TAG,
        replies=_doc_reply("ComputerSystemCollection", ("Members",)),
    )
)
async def system_collection(request: web.Request) -> web.Response:
    return _resource(d.system_collection(request.app[APPLIANCE]))


@routes.get(d.SYSTEMS + "/{system_id}")
@describe(
    Operation(
        permission="view",
        summary="One machine: power state, boot override, reset action, its manager",
        tag=TAG,
        params=(SYSTEM_ID,),
        replies=_doc_reply("ComputerSystem", ("Id", "Boot", "Links")),
        errors=NOT_FOUND,
    )
)
async def system(request: web.Request) -> web.Response:
    return _resource(d.system(request.app[APPLIANCE], _system(request)))


_BOOT_FIELDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "BootSourceOverrideTarget": ("source", BOOT_SOURCES),
    "BootSourceOverrideEnabled": ("enabled", BOOT_ENABLED),
    "BootSourceOverrideMode": ("mode", BOOT_MODES),
}


@routes.patch(d.SYSTEMS + "/{system_id}")
@describe(
    Operation(
        permission="power",
        audit="redfish.boot",
        summary="Set the boot override (Boot.BootSourceOverrideTarget, ...Enabled, ...Mode)",
        description="With If-Match, the change is made only if it names the ETag the System "
        "has now (412 otherwise). A Once override reverts to Disabled when the machine boots.",
        tag=TAG,
        params=(
            SYSTEM_ID,
            Param("If-Match", string("the ETag read with GET"), where="header"),
        ),
        body=obj(
            Boot=obj(
                BootSourceOverrideTarget=enum(*BOOT_SOURCES),
                BootSourceOverrideEnabled=enum(*BOOT_ENABLED),
                BootSourceOverrideMode=enum(*BOOT_MODES),
            )
        ),
        replies=_doc_reply("ComputerSystem", ("Id", "Boot")),
        errors={
            **NOT_FOUND,
            400: "a property that is unknown, read-only or has a value not in its list",
            412: "If-Match does not name the System's current ETag",
        },
    )
)
async def patch_system(request: web.Request) -> web.Response:
    appliance = request.app[APPLIANCE]
    s = _system(request)
    _check_if_match(request, d.etag(d.system(appliance, s)))
    body = await _body(request)
    problems: list[Message] = []
    for key in body:
        if key != "Boot":
            known = key in d.system(appliance, s)
            problems.append(Message("PropertyNotWritable" if known else "PropertyUnknown", (key,)))
    boot = body.get("Boot", {})
    changes: dict[str, str] = {}
    if not isinstance(boot, dict):
        problems.append(Message("PropertyValueTypeError", (json.dumps(boot), "Boot")))
        boot = {}
    for key, value in boot.items():
        if key not in _BOOT_FIELDS:
            problems.append(Message("PropertyUnknown", (f"Boot/{key}",)))
            continue
        attr, allowed = _BOOT_FIELDS[key]
        if value not in allowed:
            problems.append(
                Message("PropertyValueNotInList", (str(value), key), (f"#/Boot/{key}",))
            )
            continue
        changes[attr] = value
    if problems:
        raise RedfishError(400, "the PATCH was refused: nothing was changed", problems)
    if changes:
        s.boot.set(replace(s.boot.override, **changes))  # type: ignore[arg-type]
    return _resource(d.system(appliance, s))


@power_routes.post(d.SYSTEMS + "/{system_id}/Actions/ComputerSystem.Reset")
@describe(
    Operation(
        permission="power",
        audit="power",
        summary="Power on, off or reset the machine (selecting its switch port first)",
        description="ForceOff holds the power button (the ATX override, seconds); On, "
        "GracefulShutdown and PushPowerButton press it briefly; ForceRestart presses reset; "
        "PowerCycle is ForceOff then On. Answers once the power LED shows the new state.",
        tag=TAG,
        params=(SYSTEM_ID,),
        body=obj(("ResetType",), ResetType=enum(*RESET_TYPES)),
        replies={204: Reply("done")},
        errors={
            **NOT_FOUND,
            400: "ResetType missing or not one of the allowable values",
            409: "another power action is in progress, the switch is busy, or it cannot run",
            503: "the KVM switch could not select the System's port",
        },
    )
)
async def reset_system(request: web.Request) -> web.Response:
    s = _system(request)
    body = await _body(request)
    action = "ComputerSystem.Reset"
    unknown = [k for k in body if k != "ResetType"]
    if unknown:
        raise RedfishError(
            400,
            f"unknown parameter {unknown[0]!r}",
            [Message("ActionParameterUnknown", (action, k)) for k in unknown],
        )
    if "ResetType" not in body:
        raise fail(400, "ResetType is required", "ActionParameterMissing", action, "ResetType")
    kind = body["ResetType"]
    if kind not in RESET_TYPES:
        raise RedfishError(
            400,
            f"ResetType must be one of {', '.join(RESET_TYPES)}",
            [
                Message(
                    "ActionParameterValueNotInList",
                    (str(kind), "ResetType", action),
                    ("#/ResetType",),
                )
            ],
        )
    await reset(request.app[APPLIANCE], s, kind)
    return web.Response(status=204, headers={"OData-Version": "4.0"})


# --------------------------------------------------------------------------- chassis, managers


@routes.get(d.CHASSIS)
@describe(
    Operation(
        permission="view",
        summary="The chassis: one per machine",
        tag=TAG,
        replies=_doc_reply("ChassisCollection", ("Members",)),
    )
)
async def chassis_collection(request: web.Request) -> web.Response:
    return _resource(d.chassis_collection(request.app[APPLIANCE]))


@routes.get(d.CHASSIS + "/{chassis_id}")
@describe(
    Operation(
        permission="view",
        summary="One machine's chassis",
        tag=TAG,
        params=(_id("chassis_id", "the chassis Id (its System's)"),),
        replies=_doc_reply("Chassis", ("Id", "ChassisType")),
        errors=NOT_FOUND,
    )
)
async def chassis(request: web.Request) -> web.Response:
    name = request.match_info["chassis_id"]
    appliance = request.app[APPLIANCE]
    s = find_system(appliance, name)
    if s is None:
        raise not_found("Chassis", name)
    return _resource(d.chassis(appliance, s))


@routes.get(d.MANAGERS)
@describe(
    Operation(
        permission="view",
        summary="The managers: the appliance itself",
        tag=TAG,
        replies=_doc_reply("ManagerCollection", ("Members",)),
    )
)
async def manager_collection(request: web.Request) -> web.Response:
    return _resource(d.manager_collection())


MANAGER_ID = Param(
    "manager_id", enum(d.MANAGER_ID, description="the manager's Id"), where="path", required=True
)


def _check_manager(request: web.Request) -> None:
    name = request.match_info["manager_id"]
    if name != d.MANAGER_ID:
        raise not_found("Manager", name)


@routes.get(d.MANAGERS + "/{manager_id}")
@describe(
    Operation(
        permission="view",
        summary="The appliance as the machines' manager (links to its systems, virtual media)",
        tag=TAG,
        params=(MANAGER_ID,),
        replies=_doc_reply("Manager", ("Id", "ManagerType")),
        errors=NOT_FOUND,
    )
)
async def manager(request: web.Request) -> web.Response:
    _check_manager(request)
    return _resource(d.manager(request.app[APPLIANCE]))


# --------------------------------------------------------------------------- virtual media


SLOT_ID = Param("slot", enum(*SLOTS, description="the slot"), where="path", required=True)
VM = d.MANAGERS + "/{manager_id}/VirtualMedia"


def _slot(request: web.Request) -> Slot:
    _check_manager(request)
    name = request.match_info["slot"]
    slot = SLOTS.get(name)
    if slot is None:
        raise not_found("VirtualMedia", name)
    return slot


@media_routes.get(VM)
@describe(
    Operation(
        permission="view",
        summary="The appliance's virtual media slots (Cd, Usb: one drive, as CD-ROM or flash)",
        tag=TAG,
        params=(MANAGER_ID,),
        replies=_doc_reply("VirtualMediaCollection", ("Members",)),
        errors=NOT_FOUND,
    )
)
async def virtual_media_collection(request: web.Request) -> web.Response:
    _check_manager(request)
    return _resource(d.virtual_media_collection(list(SLOTS.values())))


@media_routes.get(VM + "/{slot}")
@describe(
    Operation(
        permission="view",
        summary="One slot: what is inserted (Image URL, Inserted, WriteProtected)",
        tag=TAG,
        params=(MANAGER_ID, SLOT_ID),
        replies=_doc_reply("VirtualMedia", ("Id", "MediaTypes", "Inserted")),
        errors=NOT_FOUND,
    )
)
async def virtual_media(request: web.Request) -> web.Response:
    slot = _slot(request)
    return _resource(d.virtual_media(slot, request.app[REDFISH_MEDIA].view(slot)))


@media_routes.post(VM + "/{slot}/Actions/VirtualMedia.InsertMedia")
@describe(
    Operation(
        permission="media",
        audit="media.attach",
        summary="Stream or download an HTTP(S) image, then attach it to the slot",
        description="Answers once the medium is in the drive (or, with Inserted false, "
        "downloaded). Stream (the default where this appliance can stream; read-only) reads the "
        "URL with range requests, nothing stored; Upload downloads it first (replacing the "
        "slot's previous download).",
        tag=TAG,
        params=(MANAGER_ID, SLOT_ID),
        body=obj(
            ("Image",),
            Image=string("an http:// or https:// URL"),
            Inserted={"type": "boolean"},
            WriteProtected={"type": "boolean"},
            TransferMethod=enum("Stream", "Upload"),
            TransferProtocolType=enum("HTTP", "HTTPS"),
        ),
        replies={204: Reply("inserted")},
        errors={
            **NOT_FOUND,
            400: "a parameter missing, unknown or with a value the slot cannot take",
            409: "the drive holds a medium (eject first), or the image is being downloaded",
            413: "the image is larger than media.max_image_mb",
            502: "the image could not be downloaded or streamed",
            507: "not enough free space for the image",
        },
    )
)
async def insert_media(request: web.Request) -> web.Response:
    slot = _slot(request)
    insert = InsertRequest.parse(slot, await _body(request))
    await request.app[REDFISH_MEDIA].insert(slot, insert)
    return web.Response(status=204, headers={"OData-Version": "4.0"})


@media_routes.post(VM + "/{slot}/Actions/VirtualMedia.EjectMedia")
@describe(
    Operation(
        permission="media",
        audit="media.detach",
        summary="Empty the slot (and delete its download); nothing to do when it is empty",
        tag=TAG,
        params=(MANAGER_ID, SLOT_ID),
        body=obj(),
        body_required=False,
        replies={204: Reply("ejected")},
        errors=NOT_FOUND,
    )
)
async def eject_media(request: web.Request) -> web.Response:
    slot = _slot(request)
    await _body(request)
    await request.app[REDFISH_MEDIA].eject(slot)
    return web.Response(status=204, headers={"OData-Version": "4.0"})


# --------------------------------------------------------------------------- sessions


@routes.get(d.SESSION_SERVICE)
@describe(
    Operation(
        permission="account",
        summary="The session service (X-Auth-Token sessions)",
        tag=TAG,
        replies=_doc_reply("SessionService", ("Sessions",)),
    )
)
async def session_service(request: web.Request) -> web.Response:
    ttl = int(request.app[AUTH_STORE].session_ttl)
    return _resource(d.session_service(min(max(ttl, 30), 86400)))


def _sessions(request: web.Request) -> dict[str, Any]:
    user = request[USER]
    return request.app[AUTH_STORE].live_sessions(user) if user is not None else {}


def _created(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=0).isoformat()


@routes.get(d.SESSIONS)
@describe(
    Operation(
        permission="account",
        summary="The caller's sessions (the console's and Redfish's: they are the same)",
        tag=TAG,
        replies=_doc_reply("SessionCollection", ("Members",)),
    )
)
async def session_collection(request: web.Request) -> web.Response:
    members = [f"{d.SESSIONS}/{digest}" for digest in _sessions(request)]
    return _resource(d.collection("SessionCollection", d.SESSIONS, "Sessions", members))


@routes.post(d.SESSIONS)
@describe(
    Operation(
        permission="public",
        summary="Log in: a session whose secret comes back in X-Auth-Token",
        description="The same accounts, throttle and session lifetime as the console's login. "
        "DELETE the Location to log out.",
        tag=TAG,
        public=True,
        body=obj(("UserName", "Password"), UserName=string(), Password=string()),
        replies={
            201: Reply(
                "logged in",
                obj(("Id", "UserName"), Id=string(), UserName=string()),
                headers={"X-Auth-Token": "the session's secret", "Location": "the session"},
            )
        },
        errors={
            400: "UserName or Password missing or not strings",
            401: "wrong user name or password",
            429: "too many failed attempts from this address (Retry-After)",
            503: "too many password checks in progress (Retry-After)",
        },
    )
)
async def create_session(request: web.Request) -> web.StreamResponse:
    body = await _body(request)
    missing = [k for k in ("UserName", "Password") if not isinstance(body.get(k), str)]
    if missing:
        raise RedfishError(
            400,
            f"{' and '.join(missing)} (strings) required",
            [Message("PropertyMissing", (k,), (f"#/{k}",)) for k in missing],
        )
    user, password = body["UserName"], body["Password"]
    ok = await check_login(request, user, password)
    if isinstance(ok, web.StreamResponse):
        return ok  # 429 / 503, made a Redfish error by the middleware
    if not ok:
        raise RedfishError(401, "wrong user name or password", [Message("NoValidSession")])
    store = request.app[AUTH_STORE]
    sid = await store.create_session_async(user)
    digest = session_digest(sid)
    record = store.live_sessions(user).get(digest)
    created = _created(record.created if record is not None else store.clock())
    doc = d.session(digest, user, created)
    return _resource(doc, 201, {"X-Auth-Token": sid, hdrs.LOCATION: doc["@odata.id"]})


SESSION_ID = _id("session_id", "a session's Id")


def _session(request: web.Request) -> tuple[str, Any]:
    name = request.match_info["session_id"]
    record = _sessions(request).get(name)
    if record is None:
        raise not_found("Session", name)
    return name, record


@routes.get(d.SESSIONS + "/{session_id}")
@describe(
    Operation(
        permission="account",
        summary="One of the caller's sessions",
        tag=TAG,
        params=(SESSION_ID,),
        replies=_doc_reply("Session", ("Id", "UserName")),
        errors=NOT_FOUND,
    )
)
async def session(request: web.Request) -> web.Response:
    name, record = _session(request)
    return _resource(d.session(name, record.user, _created(record.created)))


@routes.delete(d.SESSIONS + "/{session_id}")
@describe(
    Operation(
        permission="account",
        summary="Log out: end the session (its X-Auth-Token stops working at once)",
        tag=TAG,
        params=(SESSION_ID,),
        replies={204: Reply("ended")},
        errors=NOT_FOUND,
    )
)
async def delete_session(request: web.Request) -> web.Response:
    name, _record = _session(request)
    await request.app[AUTH_STORE].delete_session_digest_async(name)
    return web.Response(status=204, headers={"OData-Version": "4.0"})


def setup(app: web.Application) -> None:
    """Add the Redfish routes for this appliance's target (the auth middleware's public paths
    and the error middleware are installed by ``create_app``)."""
    app.add_routes(routes)
    appliance = app[APPLIANCE]
    if appliance.target.power.available:
        app.add_routes(power_routes)
    if appliance.media is not None:
        app[REDFISH_MEDIA] = RedfishMedia(appliance.media)
        app.add_routes(media_routes)
