"""Every route declares the right it needs, and each role gets exactly those (real server).

The router is enumerated (``app.router.routes()``, as aiohttp serves it), so a route added
without ``Operation(permission=...)`` fails here; then every route is requested by an anonymous
client, a viewer, an operator and an admin (HTTP Basic), and the status must say "refused by
role" (403 naming the permission) exactly when the role lacks the right, 401 for anonymous
callers on private routes, and anything else otherwise. A demo target with a demo switch, so
power, demo and switch routes are in the matrix too.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from appliance.api.openapi import operation_of
from appliance.roles import PERMISSIONS, ROLE_RIGHTS, ROLES, Role
from tests.conftest import Server, basic_header, start_server

SWITCH = '[switch]\ndriver = "demo"\ncount = 3\npoll_interval = 0.2\n'
PASSWORDS = {"viewer": "viewer-pass-1", "operator": "operator-pass-1", "admin2": "admin2-pass-1"}
PATH_VALUES = {
    "port": "2",
    "job": "nope",
    "name": "nobody",
    "id": "nope",
    "filename": "x",
    "system_id": "1",
    "chassis_id": "1",
    "manager_id": "1",
    "slot": "Cd",
    "session_id": "nope",
}
# The rights table, written out independently of appliance/roles.py (docs/security.md#roles).
EXPECTED_RIGHTS = {
    "viewer": {"public", "account", "view"},
    "operator": {"public", "account", "view", "input", "switch", "power", "control"},
    "admin": {"public", "account", "view", "input", "switch", "power", "control", "media", "admin"},
}
# What each route of this release needs, written out: a changed right must be a deliberate edit
# here too. Routes not listed (added by other subsystems) must still declare one.
EXPECTED = {
    "GET /": "account",
    "GET /login": "public",
    "GET /account": "account",
    "GET /favicon.ico": "public",
    "GET /api/health": "public",
    "POST /api/auth/login": "public",
    "POST /api/auth/logout": "public",
    "GET /api/auth/me": "account",
    "GET /api/state": "view",
    "GET /api/debug/runtime": "admin",
    "GET /api/openapi.json": "view",
    "GET /api/metrics": "view",
    "GET /api/stream.mjpeg": "view",
    "GET /api/stream.h264": "view",
    "GET /api/snapshot": "view",
    "GET /api/video/edid": "view",
    "PUT /api/video/edid": "admin",
    "POST /api/webrtc/offer": "view",
    "GET /api/ws": "view",
    "POST /api/hid/type": "input",
    "POST /api/hid/type/cancel": "input",
    "POST /api/hid/keys": "input",
    "POST /api/hid/key": "input",
    "POST /api/hid/mouse": "input",
    "POST /api/hid/release": "input",
    "PUT /api/hid/mouse_mode": "input",
    "GET /api/hid/layouts": "view",
    "GET /api/jobs": "view",
    "GET /api/jobs/{job}": "view",
    "POST /api/jobs/{job}/cancel": "input",
    "POST /api/screen/wait": "view",
    "POST /api/scripts/run": "input",
    "POST /api/scripts/cancel": "input",
    "GET /api/wol": "view",
    "POST /api/wol": "power",
    "GET /api/power": "view",
    "POST /api/power": "power",
    "GET /api/demo/state": "view",
    "POST /api/demo/power": "power",
    "GET /api/switch": "view",
    "POST /api/switch/select": "switch",
    "PATCH /api/switch/ports/{port}": "admin",
    "GET /api/users": "admin",
    "POST /api/users": "admin",
    "PATCH /api/users/{name}": "admin",
    "DELETE /api/users/{name}": "admin",
    "DELETE /api/users/{name}/totp": "admin",
    "GET /api/tokens": "admin",
    "POST /api/tokens": "admin",
    "DELETE /api/tokens/{id}": "admin",
    "GET /api/audit": "admin",
    "POST /api/account/password": "account",
    "POST /api/account/totp/setup": "account",
    "POST /api/account/totp/enable": "account",
    "POST /api/account/totp/disable": "account",
    "GET /api/control": "view",
    "GET /api/media": "view",
    "GET /api/media/images": "view",
    "GET /api/media/images/{name}": "view",
    "PUT /api/media/images/{name}": "media",
    "DELETE /api/media/images/{name}": "media",
    "POST /api/media/fetch": "media",
    "POST /api/media/attach": "media",
    "POST /api/media/detach": "media",
    "POST /api/control": "control",
}


@pytest.fixture
async def rack(tmp_path: Path) -> AsyncIterator[Server]:
    srv, runner = await start_server(tmp_path, SWITCH)
    from appliance.api.auth import AUTH_STORE

    store = srv.app[AUTH_STORE]
    store.add_user("viewer", PASSWORDS["viewer"], "viewer")
    store.add_user("operator", PASSWORDS["operator"], "operator")
    try:
        yield srv
    finally:
        await runner.cleanup()


def routes(app: web.Application) -> list[tuple[str, str, Any]]:
    out = []
    for route in app.router.routes():
        resource = route.resource
        assert resource is not None
        if route.method == "HEAD":
            continue
        if isinstance(resource, web.StaticResource):
            out.append((route.method, "/static/{filename}", None))
            continue
        out.append((route.method, resource.canonical, route.handler))
    return out


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES[m.group(1)], path)


async def status_of(http: aiohttp.ClientSession, method: str, path: str, headers: Any) -> int:
    body = None if method in ("GET", "DELETE") else {}
    async with http.request(method, path, json=body, headers=headers) as resp:
        if resp.status == 403:
            data = await resp.json()
            assert "error" in data, data
        return resp.status


async def test_every_route_declares_a_permission(rack: Server) -> None:
    missing = []
    for method, path, handler in routes(rack.app):
        if handler is None:
            continue  # /static/: public assets (public_prefixes)
        op = operation_of(handler)
        assert op is not None, f"{method} {path}: no @describe"
        if op.permission not in PERMISSIONS:
            missing.append(f"{method} {path}")
        else:
            assert (op.permission == "public") == op.public, f"{method} {path}: public mismatch"
    assert not missing, f"routes without Operation(permission=...): {missing}"
    declared = {
        f"{m} {p}": operation_of(h).permission  # type: ignore[union-attr]
        for m, p, h in routes(rack.app)
        if h is not None
    }
    changed = {k: (v, declared[k]) for k, v in EXPECTED.items() if declared.get(k, v) != v}
    assert not changed, f"route rights differ from the expected table: {changed}"
    assert set(EXPECTED) <= set(declared), set(EXPECTED) - set(declared)


async def test_route_role_matrix(rack: Server) -> None:
    users: dict[str, tuple[Role | None, dict[str, str]]] = {
        "anonymous": (None, {}),
        "viewer": ("viewer", basic_header("viewer", PASSWORDS["viewer"])),
        "operator": ("operator", basic_header("operator", PASSWORDS["operator"])),
        "admin": ("admin", rack.basic()),
    }
    checked = 0
    wrong: list[str] = []
    async with aiohttp.ClientSession(base_url=rack.url) as http:
        for method, path, handler in sorted(routes(rack.app), key=lambda r: (r[1], r[0])):
            if handler is None:
                continue
            op = operation_of(handler)
            assert op is not None and op.permission is not None
            for who, (role, headers) in users.items():
                status = await status_of(http, method, concrete(path), headers)
                checked += 1
                if op.permission == "public":
                    ok = status not in (401, 403)
                elif role is None:
                    ok = status == 401
                elif op.permission in EXPECTED_RIGHTS[role]:
                    ok = status not in (401, 403)
                else:
                    ok = status == 403
                if not ok:
                    wrong.append(f"{who}: {method} {path} ({op.permission}) -> {status}")
    assert not wrong, "\n".join(wrong)
    assert checked >= 4 * 50  # the matrix really ran (routes x 4 callers)
    print(f"route x role matrix: {checked} requests")


async def test_a_narrower_token_and_a_role_change_apply_at_once(rack: Server) -> None:
    from appliance.api.auth import AUTH_STORE

    store = rack.app[AUTH_STORE]
    _, token = store.create_token("watch", "admin", "viewer")
    bearer = {"Authorization": f"Bearer {token}"}
    op_auth = basic_header("operator", PASSWORDS["operator"])
    async with aiohttp.ClientSession(base_url=rack.url) as http:
        assert await status_of(http, "GET", "/api/state", bearer) == 200
        async with http.post("/api/hid/release", headers=bearer) as resp:
            assert resp.status == 403
            assert (await resp.json())["permission"] == "input"
        async with http.post("/api/hid/release", headers=op_auth) as resp:
            assert resp.status == 200
        store.set_role("operator", "viewer")  # like `ipkvm user role operator viewer`
        async with http.post("/api/hid/release", headers=op_auth) as resp:
            assert resp.status == 403
            assert "viewer" in (await resp.json())["error"]
    with pytest.raises(ValueError, match="more rights"):
        store.create_token("too-much", "viewer", "admin")


async def test_per_port_rights(rack: Server) -> None:
    from appliance.api.auth import AUTH_STORE

    store = rack.app[AUTH_STORE]
    store.set_ports("operator", [2])
    auth = basic_header("operator", PASSWORDS["operator"])
    async with aiohttp.ClientSession(base_url=rack.url, headers=auth) as http:
        async with http.post("/api/hid/release") as resp:  # port 1 is shown: not theirs
            assert resp.status == 403
            assert "port" in (await resp.json())["error"]
        async with http.post("/api/switch/select", json={"port": 3}) as resp:
            assert resp.status == 403
        async with http.post("/api/switch/select", json={"port": 2}) as resp:
            assert resp.status == 200, await resp.text()
        async with http.post("/api/hid/release") as resp:
            assert resp.status == 200


async def test_a_route_without_a_permission_is_refused(tmp_path: Path) -> None:
    """Fail closed: a handler described without ``permission`` is 403 for everyone."""
    from appliance.api import rights
    from appliance.api.auth import setup_auth
    from appliance.api.openapi import Operation, describe, ok
    from appliance.auth import AuthStore
    from tests.conftest import free_port

    store = AuthStore(tmp_path)
    password = store.ensure_admin()
    assert password
    app = web.Application()
    setup_auth(app, store, public_paths=set(), secure_cookies=False)
    rights.setup(app)

    @describe(Operation(summary="undeclared", replies={200: ok("x")}))
    async def undeclared(request: web.Request) -> web.Response:
        return web.json_response({})

    async def undescribed(request: web.Request) -> web.Response:
        return web.json_response({})

    app.router.add_get("/api/undeclared", undeclared)
    app.router.add_get("/api/undescribed", undescribed)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession() as http:
            for path in ("undeclared", "undescribed"):
                url = f"http://127.0.0.1:{port}/api/{path}"
                async with http.get(url, headers=basic_header("admin", password)) as resp:
                    assert resp.status == 403
                    assert "declares no permission" in (await resp.json())["error"]
    finally:
        await runner.cleanup()


def test_roles_nest_and_match_the_table() -> None:
    assert {r: set(ROLE_RIGHTS[r]) for r in ROLES} == EXPECTED_RIGHTS
    for lower, higher in itertools.pairwise(ROLES):
        assert ROLE_RIGHTS[lower] < ROLE_RIGHTS[higher]
