"""The real appliance app on 127.0.0.1: the console's cache policy and sessions across restarts."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from aiohttp import web
from yarl import URL

from appliance.api.app import WEB_DIR
from tests.conftest import Server, start_server
from tests.test_web_auth import who

STATIC_JS = "/static/js/main.js"


async def start_again(tmp_path: Path) -> tuple[str, web.AppRunner]:
    """A new appliance process on the state dir ``start_server`` made (as after an upgrade)."""
    from appliance.api.server import start_server as serve
    from appliance.auth import AuthStore
    from appliance.config import load_config

    state = tmp_path / "state"
    config = load_config(tmp_path / "ipkvm.toml").with_overrides(
        listen="127.0.0.1:0", state_dir=state, target=None, tls=None
    )
    store = AuthStore(state)
    assert store.ensure_admin() is None  # the password from the first start is kept
    running = await serve(config, store)
    return running.url, running.runner


async def test_static_modules_and_console_page_revalidate(server: Server) -> None:
    assert (WEB_DIR / STATIC_JS.removeprefix("/static/")).is_file()
    async with aiohttp.ClientSession(base_url=server.url) as anon:
        async with anon.get(STATIC_JS) as resp:
            assert resp.status == 200
            assert resp.headers["Cache-Control"] == "no-cache"
            assert "javascript" in resp.headers["Content-Type"]
            etag, modified = resp.headers["ETag"], resp.headers["Last-Modified"]
        async with anon.get(STATIC_JS, headers={"If-None-Match": etag}) as resp:
            assert resp.status == 304
            assert resp.headers["Cache-Control"] == "no-cache"
            assert await resp.read() == b""
        async with anon.get(STATIC_JS, headers={"If-Modified-Since": modified}) as resp:
            assert resp.status == 304
        async with anon.get(STATIC_JS, headers={"If-None-Match": '"stale"'}) as resp:
            assert resp.status == 200  # a changed file is sent again
        async with anon.get("/login") as resp:
            assert resp.status == 200 and resp.headers["Cache-Control"] == "no-cache"
    session = await server.login()
    async with session:
        async with session.get("/", headers={"Accept": "text/html"}) as resp:
            assert resp.status == 200
            assert resp.headers["Cache-Control"] == "no-cache"
            assert "<html" in (await resp.text()).lower()
            etag = resp.headers["ETag"]
        async with session.get("/", headers={"If-None-Match": etag}) as resp:
            assert resp.status == 304
        async with session.get("/api/auth/me") as resp:  # API answers keep their own policy
            assert resp.headers["Cache-Control"] == "no-store"


async def test_login_survives_an_appliance_restart(tmp_path: Path) -> None:
    srv, runner = await start_server(tmp_path)
    try:
        session = await srv.login()
        async with session:
            async with session.get("/api/auth/me") as resp:
                assert who(await resp.json()) == {"user": "admin", "via": "session"}
            cookies = session.cookie_jar.filter_cookies(URL(srv.url))
            sid = cookies["ipkvm_session"].value
    finally:
        await runner.cleanup()
    assert sid not in (srv.state_dir / "sessions.json").read_text()
    url, runner = await start_again(tmp_path)
    try:
        headers = {"Cookie": f"ipkvm_session={sid}"}
        async with aiohttp.ClientSession(base_url=url) as browser:
            async with browser.get("/api/auth/me", headers=headers) as resp:
                assert resp.status == 200
                assert who(await resp.json()) == {"user": "admin", "via": "session"}
            async with browser.get("/", headers={"Accept": "text/html", **headers}) as resp:
                assert resp.status == 200 and resp.url.path == "/"  # no bounce to /login
            async with browser.post("/api/auth/logout", headers=headers) as resp:
                assert resp.status == 200
    finally:
        await runner.cleanup()
    url, runner = await start_again(tmp_path)
    try:
        async with aiohttp.ClientSession(base_url=url) as browser:
            async with browser.get("/api/auth/me", headers=headers) as resp:
                assert resp.status == 401
    finally:
        await runner.cleanup()
