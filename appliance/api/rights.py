"""Enforcement of roles: every route's declared right, checked in one middleware; the audit hook.

Each handler declares the :data:`~appliance.roles.Permission` it needs in its ``@describe``
(``Operation(permission=...)``, next to its OpenAPI description). :func:`rights_middleware` runs
right after the auth middleware, finds the matched route's operation and refuses with 403
``{"error": ..., "permission": ...}`` when the caller's *effective* rights lack it. A route without
a declared permission is refused for everyone (fail closed) and fails ``tests/test_rights.py``.
WebSocket and WebRTC data-channel messages are checked message by message with :func:`denial`
(a viewer's key press gets an ``error`` event), because a role can change, or someone else can
take exclusive control, while the connection stays open.

Effective rights = the user's current role (read from ``users.json`` on each check: a role change
by the CLI applies at once), narrowed by a token's role, then:

- a session whose user must enrol in 2FA and has not gets only ``account`` rights;
- while another login holds exclusive control (``appliance.api.control``) the caller loses
  ``input``, ``switch`` and ``power``;
- a user narrowed to some switch ports has ``input`` and ``power`` only while one of those ports
  is selected, and may select only those (:func:`require_port`).

Routes whose ``Operation`` names an ``audit`` event are written to the audit log with their
outcome (allowed and answered < 400: ok; refused here: denied; other 4xx/5xx: failed); a handler
adds details with :func:`audit_detail` (lengths and counts, never typed text).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from appliance.api.auth import AUTH_STORE, AuthInfo, client_address, get_auth
from appliance.api.control import CONTROL
from appliance.api.httpjson import fail
from appliance.api.openapi import Operation, operation_of
from appliance.auth import AuthStore
from appliance.roles import CONTROL_RIGHTS, PORT_RIGHTS, Permission, Role, allows, narrower

AUDIT_DETAILS: web.RequestKey[dict[str, Any]] = web.RequestKey("ipkvm_audit", dict)


def effective_role(store: AuthStore, auth: AuthInfo) -> Role | None:
    role = store.role_of(auth.user)
    if role is None:
        return None
    return narrower(role, auth.token_role) if auth.via == "token" else role


def _active_port(app: web.Application) -> int | None:
    from appliance.runtime import APPLIANCE

    appliance = app.get(APPLIANCE)
    switch = appliance.switch if appliance is not None else None
    return switch.active if switch is not None else None


def denial(app: web.Application, auth: AuthInfo | None, permission: Permission) -> str | None:
    """Why ``auth`` may not use ``permission`` now, or None if it may."""
    if permission == "public":
        return None
    if auth is None:
        return "authentication required"
    store = app[AUTH_STORE]
    role = effective_role(store, auth)
    if role is None:
        return f"user {auth.user!r} no longer exists"
    if not allows(role, permission):
        return f"your role ({role}) does not include the '{permission}' right"
    if permission == "account":
        return None
    if auth.via == "session" and store.needs_enrolment(auth.user):
        return "two-factor login is required for your account: set it up first (Account)"
    if permission in CONTROL_RIGHTS:
        control = app.get(CONTROL)
        holder = control.blocked_by(auth.credential) if control is not None else None
        if holder is not None:
            return f"{holder.user} has exclusive control (you are a viewer until it is released)"
    if permission in PORT_RIGHTS:
        ports = _ports(store, auth.user)
        if ports is not None:
            active = _active_port(app)
            if active not in ports:
                return f"you may use only switch port(s) {_listed(ports)} (port {active} is shown)"
    return None


def connection_check(request: web.Request, client: str) -> Callable[[Permission], str | None]:
    """The per-message check of a long-lived connection opened by ``request`` (WebSocket,
    WebRTC data channel): :func:`denial` for its credential now; an allowed input message marks
    the client as typing (``appliance.api.control``)."""
    app = request.app
    auth = get_auth(request)

    def check(permission: Permission) -> str | None:
        reason = denial(app, auth, permission)
        if reason is None and permission == "input":
            control = app.get(CONTROL)
            if control is not None:
                control.activity(client, auth.credential if auth is not None else None)
        return reason

    return check


def _ports(store: AuthStore, user: str) -> tuple[int, ...] | None:
    info = store.user_info(user)
    return info.ports if info is not None else None


def _listed(ports: tuple[int, ...]) -> str:
    return ", ".join(str(p) for p in ports) or "none"


def require_port(request: web.Request, port: int) -> None:
    """403 unless the caller may select ``port`` (a user narrowed to some ports)."""
    auth = get_auth(request)
    if auth is None:
        return
    ports = _ports(request.app[AUTH_STORE], auth.user)
    if ports is not None and port not in ports:
        fail(403, f"you may select only switch port(s) {_listed(ports)}")


def audit_detail(request: web.Request, **details: Any) -> None:
    """Add details (lengths, counts, port numbers: never typed text) to this request's entry."""
    request.setdefault(AUDIT_DETAILS, {}).update(details)


_UNDECLARED = Operation(summary="a route without @describe", replies={})


def _operation(request: web.Request) -> Operation | None:
    """The matched route's operation; None when there is nothing to check (no route matched:
    404/405 follow, or the static directory, public by its prefix). A route whose handler
    carries no ``@describe`` at all is treated as declaring no permission: refused."""
    match = request.match_info
    if match.http_exception is not None:
        return None
    route = match.route
    if isinstance(route.resource, web.StaticResource):
        return None
    return operation_of(route.handler) or _UNDECLARED


def _record(request: web.Request, op: Operation, outcome: str, status: int, **extra: Any) -> None:
    assert op.audit is not None
    auth = get_auth(request)
    details = {**request.get(AUDIT_DETAILS, {}), **extra}
    request.app[AUTH_STORE].audit.record(
        op.audit,
        user=auth.user if auth is not None else None,
        address=client_address(request),
        outcome=outcome,  # type: ignore[arg-type]
        status=status,
        **details,
    )


@web.middleware
async def rights_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    op = _operation(request)
    if op is None:
        # no route matched (404/405), or the static directory (public): nothing to check
        return await handler(request)  # type: ignore[no-any-return]
    permission = op.permission
    if permission != "public":
        reason = (
            "this route declares no permission (refused for everyone)"
            if permission is None
            else denial(request.app, get_auth(request), permission)
        )
        if reason is not None:
            if op.audit is not None:
                _record(request, op, "denied", 403, reason=reason)
            return web.json_response(
                {"error": reason, "permission": permission},
                status=403,
                headers={"Cache-Control": "no-store"},
            )
    if op.audit is None:
        return await handler(request)  # type: ignore[no-any-return]
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPException as exc:
        _record(request, op, "ok" if exc.status < 400 else "failed", exc.status)
        raise
    except Exception:
        _record(request, op, "failed", 500)
        raise
    _record(request, op, "ok" if response.status < 400 else "failed", response.status)
    return response


def setup(app: web.Application) -> None:
    """Install after ``setup_auth`` (it needs ``request[AUTH]``) and before the route tables."""
    app.middlewares.append(rights_middleware)
