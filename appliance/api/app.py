"""The aiohttp application: pages, static assets, the API route tables, and the lifecycle that
starts the appliance and — on shutdown — closes WebSockets and releases every key. Connections
whose credentials are revoked are closed too (``appliance.api.connections``)."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from pathlib import Path
from typing import Any

from aiohttp import web

from appliance import fields, memory
from appliance.api import (
    accounts,
    connections,
    demo,
    hid,
    jobs,
    media,
    metrics,
    openapi_doc,
    power,
    redfish,
    rights,
    scripts,
    switch,
    video,
    wol,
    ws,
)
from appliance.api.auth import setup_auth
from appliance.api.control import CONTROL, Control
from appliance.api.errors import json_errors
from appliance.api.httpjson import MAX_JSON_BODY, field_or_400, json_response
from appliance.api.ice import IceServer
from appliance.api.openapi import (
    STATE_REF,
    Operation,
    Param,
    describe,
    integer,
    nullable,
    obj,
    ok,
)
from appliance.auth import AuthStore
from appliance.runtime import APPLIANCE, Appliance
from appliance.targets.demo import DemoTarget

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
PUBLIC_PATHS = {"/login", "/api/health", "/favicon.ico"}
PUBLIC_PREFIXES = ("/static/",)

routes = web.RouteTableDef()
TRACE_DIFF: web.AppKey[memory.TraceDiff] = web.AppKey("trace_diff", memory.TraceDiff)


_PAGE_REPLIES = {
    200: ok("the page", {"type": "string"}, "text/html"),
    302: ok("to /login, for a browser (Accept: text/html) that is not logged in"),
}


@routes.get("/api/health")
@describe(
    Operation(
        permission="public",
        summary="Liveness, for load balancers and systemd (no login needed)",
        tag="state",
        public=True,
        replies={200: ok("the service answers", obj(("status",), status={"const": "ok"}))},
    )
)
async def health(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


@routes.get("/api/state")
@describe(
    Operation(
        permission="view",
        summary="The appliance's state (also the WebSocket's `state` event)",
        tag="state",
        replies={200: ok("target, HID, video and client count", STATE_REF)},
    )
)
async def state(request: web.Request) -> web.Response:
    return json_response(request.app[APPLIANCE].state())


@routes.get("/api/debug/runtime")
@describe(
    Operation(
        permission="admin",
        summary="Runtime counts a soak run watches for leaks (tasks, threads, fds, connections)",
        tag="state",
        replies={
            200: ok(
                "counts of the running process",
                obj(
                    ("tasks", "threads", "fds", "ws_clients", "streams", "tracked_connections"),
                    tasks=integer(0),
                    threads=integer(0),
                    fds=nullable(integer(0)),
                    ws_clients=integer(0),
                    streams=integer(0),
                    tracked_connections=integer(0),
                    malloc=nullable({"type": "object"}),
                    tracemalloc=nullable({"type": "object"}),
                ),
            )
        },
        params=(
            Param(
                "tracemalloc",
                integer(0, 100),
                "with IPKVM_TRACEMALLOC set at start: this many source lines by allocation "
                "growth since the previous such request (0: none)",
            ),
        ),
        errors={400: "tracemalloc is not an integer from 0 to 100"},
    )
)
async def runtime_counts(request: web.Request) -> web.Response:
    """What a soak run (bench/soak.py) watches for leaks from inside: asyncio tasks, threads, open
    file descriptors, open long-lived connections. A route of its own rather than fields of
    ``/api/state``, which is pushed to every WebSocket client on each change: counts that move
    with every request would turn each push into a new document. Costs one ``listdir`` of
    /proc/self/fd (a few microseconds for ~50 fds).

    ``malloc`` is glibc's heap (in use vs. kept free, :func:`appliance.memory.malloc_stats`): it
    tells a leak from fragmentation. ``?tracemalloc=N`` adds the N source lines whose Python
    allocations grew most since the previous such request, when the process runs with
    ``IPKVM_TRACEMALLOC`` (otherwise null)."""
    top = field_or_400(lambda: fields.query_integer(request.query, "tracemalloc", 0, 0, 100))
    try:
        fds: int | None = len(os.listdir("/proc/self/fd"))
    except OSError:  # not Linux
        fds = None
    appliance = request.app[APPLIANCE]
    return json_response(
        {
            "tasks": len(asyncio.all_tasks()),
            "threads": threading.active_count(),
            "fds": fds,
            "ws_clients": appliance.clients,
            "streams": len(appliance.streams),
            "tracked_connections": len(request.app[connections.CONNECTIONS]),
            "malloc": memory.malloc_stats(),
            "tracemalloc": request.app[TRACE_DIFF].diff(top) if top else None,
        }
    )


# The console is ES modules loaded without a build step (no hashed file names): a browser that
# cached them heuristically could run old and new modules together after an upgrade. "no-cache"
# makes it revalidate every time, which costs a 304 (ETag / Last-Modified) when nothing changed.
REVALIDATE = "no-cache"


def _page(name: str) -> web.FileResponse | web.Response:
    path = WEB_DIR / name
    if not path.is_file():
        return web.Response(status=404, text=f"{name} is missing from this build")
    return web.FileResponse(path, headers={"Cache-Control": REVALIDATE})


async def _static_cache_policy(request: web.Request, response: web.StreamResponse) -> None:
    """``/static/`` (aiohttp's static handler, which sends no cache policy) → revalidate."""
    if request.path.startswith("/static/") and "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = REVALIDATE


@web.middleware
async def _static_guard(request: web.Request, handler: Any) -> web.StreamResponse:
    """``/static/`` serves the web directory as it is on disk, and aiohttp's static handler
    serves hidden files too: an editor's swap file, a ``.git`` directory or a ``.env`` left in a
    build would be public (``/static/`` needs no login). No asset of ours starts with a dot, so
    any such path segment (``.`` and ``..`` included) is a 404.

    A file that is not there is a plain-text 404 too: aiohttp's own answer for it is an empty
    ``application/octet-stream`` body (it finds out only while sending), unlike every other
    error here. Only existence is checked; which paths may be served stays aiohttp's decision.
    """
    if request.path.startswith("/static/"):
        if any(part.startswith(".") for part in request.path.split("/")):
            raise web.HTTPNotFound()
        name = request.match_info.get("filename", "")
        if not name or not (WEB_DIR / name).is_file():
            raise web.HTTPNotFound()
    return await handler(request)  # type: ignore[no-any-return]


@routes.get("/")
@describe(
    Operation(
        permission="account",
        summary="The console",
        tag="pages",
        replies=_PAGE_REPLIES,
        errors={404: "the page is missing from this build"},
    )
)
async def index(request: web.Request) -> web.StreamResponse:
    return _page("index.html")


@routes.get("/account")
@describe(
    Operation(
        permission="account",
        summary="The account page: own password and 2FA; users, tokens and audit for admins",
        tag="pages",
        replies=_PAGE_REPLIES,
        errors={404: "the page is missing from this build"},
    )
)
async def account_page(request: web.Request) -> web.StreamResponse:
    return _page("account.html")


@routes.get("/login")
@describe(
    Operation(
        permission="public",
        summary="The login page",
        tag="pages",
        public=True,
        replies={200: _PAGE_REPLIES[200]},
        errors={404: "the page is missing from this build"},
    )
)
async def login_page(request: web.Request) -> web.StreamResponse:
    return _page("login.html")


@routes.get("/favicon.ico")
@describe(
    Operation(
        permission="public",
        summary="Redirect to /static/favicon.svg",
        tag="pages",
        public=True,
        replies={302: ok("to /static/favicon.svg")},
    )
)
async def favicon(request: web.Request) -> web.StreamResponse:
    """Pages name /static/favicon.svg; this is for clients that ask the old path regardless."""
    raise web.HTTPFound("/static/favicon.svg")


def create_app(
    appliance: Appliance, auth_store: AuthStore, *, secure_cookies: bool = False
) -> web.Application:

    # redfish_errors sits outside the auth middleware: its 401s under /redfish become Redfish's.
    app = web.Application(
        client_max_size=MAX_JSON_BODY, middlewares=[json_errors, redfish.redfish_errors]
    )
    app[APPLIANCE] = appliance
    app[TRACE_DIFF] = memory.TraceDiff()
    setup_auth(
        app,
        auth_store,
        public_paths=PUBLIC_PATHS | redfish.PUBLIC_PATHS,
        public_prefixes=PUBLIC_PREFIXES,
        public_routes=redfish.PUBLIC_ROUTES,
        secure_cookies=secure_cookies,
        trusted_proxies=appliance.config.server.trusted_proxies,
        proxy_header=appliance.config.server.proxy_header,
    )
    rights.setup(app)  # every route's declared permission, right after authentication
    app[CONTROL] = Control(appliance.events.publish)
    connections.setup(app, auth_store)  # before the streaming routes: they register with it
    app.add_routes(routes)
    app.add_routes(accounts.routes)
    app.add_routes(hid.routes)
    app.add_routes(jobs.routes)
    app.add_routes(video.routes)
    app.add_routes(ws.routes)
    app.add_routes(scripts.routes)
    app.add_routes(wol.routes)
    metrics.setup(app)
    openapi_doc.setup(app)  # GET /api/openapi.json, built on first request
    from appliance.api import h264, webrtc

    app.add_routes(h264.routes)
    rtc = appliance.config.webrtc
    ice = [
        IceServer(url, rtc.turn_username or None, rtc.turn_password or None)
        if url.startswith("turn")
        else IceServer(url)
        for url in rtc.ice_urls
    ]
    webrtc.setup(app, ice_servers=ice, max_peers=rtc.max_peers, connect_timeout=rtc.connect_timeout)
    # Routes for the facets this target has (a null facet adds none).
    if appliance.target.power.available:
        app.add_routes(power.routes)
    if appliance.media is not None:
        app.add_routes(media.routes)
    if isinstance(appliance.target, DemoTarget):
        app.add_routes(demo.routes)
    if appliance.switch is not None:
        app.add_routes(switch.routes)
    redfish.setup(app)
    if WEB_DIR.is_dir():
        app.router.add_static("/static/", WEB_DIR, append_version=False)
        app.middlewares.append(_static_guard)
        app.on_response_prepare.append(_static_cache_policy)

    unlisten: list[Any] = []

    async def start(app: web.Application) -> None:
        await appliance.start()
        # A holder whose credential this process revokes (logout, password change, user removed)
        # loses exclusive control at once, even with no console open (taken over REST).
        loop = asyncio.get_running_loop()
        control = app[CONTROL]

        def revoked() -> None:  # may run in a worker thread (logout writes off the loop)
            loop.call_soon_threadsafe(control.revoked, auth_store.credential_valid)

        unlisten.append(auth_store.add_listener(revoked))

    async def forget(app: web.Application) -> None:
        for remove in unlisten:
            remove()

    app.on_cleanup.append(forget)

    async def end_streams(app: web.Application) -> None:
        appliance.end_streams()

    async def stop(app: web.Application) -> None:
        await appliance.close()

    app.on_startup.append(start)
    app.on_shutdown.append(end_streams)
    app.on_cleanup.append(stop)
    return app
