"""H.264 over WebSocket against the real app: keyframe first, pictures decode with their stamp,
keyframes on request, and a viewer that stops reading does not slow another."""

from __future__ import annotations

import asyncio
import base64
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import av
import pytest

from appliance.api.h264 import unpack_header
from capture.stamp import decode_stamp, stamp_age_ms
from tests.conftest import Server, start_server

STAMPED = "[demo]\nstamp = true\n"


@pytest.fixture
async def stamped(tmp_path: Path) -> AsyncIterator[Server]:
    srv, runner = await start_server(tmp_path, STAMPED)
    try:
        yield srv
    finally:
        await runner.cleanup()


def auth_header(srv: Server) -> dict[str, str]:
    token = base64.b64encode(f"admin:{srv.password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def binary(ws: aiohttp.ClientWebSocketResponse) -> tuple[dict[str, Any], bytes]:
    while True:
        msg = await ws.receive()
        if msg.type is aiohttp.WSMsgType.BINARY:
            return unpack_header(msg.data)
        assert msg.type is aiohttp.WSMsgType.TEXT, msg


async def test_keyframe_first_and_frames_decode(stamped: Server) -> None:
    async with aiohttp.ClientSession(headers=auth_header(stamped)) as session:
        async with session.ws_connect(f"{stamped.url}/api/stream.h264") as ws:
            async with asyncio.timeout(10):
                hello = await ws.receive_json()
                assert hello["type"] == "stream"
                assert hello["codec"].startswith("avc1.42")
                assert (hello["width"], hello["height"]) == (1280, 720)
                decoder = av.CodecContext.create("h264", "r")
                stamps = []
                for i in range(15):
                    info, data = await binary(ws)
                    assert info["keyframe"] == (i == 0)
                    assert (info["width"], info["height"]) == (1280, 720)
                    age_ms = time.time() * 1000 - info["capture_us"] / 1000
                    assert 0 <= age_ms < 2000
                    for frame in decoder.decode(av.Packet(data)):
                        stamp = decode_stamp(frame.to_ndarray(format="bgr24"))
                        assert stamp is not None
                        assert abs(stamp_age_ms(stamp[1])) < 2000
                        stamps.append(stamp[0])
                assert len(stamps) == 15
                assert stamps == sorted(stamps)
                await ws.send_json({"type": "keyframe"})
                for _ in range(5):
                    info, _data = await binary(ws)
                    if info["keyframe"]:
                        break
                else:
                    pytest.fail("no keyframe after the client asked for one")


async def test_unauthenticated_upgrade_is_refused(stamped: Server) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await session.ws_connect(f"{stamped.url}/api/stream.h264")
    assert err.value.status == 401


def stalled_viewer(url: str, password: str) -> socket.socket:
    """A viewer that upgrades, then never reads again, with a tiny receive buffer."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    auth = base64.b64encode(f"admin:{password}".encode()).decode()
    sock.sendall(
        (
            "GET /api/stream.h264 HTTP/1.1\r\n"
            f"Host: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            f"Authorization: Basic {auth}\r\n\r\n"
        ).encode()
    )
    sock.settimeout(5)
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


async def test_a_stalled_viewer_does_not_slow_another(tmp_path: Path) -> None:
    srv, runner = await start_server(tmp_path, STAMPED)
    encoder = srv.appliance.h264
    slow = await asyncio.to_thread(stalled_viewer, srv.url, srv.password)
    # Loopback TCP would buffer megabytes before the server noticed; a viewer on a bad link
    # fills a small send buffer at once. Shrink the server side of the stalled connection.
    port = slow.getsockname()[1]
    assert runner.server is not None
    for handler in runner.server.connections:
        transport = handler.transport
        if transport is not None and transport.get_extra_info("peername")[1] == port:
            sock = transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            break
    else:
        pytest.fail("the stalled viewer's connection is not on the server")
    try:
        async with aiohttp.ClientSession(headers=auth_header(srv)) as session:
            async with session.ws_connect(f"{srv.url}/api/stream.h264") as ws:
                async with asyncio.timeout(30):
                    await binary(ws)  # the first keyframe
                    # Until the stalled viewer's buffers are full and it starts skipping frames.
                    while not any(s.dropped for s in encoder._subs):
                        await binary(ws)
                    # Follow that subscription itself: aiohttp's heartbeat closes a viewer that
                    # never answers pings ~15 s after it connected, and on a loaded machine that
                    # can fall inside the window below (its drops must still count).
                    stalled = next(s for s in encoder._subs if s.dropped)
                    encoded_before = encoder.stats.frames_encoded
                    dropped_before = stalled.dropped
                    keyframes_before = encoder.stats.keyframes
                    received = 0
                    start = time.monotonic()
                    while time.monotonic() - start < 3.0:
                        await binary(ws)
                        received += 1
                    encoded = encoder.stats.frames_encoded - encoded_before
                    keyframes = encoder.stats.keyframes - keyframes_before
                    dropped = stalled.dropped - dropped_before
    finally:
        slow.close()
        await runner.cleanup()
    assert encoded >= 45, f"only {encoded} frames encoded in 3 s"
    assert received >= encoded - 3, f"fast viewer got {received} of {encoded} frames"
    assert dropped > 0, "the stalled viewer stopped overflowing (is it really stalled?)"
    assert keyframes == 0, "a stalled viewer forced keyframes on everybody"


async def test_two_viewers_one_encode(stamped: Server) -> None:
    encoder = stamped.appliance.h264
    async with aiohttp.ClientSession(headers=auth_header(stamped)) as session:
        a = await session.ws_connect(f"{stamped.url}/api/stream.h264")
        b = await session.ws_connect(f"{stamped.url}/api/stream.h264")
        async with asyncio.timeout(10):
            first_a = await binary(a)
            first_b = await binary(b)
            assert first_a[0]["keyframe"] and first_b[0]["keyframe"]
            seqs_a = [(await binary(a))[0]["seq"] for _ in range(20)]
            seqs_b = [(await binary(b))[0]["seq"] for _ in range(20)]
        assert encoder.stats.starts == 1 and encoder.subscribers == 2
        assert set(seqs_a) & set(seqs_b)
        await a.close()
        await b.close()
    async with asyncio.timeout(5):
        await encoder.idle.wait()  # the encoder stops when nobody watches
    assert not encoder.running
    assert encoder.subscribers == 0


async def test_shutdown_closes_viewer_sockets(tmp_path: Path) -> None:
    srv, runner = await start_server(tmp_path, STAMPED)
    async with aiohttp.ClientSession(headers=auth_header(srv)) as session:
        ws = await session.ws_connect(f"{srv.url}/api/stream.h264")
        async with asyncio.timeout(10):
            await binary(ws)
            await srv.appliance.h264.close()  # what app cleanup does
            while (await ws.receive()).type not in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSED,
            ):
                pass
        assert ws.close_code == 1001
        await ws.close()
    await runner.cleanup()
