"""The aiohttp application: pages, static assets, the API route tables, and the lifecycle that
starts the appliance and — on shutdown — closes WebSockets and releases every key. Connections
whose credentials are revoked are closed too (``appliance.api.connections``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from aiohttp import web

from appliance.api import connections, demo, hid, jobs, power, scripts, switch, video, ws
from appliance.api.auth import setup_auth
from appliance.api.errors import json_errors
from appliance.api.httpjson import MAX_JSON_BODY, json_response
from appliance.api.ice import IceServer
from appliance.auth import AuthStore
from appliance.runtime import APPLIANCE, Appliance
from appliance.targets.demo import DemoTarget

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
PUBLIC_PATHS = {"/login", "/api/health", "/favicon.ico"}
PUBLIC_PREFIXES = ("/static/",)

routes = web.RouteTableDef()


@routes.get("/api/health")
async def health(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


@routes.get("/api/state")
async def state(request: web.Request) -> web.Response:
    return json_response(request.app[APPLIANCE].state())


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
async def _refuse_dotfiles(request: web.Request, handler: Any) -> web.StreamResponse:
    """``/static/`` serves the web directory as it is on disk, and aiohttp's static handler
    serves hidden files too: an editor's swap file, a ``.git`` directory or a ``.env`` left in a
    build would be public (``/static/`` needs no login). No asset of ours starts with a dot, so
    any such path segment (``.`` and ``..`` included) is a 404."""
    if request.path.startswith("/static/") and any(
        part.startswith(".") for part in request.path.split("/")
    ):
        raise web.HTTPNotFound()
    return await handler(request)  # type: ignore[no-any-return]


@routes.get("/")
async def index(request: web.Request) -> web.StreamResponse:
    return _page("index.html")


@routes.get("/login")
async def login_page(request: web.Request) -> web.StreamResponse:
    return _page("login.html")


@routes.get("/favicon.ico")
async def favicon(request: web.Request) -> web.StreamResponse:
    """Pages name /static/favicon.svg; this is for clients that ask the old path regardless."""
    raise web.HTTPFound("/static/favicon.svg")


def create_app(
    appliance: Appliance, auth_store: AuthStore, *, secure_cookies: bool = False
) -> web.Application:

    app = web.Application(client_max_size=MAX_JSON_BODY, middlewares=[json_errors])
    app[APPLIANCE] = appliance
    setup_auth(
        app,
        auth_store,
        public_paths=PUBLIC_PATHS,
        public_prefixes=PUBLIC_PREFIXES,
        secure_cookies=secure_cookies,
        trusted_proxies=appliance.config.server.trusted_proxies,
        proxy_header=appliance.config.server.proxy_header,
    )
    connections.setup(app, auth_store)  # before the streaming routes: they register with it
    app.add_routes(routes)
    app.add_routes(hid.routes)
    app.add_routes(jobs.routes)
    app.add_routes(video.routes)
    app.add_routes(ws.routes)
    app.add_routes(scripts.routes)
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
    if isinstance(appliance.target, DemoTarget):
        app.add_routes(demo.routes)
    if appliance.switch is not None:
        app.add_routes(switch.routes)
    if WEB_DIR.is_dir():
        app.router.add_static("/static/", WEB_DIR, append_version=False)
        app.middlewares.append(_refuse_dotfiles)
        app.on_response_prepare.append(_static_cache_policy)

    async def start(app: web.Application) -> None:
        await appliance.start()

    async def end_streams(app: web.Application) -> None:
        appliance.end_streams()

    async def stop(app: web.Application) -> None:
        await appliance.close()

    app.on_startup.append(start)
    app.on_shutdown.append(end_streams)
    app.on_cleanup.append(stop)
    return app
