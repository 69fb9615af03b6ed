"""Users, tokens, the audit log, self-service (password, 2FA) and exclusive control over HTTP.

- ``/api/users`` (admin): list, add, change (role, ports, 2FA required, password), remove users.
- ``/api/tokens`` (admin): API tokens for any user, optionally with a narrower role.
- ``/api/account/...`` (any logged-in user, about themselves): change one's password (the old one
  is asked again), set up or turn off two-factor login (QR code as server-rendered SVG).
- ``/api/audit`` (admin): the newest audit entries.
- ``/api/control``: who is connected and typing (view); take or release exclusive control
  (input; ``force`` takes it over from someone else and is for admins only).

Store calls that run scrypt or write files go to a worker thread: the event loop never waits for
~50 ms of hashing or an fsync on the SD card. Every change is in the audit log (``audit=`` on the
operation: the rights middleware writes the entry with the outcome; details are added here).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from appliance import fields
from appliance.api.auth import AUTH_STORE, LOGIN_THROTTLE, AuthInfo, get_auth, throttled_verify
from appliance.api.control import CONTROL, ControlTaken
from appliance.api.httpjson import fail, field_or_400, json_response, read_json
from appliance.api.openapi import (
    BOOLEAN,
    EMPTY,
    Operation,
    Param,
    array,
    describe,
    enum,
    integer,
    nullable,
    number,
    obj,
    ok,
    string,
)
from appliance.api.rights import audit_detail, effective_role
from appliance.auth import AuthError, AuthStore, TokenInfo, UserInfo
from appliance.roles import ROLES, rank

routes = web.RouteTableDef()

_USER = obj(
    ("name", "role", "created", "ports", "totp", "totp_required", "recovery_left"),
    name=string(),
    role=enum(*ROLES),
    created=string(),
    ports=nullable(array(integer(1, 64))),
    totp=BOOLEAN,
    totp_required=BOOLEAN,
    recovery_left=integer(0),
)
_TOKEN = obj(
    ("id", "name", "created", "user", "role"),
    id=string(),
    name=string(),
    created=string(),
    user=string(),
    role=nullable(enum(*ROLES)),
)
_NAME = Param("name", string(pattern="^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$"), where="path")
_PRESENCE = obj(
    ("holder", "clients"),
    holder=nullable(obj(("user", "since"), user=string(), since=number(0), you=BOOLEAN)),
    clients=array(
        obj(
            ("client", "user", "role", "typing", "control"),
            client=string(),
            user=string(),
            role=enum(*ROLES),
            typing=BOOLEAN,
            control=BOOLEAN,
        )
    ),
)
AUDIT_LIMIT = 1000


def _user_json(info: UserInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "role": info.role,
        "created": info.created,
        "ports": list(info.ports) if info.ports is not None else None,
        "totp": info.totp,
        "totp_required": info.totp_required,
        "recovery_left": info.recovery_left,
    }


def _token_json(info: TokenInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "name": info.name,
        "created": info.created,
        "user": info.user,
        "role": info.role,
    }


def _auth(request: web.Request) -> AuthInfo:
    auth = get_auth(request)
    if auth is None:  # unreachable behind the middlewares
        fail(401, "authentication required")
    return auth


async def _store_call(request: web.Request, fn: Any, *args: Any) -> Any:
    """Run a blocking store method in a thread; its AuthError becomes a 400 with its words."""
    try:
        return await asyncio.to_thread(fn, *args)
    except AuthError as exc:
        fail(400, str(exc))


def _string(data: dict[str, Any], name: str, limit: int = 1024) -> str:
    value = data.get(name)
    if not isinstance(value, str) or len(value) > limit:
        fail(400, f"field '{name}' must be a string (at most {limit} characters)")
    return value


def _role(data: dict[str, Any], name: str = "role") -> Any:
    value = data.get(name)
    if value not in ROLES:
        fail(400, f"field '{name}' must be one of {', '.join(ROLES)}")
    return value


# --------------------------------------------------------------------------- users (admin)


@routes.get("/api/users")
@describe(
    Operation(
        permission="admin",
        summary="The users, their roles, port limits and 2FA state",
        tag="users",
        replies={200: ok("users", obj(("users",), users=array(_USER)))},
    )
)
async def list_users(request: web.Request) -> web.Response:
    users = request.app[AUTH_STORE].list_users()
    return json_response({"users": [_user_json(u) for u in users]})


@routes.post("/api/users")
@describe(
    Operation(
        permission="admin",
        audit="user.add",
        summary="Add a user",
        tag="users",
        body=obj(
            ("name", "password", "role"),
            name=string(),
            password=string(),
            role=enum(*ROLES),
        ),
        replies={200: ok("the new user", _USER)},
        errors={400: "bad name, weak password, unknown role, or the user exists"},
    )
)
async def add_user(request: web.Request) -> web.Response:
    data = await read_json(request)
    name, password, role = _string(data, "name", 64), _string(data, "password"), _role(data)
    audit_detail(request, target=name[:64], role=role)
    store = request.app[AUTH_STORE]
    info = await _store_call(request, store.add_user, name, password, role)
    return json_response(_user_json(info))


@routes.patch("/api/users/{name}")
@describe(
    Operation(
        permission="admin",
        audit="user.change",
        summary="Change a user's role, switch ports, 2FA requirement or password",
        description="`ports`: null for every port, or the ports whose machines the user may "
        "type into, power and select. A new password ends the user's browser sessions.",
        tag="users",
        params=(_NAME,),
        body=obj(
            role=enum(*ROLES),
            ports=nullable(array(integer(1, 64))),
            totp_required=BOOLEAN,
            password=string(),
        ),
        replies={200: ok("the user now", _USER)},
        errors={400: "no such user, nothing to change, a bad value, or the last admin"},
    )
)
async def change_user(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    data = await read_json(request)
    store = request.app[AUTH_STORE]
    known = {"role", "ports", "totp_required", "password"}
    if not data or set(data) - known:
        fail(400, f"send any of: {', '.join(sorted(known))}")
    audit_detail(request, target=name[:64], changed=sorted(data))
    if "role" in data:
        await _store_call(request, store.set_role, name, _role(data))
    if "ports" in data:
        await _store_call(request, store.set_ports, name, data["ports"])
    if "totp_required" in data:
        required = field_or_400(lambda: fields.boolean(data, "totp_required"))
        await _store_call(request, store.set_totp_required, name, required)
    if "password" in data:
        await _store_call(request, store.set_password, _string(data, "password"), name)
    info = store.user_info(name)
    if info is None:
        fail(400, f"no user {name!r}")
    return json_response(_user_json(info))


@routes.delete("/api/users/{name}")
@describe(
    Operation(
        permission="admin",
        audit="user.remove",
        summary="Remove a user (their sessions, tokens and connections end)",
        tag="users",
        params=(_NAME,),
        replies={200: ok("removed", _USER)},
        errors={400: "no such user, or the last admin"},
    )
)
async def remove_user(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    audit_detail(request, target=name[:64])
    info = await _store_call(request, request.app[AUTH_STORE].remove_user, name)
    return json_response(_user_json(info))


@routes.delete("/api/users/{name}/totp")
@describe(
    Operation(
        permission="admin",
        audit="user.totp_reset",
        summary="Turn off a user's two-factor login (lost phone); they enrol again",
        tag="users",
        params=(_NAME,),
        replies={200: ok("the user now", _USER)},
        errors={400: "no such user"},
    )
)
async def reset_totp(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    audit_detail(request, target=name[:64])
    info = await _store_call(request, request.app[AUTH_STORE].totp_disable, name)
    return json_response(_user_json(info))


# --------------------------------------------------------------------------- tokens (admin)


@routes.get("/api/tokens")
@describe(
    Operation(
        permission="admin",
        summary="API tokens (never the tokens themselves)",
        tag="users",
        replies={200: ok("tokens", obj(("tokens",), tokens=array(_TOKEN)))},
    )
)
async def list_tokens(request: web.Request) -> web.Response:
    tokens = request.app[AUTH_STORE].list_tokens()
    return json_response({"tokens": [_token_json(t) for t in tokens]})


@routes.post("/api/tokens")
@describe(
    Operation(
        permission="admin",
        audit="token.create",
        summary="Create an API token for a user (shown once), optionally with a narrower role",
        tag="users",
        body=obj(("name",), name=string(), user=string(), role=nullable(enum(*ROLES))),
        replies={200: ok("the token", obj(("id", "token"), id=string(), token=string(), **{}))},
        errors={400: "bad or duplicate name, no such user, or a role above the user's"},
    )
)
async def create_token(request: web.Request) -> web.Response:
    data = await read_json(request)
    name = _string(data, "name", 64)
    user = _string(data, "user", 64) if "user" in data else _auth(request).user
    role = _role(data) if data.get("role") is not None else None
    audit_detail(request, token=name, owner=user, role=role)
    store = request.app[AUTH_STORE]
    token_id, token = await _store_call(request, store.create_token, name, user, role)
    audit_detail(request, token_id=token_id)
    return json_response({"id": token_id, "token": token})


@routes.delete("/api/tokens/{id}")
@describe(
    Operation(
        permission="admin",
        audit="token.revoke",
        summary="Revoke a token by id or name (its connections close at once)",
        tag="users",
        params=(Param("id", string(maxLength=64), where="path"),),
        replies={200: ok("revoked", _TOKEN)},
        errors={404: "no such token"},
    )
)
async def revoke_token(request: web.Request) -> web.Response:
    which = request.match_info["id"]
    audit_detail(request, token=which[:64])
    info = await _store_call(request, request.app[AUTH_STORE].revoke_token, which)
    if info is None:
        fail(404, f"no token with id or name {which!r}")
    return json_response(_token_json(info))


# --------------------------------------------------------------------------- audit (admin)


@routes.get("/api/audit")
@describe(
    Operation(
        permission="admin",
        summary="The newest audit-log entries, newest first",
        tag="users",
        params=(
            Param("limit", integer(1, AUDIT_LIMIT), "at most this many (default 200)"),
            Param("event", string(maxLength=64), "only this event (or its sub-events)"),
        ),
        replies={
            200: ok(
                "entries",
                obj(
                    ("entries",),
                    entries=array(
                        obj(
                            ("time", "event", "user", "address", "outcome"),
                            time=string(),
                            event=string(),
                            user=nullable(string()),
                            address=nullable(string()),
                            outcome=enum("ok", "failed", "denied", "locked"),
                        )
                    ),
                ),
            )
        },
        errors={400: "limit is not an integer from 1 to 1000"},
    )
)
async def audit_log(request: web.Request) -> web.Response:
    limit = field_or_400(lambda: fields.query_integer(request.query, "limit", 200, 1, AUDIT_LIMIT))
    event = request.query.get("event") or None
    if event is not None and len(event) > 64:
        fail(400, "event must be at most 64 characters")
    entries = await asyncio.to_thread(request.app[AUTH_STORE].audit.tail, limit, event)
    return json_response({"entries": entries})


# --------------------------------------------------------------------------- self-service


async def _check_own_password(request: web.Request, password: Any) -> web.Response | None:
    """The caller's own password again (throttled like a login): a stolen session alone cannot
    change the password or turn 2FA off."""
    auth = _auth(request)
    if not isinstance(password, str):
        fail(400, "field 'password' (your current password) is required")
    store = request.app[AUTH_STORE]
    ok_ = await throttled_verify(request, store, request.app[LOGIN_THROTTLE], auth.user, password)
    if isinstance(ok_, web.Response):
        return ok_  # throttled (429) or overloaded (503)
    if not ok_:
        fail(403, "your current password is wrong")
    return None


@routes.post("/api/account/password")
@describe(
    Operation(
        permission="account",
        audit="account.password",
        summary="Change your own password (your other browser sessions end)",
        tag="account",
        body=obj(("password", "new_password"), password=string(), new_password=string()),
        replies={200: ok("changed; log in again", EMPTY)},
        errors={
            400: "the new password breaks the rules",
            403: "your current password is wrong",
        },
    )
)
async def change_own_password(request: web.Request) -> web.Response:
    data = await read_json(request)
    refused = await _check_own_password(request, data.get("password"))
    if refused is not None:
        return refused
    new = _string(data, "new_password")
    await _store_call(request, request.app[AUTH_STORE].set_password, new, _auth(request).user)
    return json_response({})


@routes.post("/api/account/totp/setup")
@describe(
    Operation(
        permission="account",
        summary="Begin two-factor enrolment: a new secret and its QR code (SVG)",
        tag="account",
        replies={
            200: ok(
                "scan the QR code (or type the secret) into an authenticator app",
                obj(("secret", "uri", "svg"), secret=string(), uri=string(), svg=string()),
            )
        },
    )
)
async def totp_setup(request: web.Request) -> web.Response:
    from appliance import totp

    user = _auth(request).user
    store = request.app[AUTH_STORE]
    secret = await _store_call(request, store.totp_begin, user)
    uri = totp.provisioning_uri(secret, user)
    svg = await asyncio.to_thread(totp.qr_svg, uri)
    return json_response({"secret": secret, "uri": uri, "svg": svg})


@routes.post("/api/account/totp/enable")
@describe(
    Operation(
        permission="account",
        audit="account.totp_enable",
        summary="Finish enrolment with a code from the app; answers the one-time recovery codes",
        tag="account",
        body=obj(("code",), code=string()),
        replies={200: ok("enabled", obj(("recovery_codes",), recovery_codes=array(string())))},
        errors={400: "no enrolment in progress, or a wrong code"},
    )
)
async def totp_enable(request: web.Request) -> web.Response:
    data = await read_json(request)
    code = _string(data, "code", 64)
    store = request.app[AUTH_STORE]
    codes = await _store_call(request, store.totp_confirm, _auth(request).user, code)
    return json_response({"recovery_codes": codes})


@routes.post("/api/account/totp/disable")
@describe(
    Operation(
        permission="account",
        audit="account.totp_disable",
        summary="Turn your two-factor login off (asks your password)",
        tag="account",
        body=obj(("password",), password=string()),
        replies={200: ok("disabled", EMPTY)},
        errors={403: "wrong password, or an admin requires 2FA for you"},
    )
)
async def totp_disable(request: web.Request) -> web.Response:
    data = await read_json(request)
    refused = await _check_own_password(request, data.get("password"))
    if refused is not None:
        return refused
    user = _auth(request).user
    store: AuthStore = request.app[AUTH_STORE]
    info = store.user_info(user)
    if info is not None and info.totp_required:
        fail(403, "an admin requires two-factor login for your account")
    await _store_call(request, store.totp_disable, user)
    return json_response({})


# --------------------------------------------------------------------------- control


@routes.get("/api/control")
@describe(
    Operation(
        permission="view",
        summary="Who is connected, who is typing, who has exclusive control",
        tag="control",
        replies={200: ok("presence", _PRESENCE)},
    )
)
async def control_state(request: web.Request) -> web.Response:
    return json_response(request.app[CONTROL].snapshot(_auth(request).credential))


@routes.post("/api/control")
@describe(
    Operation(
        permission="control",
        audit="control",
        summary="Take or release exclusive control (others become viewers meanwhile)",
        description="`force` takes it over from, or releases it for, someone else: admins only.",
        tag="control",
        body=obj(("action",), action=enum("take", "release"), force=BOOLEAN),
        replies={200: ok("presence now", _PRESENCE)},
        errors={
            403: "force without the admin role",
            409: "someone else has exclusive control (an admin may force)",
        },
    )
)
async def control_change(request: web.Request) -> web.Response:
    data = await read_json(request)
    action = data.get("action")
    if action not in ("take", "release"):
        fail(400, "field 'action' must be 'take' or 'release'")
    force = field_or_400(lambda: fields.boolean(data, "force", False))
    auth = _auth(request)
    store = request.app[AUTH_STORE]
    role = effective_role(store, auth)
    if force and (role is None or rank(role) < rank("admin")):
        fail(403, "only an admin may take over or release someone else's control")
    control = request.app[CONTROL]
    previous = control.holder.user if control.holder is not None else None
    audit_detail(request, action=action, force=force, previous=previous)
    try:
        if action == "take":
            control.take(auth.user, auth.credential, force=force)
        else:
            control.release(auth.credential, force=force)
    except ControlTaken as exc:
        fail(409, f"{exc} (an admin may take it over)")
    return json_response(control.snapshot(auth.credential))
