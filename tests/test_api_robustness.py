"""What a probe of the release found: bodies cut short, deep JSON crashing handlers, plain-text
errors on the API, dotfiles under /static/, and WebSocket replies dropped without a word.
Everything runs against a real server on 127.0.0.1 with the demo target."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yarl

from appliance.api import ws as api_ws
from appliance.api.httpjson import MAX_JSON_BODY
from appliance.api.outbox import Outbox
from appliance.jsondecode import MAX_DEPTH, JsonError, decode_json
from tests.conftest import Server, start_server

DEEP = "[" * 8000  # deeper than Python's recursion limit: json.loads raises RecursionError


def no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not bad, [r.getMessage() for r in bad]
    assert "Traceback" not in caplog.text and "RecursionError" not in caplog.text


def comment_body(size: int) -> bytes:
    """A ``/api/scripts/run`` body of about ``size`` bytes: a script of comments only."""
    line = "REM " + "x" * 95 + "\n"
    script = line * ((size - 20) // (len(line) + 1))  # +1: the newline is "\\n" in JSON
    return json.dumps({"script": script}).encode()


# --------------------------------------------------------------------------- body size


@pytest.mark.parametrize("size", [150_000, 600_000, 1_000_000])
async def test_valid_bodies_under_the_limit_are_read_whole(server: Server, size: int) -> None:
    """content.read(n) returned only what had arrived: these failed as "malformed JSON"."""
    body = comment_body(size)
    assert size - 200 < len(body) <= min(size, MAX_JSON_BODY)
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession(base_url=server.url, headers=server.basic()) as s:
        for _ in range(8):  # the old code failed one try in three at 150 KB
            async with s.post("/api/scripts/run", data=body, headers=headers) as r:
                assert r.status == 200, await r.text()
                assert (await r.json())["job"] > 0


async def test_chunked_body_over_the_limit_is_413(server: Server) -> None:
    """No Content-Length to refuse up front: the server must stop reading past the limit and
    answer 413, not parse a truncated prefix (400). Sent by hand, so the client can stop as
    soon as the answer is there and end the body properly (aiohttp's client does neither: a
    half-sent body leaves aiohttp's server reading the rest for 10 s)."""
    url = yarl.URL(server.url)
    reader, writer = await asyncio.open_connection(url.host, url.port)
    auth = server.basic()["Authorization"]
    writer.write(
        f"POST /api/hid/type HTTP/1.1\r\nHost: {url.host}:{url.port}\r\n"
        f"Authorization: {auth}\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n".encode()
    )
    answer = asyncio.create_task(reader.readuntil(b"\r\n\r\n"))
    chunk = b"x" * 65536
    sent = 0
    try:
        writer.write(b'a\r\n{"text": "\r\n')
        while sent < 50 * 1024 * 1024 and not answer.done():
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()
            sent += len(chunk)
        writer.write(b"0\r\n\r\n")
        head = (await asyncio.wait_for(answer, 5)).decode()
        length = int(head.lower().split("content-length:")[1].split("\r\n")[0])
        body = json.loads(await reader.readexactly(length))
        # Closing now, with the rest of the body unread, would leave the server lingering for
        # 10 s (aiohttp does not notice that disconnect); a second request on the connection
        # is answered once it has discarded the rest.
        writer.write(f"GET /api/health HTTP/1.1\r\nHost: {url.host}\r\n\r\n".encode())
        second = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert second.startswith(b"HTTP/1.1 200 ")
    finally:
        answer.cancel()
        writer.close()
    assert head.startswith("HTTP/1.1 413 "), head
    assert "application/json" in head.lower()
    assert str(MAX_JSON_BODY) in body["error"]
    assert sent < 50 * 1024 * 1024  # answered before the client had sent it all


async def test_content_length_over_the_limit_is_413(server: Server) -> None:
    async with aiohttp.ClientSession(base_url=server.url, headers=server.basic()) as s:
        async with s.post("/api/hid/type", data=b" " * (MAX_JSON_BODY + 1)) as r:
            assert r.status == 413
            assert "larger than" in (await r.json())["error"]


# --------------------------------------------------------------------------- deep JSON


def test_decode_json_depth_limit() -> None:
    assert decode_json("[" * MAX_DEPTH + "]" * MAX_DEPTH) is not None
    with pytest.raises(JsonError, match="nested deeper"):
        decode_json("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
    with pytest.raises(JsonError, match="nested deeper"):
        decode_json(DEEP.encode())
    # Many brackets that are not nesting (in strings, or siblings) are fine.
    assert decode_json(json.dumps({"a": "[" * 1000})) == {"a": "[" * 1000}
    assert len(decode_json("[" + ",".join(["[]"] * 1000) + "]")) == 1000


@pytest.mark.parametrize(
    "body",
    [DEEP, '{"text": ' + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "}"],
    ids=["recursion-error", "too-deep"],
)
async def test_deep_json_is_a_400_on_a_protected_route(
    server: Server, body: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with (
        aiohttp.ClientSession(base_url=server.url, headers=server.basic()) as s,
        s.post("/api/hid/type", data=body, headers={"Content-Type": "application/json"}) as r,
    ):
        assert r.status == 400
        assert "nested deeper" in (await r.json())["error"]
    no_errors_logged(caplog)


async def test_deep_json_is_a_400_on_the_public_login(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    async with (
        aiohttp.ClientSession(base_url=server.url) as s,
        s.post("/api/auth/login", data=DEEP, headers={"Content-Type": "application/json"}) as r,
    ):
        assert r.status == 400
        assert "nested deeper" in (await r.json())["error"]
    no_errors_logged(caplog)


async def test_deep_json_on_the_websocket_is_an_error_event(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    async with aiohttp.ClientSession(base_url=server.url, headers=server.basic()) as s:
        async with s.ws_connect("/api/ws") as ws:
            await ws.send_str(DEEP)
            await ws.send_json({"type": "ping", "t": 7})
            events = []
            async with asyncio.timeout(5):
                while True:
                    msg = await ws.receive()
                    assert msg.type is aiohttp.WSMsgType.TEXT, msg  # not closed (1006)
                    event = msg.json()
                    events.append(event)
                    if event["type"] == "pong":
                        break
            errors = [e for e in events if e["type"] == "error"]
            assert len(errors) == 1 and "nested deeper" in errors[0]["message"]
    no_errors_logged(caplog)


async def test_deep_json_on_the_data_channel_is_an_error_reply(server: Server) -> None:
    """The WebRTC ``input`` channel hands each message to ``api_ws.handle_text``."""
    reply = api_ws.handle_text(server.appliance, "rtc:test", DEEP)  # type: ignore[arg-type]
    assert reply is not None and reply["type"] == "error"
    assert "nested deeper" in reply["message"]


# --------------------------------------------------------------------------- JSON errors


async def test_api_errors_are_json(server: Server) -> None:
    async with aiohttp.ClientSession(base_url=server.url, headers=server.basic()) as s:
        async with s.get("/api/no/such/route") as r:
            assert (r.status, r.content_type) == (404, "application/json")
            assert "/api/no/such/route" in (await r.json())["error"]
        async with s.post("/api/state") as r:
            assert (r.status, r.content_type) == (405, "application/json")
            assert "GET" in r.headers["Allow"]
            assert "POST" in (await r.json())["error"]
        async with s.get("/api/ws") as r:  # no upgrade
            assert (r.status, r.content_type) == (400, "application/json")
            assert (await r.json())["error"]
        # Our own JSON errors pass through untouched.
        async with s.post("/api/hid/type", json={"text": 5}) as r:
            assert r.status == 400 and "'text'" in (await r.json())["error"]


async def test_server_fault_is_a_json_500_without_the_traceback(
    server: Server, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> dict[str, Any]:
        raise RuntimeError("secret-detail")

    monkeypatch.setattr(server.appliance, "state", broken)
    async with aiohttp.ClientSession(base_url=server.url, headers=server.basic()) as s:
        async with s.get("/api/state") as r:
            assert (r.status, r.content_type) == (500, "application/json")
            text = await r.text()
    assert "internal server error" in text
    assert "secret-detail" not in text and "Traceback" not in text
    logged = [r for r in caplog.records if r.exc_info and "secret-detail" in str(r.exc_info[1])]
    assert logged, "the fault must be logged with its traceback"


async def test_auth_answers_are_unchanged(server: Server) -> None:
    async with aiohttp.ClientSession(base_url=server.url) as s:
        async with s.get("/api/no/such/route") as r:  # no credentials: 401 before any 404
            assert (r.status, r.content_type) == (401, "application/json")
            assert "Basic" in r.headers["WWW-Authenticate"]
        async with s.get("/", headers={"Accept": "text/html"}, allow_redirects=False) as r:
            assert r.status == 302 and r.headers["Location"] == "/login"


# --------------------------------------------------------------------------- dotfiles


@pytest.fixture
async def web_dir_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Server]:
    web_dir = tmp_path / "web"
    (web_dir / ".git").mkdir(parents=True)
    (web_dir / "sub").mkdir()
    (web_dir / "app.js").write_text("ok")
    (web_dir / ".env").write_text("SECRET=1")
    (web_dir / ".git" / "config").write_text("[core]")
    (web_dir / "sub" / ".hidden").write_text("secret")
    monkeypatch.setattr("appliance.api.app.WEB_DIR", web_dir)
    srv, runner = await start_server(tmp_path)
    try:
        yield srv
    finally:
        await runner.cleanup()


async def test_static_refuses_dotfiles(web_dir_server: Server) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{web_dir_server.url}/static/app.js") as r:
            assert r.status == 200 and await r.text() == "ok"
        for path in ["/static/.env", "/static/.git/config", "/static/sub/.hidden"]:
            async with s.get(f"{web_dir_server.url}{path}") as r:
                assert r.status == 404, path
                assert "secret" not in (await r.text()).lower()
        encoded = yarl.URL(f"{web_dir_server.url}/static/%2eenv", encoded=True)
        async with s.get(encoded) as r:
            assert r.status == 404


# --------------------------------------------------------------------------- WebSocket flood


async def test_outbox_keeps_newest_state_and_final_progress_and_reports_drops() -> None:
    box = Outbox(2)
    final = {"type": "script_progress", "job": 1, "done": True}
    box.put({"type": "state", "n": 1})
    box.put({"type": "pong", "t": 1})
    box.put({"type": "state", "n": 2})  # full: kept aside
    box.put({"type": "pong", "t": 2})  # full: dropped
    box.put({"type": "script_progress", "job": 1, "done": False})  # full: dropped
    box.put(final)  # what a script waits for: kept, after the notice of the gap before it
    box.put({"type": "state", "n": 3})  # newer state replaces the one kept aside
    assert await box.get() == {"type": "state", "n": 1}
    box.put({"type": "pong", "t": 3})  # still full: dropped
    assert await box.get() == {"type": "pong", "t": 1}
    assert await box.get() == {
        "type": "dropped",
        "count": 2,
        "types": {"pong": 1, "script_progress": 1},
    }
    assert await box.get() == final
    assert await box.get() == {"type": "dropped", "count": 1, "types": {"pong": 1}}
    assert await box.get() == {"type": "state", "n": 3}  # the newest state, once drained
    waiter = asyncio.create_task(box.get())
    await asyncio.sleep(0)
    assert not waiter.done()
    box.put({"type": "pong", "t": 4})
    assert await asyncio.wait_for(waiter, 1) == {"type": "pong", "t": 4}


async def test_websocket_flood_reports_dropped_replies(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A burst of pings arrives in one read and is answered before the sender can run: with a
    small queue most pongs cannot be kept, and the client is told how many it missed."""
    monkeypatch.setattr(api_ws, "SEND_QUEUE", 4)
    n = 200
    async with aiohttp.ClientSession(base_url=server.url, headers=server.basic()) as s:
        async with s.ws_connect("/api/ws") as ws:
            for i in range(n):
                await ws.send_json({"type": "ping", "t": i})
            pongs: list[int] = []
            dropped = 0
            async with asyncio.timeout(5):
                while len(pongs) + dropped < n:
                    event = await ws.receive_json()
                    if event["type"] == "pong":
                        pongs.append(event["t"])
                    elif event["type"] == "dropped":
                        dropped += event["types"].get("pong", 0)
                        assert event["count"] >= event["types"].get("pong", 0)
    assert dropped > 0
    assert pongs == sorted(pongs)  # what arrives, arrives in order
    assert len(pongs) + dropped == n
