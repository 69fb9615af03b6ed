"""The appliance service end to end: a real aiohttp server on 127.0.0.1 driving the demo target."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import numpy as np
import pytest

from tests.conftest import Server, hid_until, start_server


async def demo_state(session: aiohttp.ClientSession) -> dict[str, Any]:
    async with session.get("/api/demo/state") as resp:
        assert resp.status == 200
        data: dict[str, Any] = await resp.json()
        return data


async def wait_for(
    pred, session: aiohttp.ClientSession, what: str, timeout: float = 5.0
) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Poll the demo target's state (it has no push channel of its own) until pred holds."""
    state: dict[str, Any] = {}
    try:
        async with asyncio.timeout(timeout):
            # The demo target has no push channel of its own: poll it like a script would.
            while not pred(state := await demo_state(session)):  # noqa: ASYNC110
                await asyncio.sleep(0.02)
    except TimeoutError:
        pytest.fail(f"timed out waiting for {what}; last demo state: {state}")
    return state


async def test_health_is_public_and_state_is_not(server: Server) -> None:
    async with aiohttp.ClientSession(base_url=server.url) as s:
        async with s.get("/api/health") as resp:
            assert resp.status == 200
            assert (await resp.json())["status"] == "ok"
        async with s.get("/api/state") as resp:
            assert resp.status == 401
            assert "error" in await resp.json()


async def test_every_route_needs_auth(server: Server) -> None:
    # Logging in, and logging out (harmless without a session), work without credentials.
    public = {"/login", "/api/health", "/favicon.ico", "/api/auth/login", "/api/auth/logout"}
    # Redfish's version list, service root and login are public by the standard (DSP0266: a
    # client discovers the service and opens a session before it has credentials).
    public |= {"/redfish", "/redfish/v1", "/redfish/v1/"}
    public_posts = {"/redfish/v1/SessionService/Sessions"}
    checked = 0
    async with aiohttp.ClientSession(base_url=server.url) as s:
        for route in server.app.router.routes():
            info = route.resource.get_info() if route.resource else {}
            path = info.get("path") or info.get("formatter") or info.get("prefix")
            if not path:
                continue
            path = path.replace("{", "").replace("}", "")
            if path in public or path.startswith("/static"):
                continue
            method = route.method if route.method != "*" else "GET"
            if method == "HEAD" or (method == "POST" and path in public_posts):
                continue
            async with s.request(method, path, allow_redirects=False) as resp:
                assert resp.status in (401, 302, 303), f"{method} {path} -> {resp.status}"
                if resp.status != 401:
                    assert resp.headers["Location"].startswith("/login")
            checked += 1
    assert checked >= 12


async def test_login_logout_and_bad_password(server: Server) -> None:
    jar = aiohttp.CookieJar(unsafe=True)  # keep cookies for 127.0.0.1 like a browser
    async with aiohttp.ClientSession(base_url=server.url, cookie_jar=jar) as s:
        async with s.post("/api/auth/login", json={"user": "admin", "password": "wrong-pass"}) as r:
            assert r.status == 401
        async with s.post(
            "/api/auth/login", json={"user": "admin", "password": server.password}
        ) as r:
            assert r.status == 200
        async with s.get("/api/state") as r:
            assert r.status == 200
        async with s.post("/api/auth/logout") as r:
            assert r.status == 200
        async with s.get("/api/state") as r:
            assert r.status == 401


async def test_login_throttled_per_address(server: Server) -> None:
    statuses = []
    async with aiohttp.ClientSession(base_url=server.url) as s:
        for _ in range(6):
            async with s.post(
                "/api/auth/login", json={"user": "admin", "password": "nope-nope"}
            ) as r:
                statuses.append(r.status)
                if r.status == 429:
                    assert int(r.headers["Retry-After"]) >= 1
        assert statuses[0] == 401
        assert 429 in statuses
        # Even the right password is refused while throttled: no brute-force oracle.
        async with s.post(
            "/api/auth/login", json={"user": "admin", "password": server.password}
        ) as r:
            assert r.status == 429


def decode_jpeg(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, "not a decodable JPEG"
    return image


async def read_mjpeg_part(resp: aiohttp.ClientResponse) -> bytes:
    boundary = await resp.content.readline()
    assert boundary.strip() == b"--frame", boundary
    headers: dict[str, str] = {}
    while (line := await resp.content.readline()) not in (b"\r\n", b""):
        k, _, v = line.decode().partition(":")
        headers[k.strip().lower()] = v.strip()
    assert headers["content-type"] == "image/jpeg"
    body = await resp.content.readexactly(int(headers["content-length"]))
    assert await resp.content.readexactly(2) == b"\r\n"
    return body


async def test_mjpeg_stream_shows_typed_text(server: Server) -> None:
    session = await server.login()
    async with session, session.get("/api/stream.mjpeg") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("multipart/x-mixed-replace")
        first = decode_jpeg(await read_mjpeg_part(resp))
        assert first.shape == (720, 1280, 3)
        async with session.post("/api/hid/type", json={"text": "HELLO"}) as r:
            assert r.status == 200, await r.text()
        # The next parts must show a different picture: the text appeared.
        async with asyncio.timeout(5):
            while True:
                frame = decode_jpeg(await read_mjpeg_part(resp))
                diff = cv2.absdiff(frame, first).max(axis=2)
                if (diff > 60).sum() > 50:
                    break


async def test_snapshot_png_and_scaled_jpeg(server: Server) -> None:
    async with aiohttp.ClientSession(base_url=server.url, headers=server.basic()) as s:
        async with s.get("/api/snapshot?format=png") as r:
            assert r.status == 200 and r.content_type == "image/png"
            image = cv2.imdecode(np.frombuffer(await r.read(), np.uint8), cv2.IMREAD_COLOR)
            assert image.shape == (720, 1280, 3)
        async with s.get("/api/snapshot?width=640") as r:
            assert r.status == 200 and r.content_type == "image/jpeg"
            assert decode_jpeg(await r.read()).shape[1] == 640
        async with s.get("/api/snapshot?format=gif") as r:
            assert r.status == 400
            assert "format" in (await r.json())["error"]


async def test_type_via_rest_arrives_in_demo_text_field(server: Server) -> None:
    async with aiohttp.ClientSession(base_url=server.url, headers=server.basic()) as s:
        text = "Hello, World! 123 <>?"
        async with s.post(
            "/api/hid/type", json={"text": text, "layout": "us", "pacing_ms": 0}
        ) as r:
            assert r.status == 200, await r.text()
            body = await r.json()
            assert body["untypable"] == []
        state = await demo_state(s)
        assert state["text"].endswith(text)


async def test_type_reports_untypable_characters(server: Server) -> None:
    async with aiohttp.ClientSession(base_url=server.url, headers=server.basic()) as s:
        async with s.post(
            "/api/hid/type", json={"text": "a€b", "layout": "us", "pacing_ms": 0}
        ) as r:
            assert r.status == 200
            body = await r.json()
        assert body["untypable"] == [{"index": 1, "char": "€", "codepoint": "U+20AC"}]
        assert (await demo_state(s))["text"].endswith("ab")


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ("{not json", 400, "malformed JSON"),
        ("[1, 2]", 400, "JSON object"),
        (json.dumps({"text": 5}), 400, "'text'"),
        (json.dumps({"text": "x", "layout": "klingon"}), 400, "klingon"),
        (json.dumps({"text": "x", "pacing_ms": True}), 400, "pacing_ms"),
    ],
)
async def test_type_bad_input_is_a_clear_400(
    server: Server, body: str, status: int, needle: str
) -> None:
    async with (
        aiohttp.ClientSession(base_url=server.url, headers=server.basic()) as s,
        s.post("/api/hid/type", data=body, headers={"Content-Type": "application/json"}) as r,
    ):
        assert r.status == status
        assert needle in (await r.json())["error"]


async def test_key_combos(server: Server) -> None:
    hid = server.appliance.hid  # type: ignore[attr-defined]
    async with aiohttp.ClientSession(base_url=server.url, headers=server.basic()) as s:
        async with s.post("/api/hid/keys", json={"keys": "ctrl+alt+nosuchkey"}) as r:
            assert r.status == 400
            assert "nosuchkey" in (await r.json())["error"]
        async with s.post("/api/hid/keys", json={"keys": "ctrl+alt+delete"}) as r:
            assert r.status == 200
            assert (await r.json())["pressed"] == [["ControlLeft", "AltLeft", "Delete"]]
    assert hid.keyboard.held == {}


async def test_websocket_typing_and_release_on_close(server: Server) -> None:
    session = await server.login()
    async with session:
        before = (await demo_state(session))["text"]
        async with session.ws_connect("/api/ws") as ws:
            first = await ws.receive_json(timeout=5)
            assert first["type"] == "state"
            # The video may still be starting; its state follows as soon as it is up.
            while first["video"]["width"] != 1280:
                first = await ws.receive_json(timeout=5)
            assert first["video"]["status"] == "ok"
            for code in ["ShiftLeft", "KeyH"]:
                await ws.send_json({"type": "key", "code": code, "down": True})
            await ws.send_json({"type": "key", "code": "KeyH", "down": False})
            await ws.send_json({"type": "key", "code": "ShiftLeft", "down": False})
            await ws.send_json({"type": "key", "code": "KeyI", "down": True})
            await ws.send_json({"type": "key", "code": "KeyI", "down": False})
            await wait_for(
                lambda st: st.get("text") == before + "Hi", session, "'Hi' typed over WS"
            )
            # Bad messages get an error event and the socket carries on.
            await ws.send_json({"type": "key", "code": "Bogus", "down": True})
            await ws.send_str("not json at all")
            await ws.send_str(json.dumps({"type": "key", "code": "KeyA", "pad": "x" * 20000}))
            await ws.send_json({"type": "ping", "t": 42})
            errors = []
            async with asyncio.timeout(5):
                while True:
                    msg = await ws.receive_json()
                    if msg["type"] == "error":
                        errors.append(msg["message"])
                    if msg["type"] == "pong":
                        assert msg["t"] == 42
                        break
            assert len(errors) == 3 and "Bogus" in errors[0]
            # Hold Shift and a key, then vanish without releasing.
            await ws.send_json({"type": "key", "code": "ShiftLeft", "down": True})
            await ws.send_json({"type": "key", "code": "KeyQ", "down": True})
            await ws.send_json({"type": "ping", "t": 1})
            async with asyncio.timeout(5):
                while (await ws.receive_json())["type"] != "pong":
                    pass
            assert "KeyQ" in server.appliance.state()["hid"]["keys_held"]  # type: ignore[attr-defined]
        app = server.appliance
        await hid_until(app.hid, lambda: not app.state()["hid"]["keys_held"], "keys released")  # type: ignore[attr-defined]


async def test_other_clients_keys_survive_a_disconnect(server: Server) -> None:
    session = await server.login()
    async with session:
        async with session.ws_connect("/api/ws") as a, session.ws_connect("/api/ws") as b:
            await a.send_json({"type": "key", "code": "ControlLeft", "down": True})
            await b.send_json({"type": "key", "code": "AltLeft", "down": True})
            for ws in (a, b):
                await ws.send_json({"type": "ping", "t": 0})
                async with asyncio.timeout(5):
                    while (await ws.receive_json())["type"] != "pong":
                        pass
            await a.close()
            app = server.appliance
            await hid_until(
                app.hid,  # type: ignore[attr-defined]
                lambda: "ControlLeft" not in app.state()["hid"]["keys_held"],  # type: ignore[attr-defined]
                "A's Ctrl released",
            )
            assert server.appliance.state()["hid"]["keys_held"] == ["AltLeft"]  # type: ignore[attr-defined]


async def test_websocket_rejects_foreign_origin(server: Server) -> None:
    session = await server.login()
    async with session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await session.ws_connect("/api/ws", headers={"Origin": "http://evil.example"})
        assert info.value.status == 403


async def test_demo_power_off_shows_target_offline(server: Server) -> None:
    async with aiohttp.ClientSession(base_url=server.url, headers=server.basic()) as s:
        async with s.post("/api/demo/power", json={"on": False}) as r:
            assert r.status == 200
            assert (await r.json())["power"] == "off"
        # Queued while the target is off; the service notices and says so.
        async with s.post("/api/hid/key", json={"code": "KeyZ", "down": True}) as r:
            assert r.status == 200
        hid = server.appliance.hid  # type: ignore[attr-defined]
        await hid_until(hid, lambda: hid.online is False, "target offline")
        async with s.get("/api/state") as r:
            assert (await r.json())["hid"]["online"] is False
        # Scripts are told at once instead of waiting on a dead target.
        async with s.post("/api/hid/keys", json={"keys": "enter"}) as r:
            assert r.status == 503
            assert "offline" in (await r.json())["error"]
        async with s.post("/api/hid/key", json={"code": "KeyZ", "down": False}) as r:
            assert r.status == 200
        async with s.post("/api/demo/power", json={"on": True}) as r:
            assert r.status == 200
        text = (await demo_state(s))["text"]
        # Back on: the queued press and release arrive in order — one "z", no stuck key.
        await wait_for(lambda st: st["text"] == text + "z", s, "queued z after power on")


async def test_mjpeg_fps_parameter_caps_the_rate(tmp_path: Path) -> None:
    # Every demo frame changes (stamp) at 30 fps; ?fps=5 must hold the stream to about 5.
    srv, runner = await start_server(tmp_path, "[demo]\nstamp = true\n")
    try:
        session = await srv.login()
        async with session, session.get("/api/stream.mjpeg?fps=5") as resp:
            assert resp.status == 200
            await read_mjpeg_part(resp)
            start, parts = time.monotonic(), 0
            while time.monotonic() - start < 2.0:
                await read_mjpeg_part(resp)
                parts += 1
        assert parts <= 2.0 * 5 * 1.02 + 3, f"{parts} parts in 2 s at fps=5"
        assert parts >= 4, f"only {parts} parts in 2 s"
    finally:
        await runner.cleanup()


async def test_favicon_is_served_without_login(server: Server) -> None:
    async with aiohttp.ClientSession(base_url=server.url) as s:
        async with s.get("/favicon.ico") as r:
            assert r.status == 200
            assert r.content_type == "image/svg+xml"
            assert b"<svg" in await r.read()


async def test_state_reports_each_hid_device(server: Server) -> None:
    async with aiohttp.ClientSession(base_url=server.url, headers=server.basic()) as s:
        async with s.post("/api/hid/keys", json={"keys": "a"}) as r:
            assert r.status == 200
        async with s.get("/api/state") as r:
            hid = (await r.json())["hid"]
    assert set(hid["devices"]) == {"keyboard", "mouse"}
    assert hid["devices"]["keyboard"] == {
        "online": True,
        "error": None,
        "queued": 0,
        "discarded": 0,
    }
