"""Hundreds of connect/disconnect cycles on every transport leave no task, socket or key behind.

Not timed: the counts are what matters. A warm-up round opens each kind of connection once (the
H.264 encoder, aiortc, the JPEG encoder's pool and the thread pool start lazily), then the
baseline is taken: open file descriptors of this process (the server runs in-process, so its
sockets are here, and so are the clients': every client session is closed before measuring) and
``len(asyncio.all_tasks())``. After the cycles both must come back to the baseline (fds within a
small fixed slack for pools that grow on demand), and no key may be held.

A handler that forgets a task (a sender never cancelled) or a socket fails this test: checked by
introducing each leak on purpose while writing it.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from tests.conftest import Server, start_server

BINARY = aiohttp.WSMsgType.BINARY
CONFIG = "[webrtc]\nconnect_timeout = 1\n"
"""Offers whose peer never connects free their slot after 1 s instead of 20."""
FD_SLACK = 4
"""Descriptors allowed above the baseline: the default executor may add a thread (no fd), aiortc
and the JPEG encoder keep pools; more than this is a leak."""

WS_CYCLES = 200
WS_VANISH_CYCLES = 100
MJPEG_CYCLES = 100
H264_CYCLES = 100
WEBRTC_CONNECTED = 8
WEBRTC_ABANDONED = 8
LOGIN_CYCLES = 100
REST_CYCLES = 200


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
async def srv(tmp_path: Path) -> AsyncIterator[Server]:
    server, runner = await start_server(tmp_path, CONFIG)
    try:
        yield server
    finally:
        await runner.cleanup()


def session(srv: Server) -> aiohttp.ClientSession:
    """A client that keeps no idle connection: its sockets are gone when a request is."""
    return aiohttp.ClientSession(
        base_url=srv.url,
        headers=srv.basic(),
        connector=aiohttp.TCPConnector(force_close=True),
    )


async def ws_cycles(srv: Server, n: int, vanish: int) -> None:
    async with session(srv) as s:
        for i in range(n):
            async with s.ws_connect("/api/ws") as ws:
                msg = await ws.receive_json(timeout=5)  # the state on connect
                assert msg["type"] == "state"
                if i % 2:
                    await ws.send_json({"type": "ping", "t": i})
                    while (await ws.receive_json(timeout=5))["type"] != "pong":
                        pass
    for _ in range(vanish):
        # A client that presses a key and vanishes: no close frame, the TCP connection dropped.
        async with session(srv) as s:
            ws = await s.ws_connect("/api/ws")
            await ws.send_json({"type": "key", "code": "KeyQ", "down": True})
            await ws.receive_json(timeout=5)
            transport = ws._response.connection.transport  # type: ignore[union-attr]
            assert transport is not None
            transport.abort()


async def mjpeg_cycles(srv: Server, n: int) -> None:
    async with session(srv) as s:
        for _ in range(n):
            async with s.get("/api/stream.mjpeg") as resp:
                assert resp.status == 200
                await resp.content.readuntil(b"\r\n\r\n")  # the first part's headers


async def h264_cycles(srv: Server, n: int) -> None:
    async with session(srv) as s:
        for i in range(n):
            async with s.ws_connect("/api/stream.h264") as ws:
                # Every tenth viewer waits for video (up to a keyframe, ~0.2 s); the others
                # leave at once, some while the encoder is still starting for them.
                while i % 10 == 0 and (await ws.receive(timeout=10)).type is not BINARY:
                    pass


async def offer(srv: Server, s: aiohttp.ClientSession) -> RTCPeerConnection:
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    pc.createDataChannel("input")
    await pc.setLocalDescription(await pc.createOffer())
    async with s.post(
        "/api/webrtc/offer", json={"sdp": pc.localDescription.sdp, "type": "offer"}
    ) as resp:
        assert resp.status == 200, await resp.text()
        answer = await resp.json()
    await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
    return pc


async def webrtc_cycles(srv: Server, connected: int, abandoned: int) -> None:
    from appliance.api.webrtc import WEBRTC

    async with session(srv) as s:
        for _ in range(connected):
            pc = await offer(srv, s)
            connected = asyncio.Event()

            def on_state(pc: RTCPeerConnection = pc, connected: asyncio.Event = connected) -> None:
                if pc.connectionState == "connected":
                    connected.set()

            pc.on("connectionstatechange", on_state)
            try:
                if pc.connectionState != "connected":
                    async with asyncio.timeout(20):
                        await connected.wait()
            finally:
                await pc.close()
        for _ in range(abandoned):
            # The client goes away before ICE completes: the server's reaper must free the peer.
            pc = await offer(srv, s)
            await pc.close()
    async with asyncio.timeout(10):
        for peer in list(srv.app[WEBRTC].peers.values()):  # reaped after connect_timeout
            await peer.closed.wait()


async def login_cycles(srv: Server, n: int) -> None:
    for _ in range(n):
        s = await srv.login()
        async with s:
            async with s.get("/api/auth/me") as resp:
                assert resp.status == 200
            async with s.ws_connect("/api/ws") as ws:
                await ws.receive_json(timeout=5)
                async with s.post("/api/auth/logout") as resp:
                    assert resp.status == 200
                # The socket opened with the session is closed when the session ends (after
                # whatever events were already on their way: hello, presence).
                msg = await ws.receive(timeout=5)
                while msg.type is aiohttp.WSMsgType.TEXT:
                    msg = await ws.receive(timeout=5)
                assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), msg


async def rest_cycles(srv: Server, n: int) -> None:
    async with session(srv) as s:
        for i in range(n):
            path = ("/api/state", "/api/health", "/api/snapshot", "/api/jobs")[i % 4]
            async with s.get(path) as resp:
                assert resp.status == 200, path
                await resp.read()
            body = {"code": "KeyW", "down": i % 2 == 0}
            async with s.post("/api/hid/key", json=body) as resp:
                assert resp.status == 200
        async with s.post("/api/hid/key", json={"code": "KeyW", "down": False}) as resp:
            assert resp.status == 200
        async with s.post("/api/hid/type", json={"text": "ok", "pacing_ms": 0}) as resp:
            assert resp.status == 200


async def everything(srv: Server, scale: float) -> None:
    def k(n: int) -> int:
        return max(1, round(n * scale))

    phases = {
        "ws": ws_cycles(srv, k(WS_CYCLES), k(WS_VANISH_CYCLES)),
        "mjpeg": mjpeg_cycles(srv, k(MJPEG_CYCLES)),
        "h264": h264_cycles(srv, k(H264_CYCLES)),
        "webrtc": webrtc_cycles(srv, k(WEBRTC_CONNECTED), k(WEBRTC_ABANDONED)),
        "login": login_cycles(srv, k(LOGIN_CYCLES)),
        "rest": rest_cycles(srv, k(REST_CYCLES)),
    }
    for name, phase in phases.items():
        t0 = time.monotonic()
        await phase
        print(f"{name}: {time.monotonic() - t0:.2f} s")


async def settled(srv: Server, tasks: int, fds: int, timeout: float = 10.0) -> tuple[int, int]:
    """The counts once they are back at (or below) the baseline, or after *timeout*."""
    appliance: Any = srv.appliance
    deadline = time.monotonic() + timeout
    while True:
        now = (len(asyncio.all_tasks()), open_fds())
        back = now[0] <= tasks and now[1] <= fds and appliance.clients == 0
        if back or time.monotonic() > deadline:
            return now
        await asyncio.sleep(0.1)


async def test_connect_disconnect_cycles_leave_nothing_behind(srv: Server) -> None:
    appliance: Any = srv.appliance
    # A task left pending but unreferenced (a sender waiting on a queue only it can reach) is
    # not in all_tasks() once collected: asyncio reports it as "Task was destroyed but it is
    # pending!" through the loop's exception handler, so that counts as a leak too.
    loop = asyncio.get_running_loop()
    reports: list[str] = []
    loop.set_exception_handler(lambda _loop, context: reports.append(context["message"]))
    await everything(srv, scale=0.05)  # warm-up: every lazily started part is running now
    base_tasks, base_fds = await settled(srv, 0, 0, timeout=3.0)
    t0 = time.monotonic()
    await everything(srv, scale=1.0)
    tasks, fds = await settled(srv, base_tasks, base_fds + FD_SLACK)
    elapsed = time.monotonic() - t0
    gc.collect()
    await asyncio.sleep(0)
    loop.set_exception_handler(None)
    assert not [r for r in reports if "destroyed but it is pending" in r], reports
    leftovers = sorted(t.get_name() for t in asyncio.all_tasks())
    assert tasks <= base_tasks, (tasks, base_tasks, leftovers)
    assert fds <= base_fds + FD_SLACK, (fds, base_fds)
    assert appliance.clients == 0
    assert not appliance.hid.keyboard.held
    assert not appliance.hid.mouse.buttons
    print(json.dumps({"seconds": round(elapsed, 1), "tasks": tasks, "fds": fds}))
