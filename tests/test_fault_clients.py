"""Fault matrix, rows 7 and 8 (docs/reliability.md): clients that vanish mid-keypress (TCP reset,
no close frame) on the WebSocket, a REST key request and the WebRTC data channel; viewers that
never read (MJPEG). Keys must be released in bounded time, memory must stay bounded, and the
other viewers must not slow down.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import aioice.ice
import aioice.stun
import pytest

from appliance.api.webrtc import WEBRTC
from tests.conftest import Server, hid_until, start_server
from tests.faultkit import (
    Stopwatch,
    events_until,
    note,
    raw_request,
    raw_websocket,
    record,
    reset,
    ws_text_frame,
)
from tests.test_webrtc import connect, opened

STAMPED = "[demo]\nstamp = true\n"  # every frame differs: MJPEG sends every one


async def test_websocket_client_reset_mid_keypress_releases(server: Server) -> None:
    hid: Any = server.appliance.hid  # type: ignore[attr-defined]
    sock = await asyncio.to_thread(raw_websocket, server.url, server.password, "/api/ws")
    sock.sendall(ws_text_frame(json.dumps({"type": "key", "code": "ShiftLeft", "down": True})))
    await hid_until(hid, lambda: bool(hid.keyboard.held), "Shift to be held")
    clock = Stopwatch()
    reset(sock)
    await hid_until(hid, lambda: not hid.keyboard.held, "the vanished client's Shift released", 2)
    record("7 WebSocket reset: keys released", clock.elapsed)


async def test_rest_key_request_reset_mid_hold_cancels_and_releases(server: Server) -> None:
    """A waiting ``/api/hid/keys`` request owns its job: when its client vanishes the chords stop
    and the key it was holding is released."""
    appliance: Any = server.appliance
    hid = appliance.hid
    body = json.dumps({"keys": " ".join(["ShiftLeft+KeyA"] * 100)}).encode()
    sock = await asyncio.to_thread(
        raw_request, server.url, server.password, "POST /api/hid/keys HTTP/1.1", body
    )
    await hid_until(hid, lambda: bool(hid.keyboard.held), "a chord to be held")
    (job,) = appliance.jobs.running()
    clock = Stopwatch()
    reset(sock)
    await events_until(appliance, lambda: not job.running, "the job to be cancelled", 3)
    await hid_until(hid, lambda: not hid.keyboard.held, "the chord released", 2)
    record("7 REST /api/hid/keys reset: job cancelled, keys released", clock.elapsed)
    assert job.status == "cancelled" and job.completed < 100


@pytest.fixture
async def stamped(tmp_path: Path) -> AsyncIterator[Server]:
    srv, runner = await start_server(tmp_path, STAMPED)
    try:
        yield srv
    finally:
        await runner.cleanup()


async def test_webrtc_peer_vanishing_releases_after_consent_expires(
    stamped: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client's UDP sockets close without a word (no DTLS close, no SCTP abort): the server
    learns of it only when ICE consent (RFC 7675) expires — 6 unanswered checks ~5 s apart in
    production (aioice's constants). The test scales those constants down; the bound scales too."""
    monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", 0.1)
    monkeypatch.setattr(aioice.stun, "RETRY_RTO", 0.05)
    appliance: Any = stamped.appliance
    hid = appliance.hid
    viewer = await connect(stamped)
    try:
        async with asyncio.timeout(20):
            await opened(viewer.input)
        viewer.input.send(json.dumps({"type": "key", "code": "ShiftLeft", "down": True}))
        await hid_until(hid, lambda: bool(hid.keyboard.held), "Shift to be held")
        ice = viewer.pc.sctp.transport.transport  # type: ignore[union-attr]
        clock = Stopwatch()
        for protocol in ice._connection._protocols:  # the client's host candidates' sockets
            protocol.transport.close()
        await hid_until(hid, lambda: not hid.keyboard.held, "the vanished peer's Shift", 5)
        took = record("7 WebRTC peer vanished: keys released (scaled consent)", clock.elapsed)
        assert took < 6 * (0.12 + 0.05) + 1.0
        await events_until(appliance, lambda: not stamped.app[WEBRTC].peers, "peer dropped")
    finally:
        await viewer.close()


async def test_mjpeg_viewer_that_never_reads(tmp_path: Path) -> None:
    """A viewer that connects and stops reading: its handler waits in ``write`` (aiohttp's
    flow control), so what is buffered for it stays bounded by the socket buffers plus one
    frame, and the other viewers keep their frame rate."""
    srv, runner = await start_server(tmp_path, STAMPED)
    stalled = await asyncio.to_thread(
        raw_request, srv.url, srv.password, "GET /api/stream.mjpeg HTTP/1.1", rcvbuf=4096
    )
    try:
        port = stalled.getsockname()[1]
        assert runner.server is not None
        transport: Any = None
        async with asyncio.timeout(5):
            while transport is None:
                for handler in runner.server.connections:
                    t = handler.transport
                    if t is not None and t.get_extra_info("peername")[1] == port:
                        transport = t
                        break
                else:
                    await asyncio.sleep(0.01)  # the connection is being accepted
        transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)

        async with aiohttp.ClientSession(headers=srv.basic()) as session:
            async with session.get(f"{srv.url}/api/stream.mjpeg") as resp:
                parts = 0
                peak = 0
                clock = Stopwatch()
                async with asyncio.timeout(10):
                    while clock.elapsed < 2.0:
                        line = await resp.content.readline()
                        parts += line.startswith(b"--frame")
                        peak = max(peak, transport.get_write_buffer_size())
        fps = parts / clock.elapsed
        note("8 MJPEG stalled viewer: the other viewer's rate", fps, "frames/s")
        note("8 MJPEG stalled viewer: peak buffered for it", peak, "bytes")
        assert fps >= 10, f"the reading viewer got only {fps:.1f} frames/s"
        assert peak < 2 * 1024 * 1024, f"{peak} bytes buffered for a viewer that never reads"
    finally:
        reset(stalled)
        await runner.cleanup()
