"""Open connections do not outlive their credentials: after ``ipkvm token revoke``, a logout or
``ipkvm passwd`` the input WebSocket is closed with 4401 (and its keys released), MJPEG and H.264
streams end, while connections opened with other, still valid credentials carry on.

Real server on 127.0.0.1 with the demo target; the CLI runs as a separate process, so the server
must notice the change by itself (its periodic re-check, at most ~1 s)."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType

from appliance.api.auth import AUTH_STORE
from appliance.api.connections import CLOSE_CODE, CLOSE_REASON, CONNECTIONS
from appliance.auth import AuthStore
from tests.conftest import Server, hid_until
from tests.test_service import read_mjpeg_part
from tests.test_web_auth import cli

# The CLI is a fresh Python process (~1 s on a loaded machine) plus the re-check interval.
DEADLINE = 30.0


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def in_sync(ws: aiohttp.ClientWebSocketResponse) -> None:
    """Round trip: every message sent before has been handled by the server."""
    await ws.send_json({"type": "ping", "t": 7})
    async with asyncio.timeout(10):
        while True:
            msg = await ws.receive_json()
            if msg["type"] == "pong":
                return


async def hold_shift(server: Server, ws: aiohttp.ClientWebSocketResponse) -> None:
    await ws.send_json({"type": "key", "code": "ShiftLeft", "down": True})
    await in_sync(ws)
    assert "ShiftLeft" in server.appliance.state()["hid"]["keys_held"]  # type: ignore[attr-defined]


async def closed_by_server(ws: aiohttp.ClientWebSocketResponse) -> None:
    """Read until the server closes the socket; it must say why, with our close code."""
    try:
        async with asyncio.timeout(DEADLINE):
            while True:
                msg = await ws.receive()
                if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                    break
    except TimeoutError:
        pytest.fail("the WebSocket stayed open after its credentials were revoked")
    assert (msg.type, msg.data, msg.extra) == (WSMsgType.CLOSE, CLOSE_CODE, CLOSE_REASON)
    assert ws.close_code == CLOSE_CODE  # a clean closing handshake, not a dropped connection


async def mjpeg_ends(resp: aiohttp.ClientResponse) -> None:
    """Read parts until the body ends (it must, and cleanly)."""
    try:
        async with asyncio.timeout(DEADLINE):
            while await resp.content.readany():
                pass
    except TimeoutError:
        pytest.fail("the MJPEG stream kept sending after its credentials were revoked")
    assert resp.content.at_eof()


async def keys_released(server: Server) -> None:
    app: Any = server.appliance
    await hid_until(app.hid, lambda: not app.hid.keyboard.held, "the revoked client's keys")


async def test_token_revoke_closes_its_connections_only(server: Server) -> None:
    store = AuthStore(server.state_dir)  # like the CLI: another instance of the store
    _, doomed = store.create_token("doomed")
    _, other = store.create_token("other")
    async with (
        aiohttp.ClientSession(base_url=server.url, headers=bearer(doomed)) as s,
        aiohttp.ClientSession(base_url=server.url, headers=bearer(other)) as keep,
        s.ws_connect("/api/ws") as ws,
        keep.ws_connect("/api/ws") as kept,
        s.get("/api/stream.mjpeg") as stream,
    ):
        await hold_shift(server, ws)
        await in_sync(kept)
        await read_mjpeg_part(stream)
        code, _, err = await cli("token", "revoke", "doomed", "--state-dir", str(server.state_dir))
        assert code == 0, err
        await closed_by_server(ws)
        await keys_released(server)
        await mjpeg_ends(stream)
        await in_sync(kept)  # the other token's socket carries on
        assert len(server.app[CONNECTIONS]) == 1


async def test_logout_closes_that_sessions_connections(server: Server) -> None:
    browser = await server.login()
    other = await server.login()
    async with (
        browser,
        other,
        browser.ws_connect("/api/ws") as ws,
        other.ws_connect("/api/ws") as kept,
        browser.get("/api/stream.mjpeg") as stream,
    ):
        await hold_shift(server, ws)
        await read_mjpeg_part(stream)
        async with browser.post("/api/auth/logout") as resp:
            assert resp.status == 200
        await closed_by_server(ws)
        await keys_released(server)
        await mjpeg_ends(stream)
        await in_sync(kept)  # another browser's session is not affected


async def test_passwd_closes_sessions_and_basic_but_not_tokens(server: Server) -> None:
    _, token = AuthStore(server.state_dir).create_token("ci")
    browser = await server.login()
    async with (
        browser,
        aiohttp.ClientSession(base_url=server.url, headers=server.basic()) as basic,
        aiohttp.ClientSession(base_url=server.url, headers=bearer(token)) as script,
        browser.ws_connect("/api/ws") as ws,
        basic.ws_connect("/api/ws") as basic_ws,
        script.ws_connect("/api/ws") as kept,
        browser.get("/api/stream.mjpeg") as stream,
        basic.get("/api/stream.mjpeg") as basic_stream,
    ):
        await hold_shift(server, ws)
        await in_sync(basic_ws)
        await read_mjpeg_part(stream)
        await read_mjpeg_part(basic_stream)
        code, _, err = await cli(
            "passwd", "--stdin", "--state-dir", str(server.state_dir), stdin=b"a-new-password\n"
        )
        assert code == 0, err
        await closed_by_server(ws)
        await closed_by_server(basic_ws)
        await keys_released(server)
        await mjpeg_ends(stream)
        await mjpeg_ends(basic_stream)
        await in_sync(kept)  # tokens stay valid across a password change (docs/security.md)


async def test_expired_session_closes_its_websocket(server: Server) -> None:
    browser = await server.login()
    async with browser, browser.ws_connect("/api/ws") as ws:
        await hold_shift(server, ws)
        store = server.app[AUTH_STORE]
        now = store.clock()
        store.clock = lambda: now + store.session_ttl + 1
        await closed_by_server(ws)
        await keys_released(server)


async def test_h264_websocket_closed_on_revoke(server: Server) -> None:
    store = server.app[AUTH_STORE]
    token_id, token = store.create_token("viewer")
    async with (
        aiohttp.ClientSession(base_url=server.url, headers=bearer(token)) as s,
        s.ws_connect("/api/stream.h264") as ws,
    ):
        async with asyncio.timeout(20):
            assert (await ws.receive_json())["type"] == "stream"
        assert store.revoke_token(token_id) is not None
        await closed_by_server(ws)


async def test_connection_opened_with_an_already_revoked_credential_is_closed(
    server: Server,
) -> None:
    """Revoked between the request's check and the registration: closed at once."""
    store = server.app[AUTH_STORE]
    token_id, token = store.create_token("racy")
    registry = server.app[CONNECTIONS]
    original = registry.register

    def revoke_first(*args: Any) -> Any:
        store.revoke_token(token_id)
        return original(*args)

    registry.register = revoke_first  # type: ignore[method-assign]
    async with (
        aiohttp.ClientSession(base_url=server.url, headers=bearer(token)) as s,
        s.ws_connect("/api/ws") as ws,
    ):
        await ws.send_json({"type": "key", "code": "ShiftLeft", "down": True})
        await closed_by_server(ws)
    assert not server.appliance.hid.keyboard.held  # type: ignore[attr-defined]
