"""WebRTC against the real app on 127.0.0.1 with real aiortc client peers: stamped video arrives and
decodes, peers share one encoder, a PLI brings a keyframe, input over the data channel reaches the
demo target, and a closed peer's keys are released."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiortc import (
    MediaStreamTrack,
    RTCDataChannel,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpTransceiver,
    RTCSessionDescription,
)

from appliance.api.webrtc import WEBRTC
from appliance.auth import AuthStore
from capture.stamp import decode_stamp, stamp_age_ms
from tests.conftest import Server, hid_until, start_server

STAMPED = "[demo]\nstamp = true\n"


@pytest.fixture
async def stamped(tmp_path: Path) -> AsyncIterator[Server]:
    srv, runner = await start_server(tmp_path, STAMPED)
    try:
        yield srv
    finally:
        await runner.cleanup()


@dataclass
class Viewer:
    """A browser-like client peer: receive-only video and the two input data channels."""

    pc: RTCPeerConnection
    transceiver: RTCRtpTransceiver
    input: RTCDataChannel
    pointer: RTCDataChannel
    track: asyncio.Future[MediaStreamTrack]
    replies: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    answer: str = ""

    async def frame_stamp(self) -> tuple[int, int]:
        track = await self.track
        for _ in range(60):
            frame = await track.recv()
            stamp = decode_stamp(frame.to_ndarray(format="bgr24"))  # type: ignore[union-attr]
            if stamp is not None:
                return stamp
        raise AssertionError("no readable frame stamp in 60 frames")

    async def close(self) -> None:
        await self.pc.close()


async def connect(
    srv: Server, codec: str | None = None, auth: dict[str, str] | None = None
) -> Viewer:
    pc = RTCPeerConnection()
    transceiver = pc.addTransceiver("video", direction="recvonly")
    if codec is not None:
        caps = RTCRtpReceiver.getCapabilities("video").codecs
        transceiver.setCodecPreferences(
            [c for c in caps if c.mimeType.lower() in (f"video/{codec.lower()}", "video/rtx")]
        )
    input_channel = pc.createDataChannel("input")
    pointer = pc.createDataChannel("pointer", ordered=False, maxRetransmits=0)
    track: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()
    pc.on("track", lambda t: track.done() or track.set_result(t))
    viewer = Viewer(pc, transceiver, input_channel, pointer, track)
    input_channel.on("message", lambda m: viewer.replies.put_nowait(json.loads(m)))
    await pc.setLocalDescription(await pc.createOffer())
    async with aiohttp.ClientSession(headers=auth or srv.basic()) as session:
        async with session.post(
            f"{srv.url}/api/webrtc/offer",
            json={"sdp": pc.localDescription.sdp, "type": "offer"},
        ) as resp:
            assert resp.status == 200, await resp.text()
            answer = await resp.json()
    assert answer["type"] == "answer"
    viewer.answer = answer["sdp"]
    await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
    return viewer


async def demo_until(srv: Server, condition: Callable[[dict[str, Any]], bool], what: str) -> None:
    """Wait until the demo machine's state satisfies *condition*, re-checking on each frame."""
    appliance: Any = srv.appliance
    seq = 0
    try:
        async with asyncio.timeout(5):
            while not condition(appliance.target.machine.state()):
                seq = (await appliance.hub.next_frame(seq)).seq
    except TimeoutError:
        pytest.fail(f"timed out waiting for {what}")


async def opened(channel: RTCDataChannel) -> None:
    if channel.readyState == "open":
        return
    ready = asyncio.Event()
    channel.on("open", ready.set)
    await ready.wait()


async def test_video_arrives_as_h264_with_a_fresh_stamp(stamped: Server) -> None:
    viewer = await connect(stamped)
    try:
        async with asyncio.timeout(20):
            counter, ms = await viewer.frame_stamp()
            later, _ = await viewer.frame_stamp()
        assert later > counter
        assert 0 <= stamp_age_ms(ms) < 1500
        assert "H264/90000" in viewer.answer and "VP8/90000" not in viewer.answer
        assert "packetization-mode=1" in viewer.answer
        assert [p.codec for p in stamped.app[WEBRTC].peers.values()] == ["H264"]
    finally:
        await viewer.close()


async def test_peers_share_one_encoder_and_pli_brings_a_keyframe(stamped: Server) -> None:
    encoder = stamped.appliance.h264
    a = await connect(stamped)
    b = await connect(stamped)
    try:
        async with asyncio.timeout(20):
            await a.frame_stamp()
            await b.frame_stamp()
            assert encoder.subscribers == 2
            assert encoder.stats.starts == 1 and encoder.stats.codec_opens == 1
            encoded = encoder.stats.frames_encoded
            got = 0
            for _ in range(30):
                await (await a.track).recv()
                got += 1
            # One encode per picture for both peers (each peer would double it).
            assert encoder.stats.frames_encoded - encoded <= got + 5
            keyframes = encoder.stats.keyframes
            receiver = a.transceiver.receiver
            (source,) = receiver.getSynchronizationSources()
            await receiver._send_rtcp_pli(source.source)
            while encoder.stats.keyframes == keyframes:  # the next frames, until the IDR
                await (await a.track).recv()
    finally:
        await a.close()
        await b.close()


async def test_input_channel_drives_the_demo_target_and_close_releases(stamped: Server) -> None:
    viewer = await connect(stamped)
    appliance: Any = stamped.appliance
    hid = appliance.hid
    try:
        async with asyncio.timeout(20):
            await opened(viewer.input)
            before = appliance.target.machine.state()["tab_index"]
            for down in (True, False):
                viewer.input.send(json.dumps({"type": "key", "code": "ArrowRight", "down": down}))
            await demo_until(stamped, lambda s: s["tab_index"] != before, "the tab to change")
            await opened(viewer.pointer)
            viewer.pointer.send(json.dumps({"type": "mouse", "x": 0.25, "y": 0.5}))
            await demo_until(
                stamped, lambda s: s["pointer"]["x"] == round(0.25 * 1279), "the pointer to move"
            )
            viewer.input.send(json.dumps({"type": "nonsense"}))
            reply = await viewer.replies.get()
            assert reply["type"] == "error" and reply["request"] == "nonsense"
            viewer.input.send(json.dumps({"type": "key", "code": "ShiftLeft", "down": True}))
            await hid_until(hid, lambda: bool(hid.keyboard.held), "Shift to be held")
    finally:
        await viewer.close()
    await hid_until(hid, lambda: not hid.keyboard.held, "the closed peer's Shift to be released")
    await demo_until(
        stamped, lambda _: not stamped.app[WEBRTC].peers, "the server to drop the peer"
    )


async def test_a_viewers_data_channel_input_is_refused(stamped: Server) -> None:
    """The data channel obeys the role of the offer's credentials, like /api/ws."""
    from appliance.api.auth import AUTH_STORE
    from tests.conftest import basic_header

    stamped.app[AUTH_STORE].add_user("vic", "vic-pass-12", "viewer")
    viewer = await connect(stamped, auth=basic_header("vic", "vic-pass-12"))
    hid: Any = stamped.appliance.hid  # type: ignore[attr-defined]
    try:
        async with asyncio.timeout(20):
            await opened(viewer.input)
            viewer.input.send(json.dumps({"type": "key", "code": "ShiftLeft", "down": True}))
            reply = await viewer.replies.get()
            assert reply["type"] == "error" and reply["forbidden"] is True
            assert reply["permission"] == "input" and "viewer" in reply["message"]
            viewer.input.send(json.dumps({"type": "ping", "t": 7}))
            assert (await viewer.replies.get())["type"] == "pong"
            assert not hid.keyboard.held  # the refused key was never pressed
    finally:
        await viewer.close()


async def test_vp8_only_browser_gets_vp8(stamped: Server) -> None:
    viewer = await connect(stamped, codec="VP8")
    try:
        async with asyncio.timeout(20):
            counter, _ = await viewer.frame_stamp()
        assert counter > 0
        assert "VP8/90000" in viewer.answer and "H264/90000" not in viewer.answer
        assert stamped.appliance.h264.stats.starts == 0  # no shared encode for a VP8 viewer
    finally:
        await viewer.close()


async def test_password_change_closes_a_peer_opened_with_the_old_password(
    stamped: Server,
) -> None:
    viewer = await connect(stamped)  # the offer was authenticated with Basic
    appliance: Any = stamped.appliance
    hid = appliance.hid
    try:
        async with asyncio.timeout(20):
            await opened(viewer.input)
            viewer.input.send(json.dumps({"type": "key", "code": "ShiftLeft", "down": True}))
            await hid_until(hid, lambda: bool(hid.keyboard.held), "Shift to be held")
            # What `ipkvm passwd` does, from another store instance (no in-process notice).
            store = AuthStore(stamped.state_dir)
            await asyncio.to_thread(store.set_password, "another-password")
            await demo_until(
                stamped, lambda _: not stamped.app[WEBRTC].peers, "the server to drop the peer"
            )
        await hid_until(hid, lambda: not hid.keyboard.held, "the revoked peer's Shift released")
    finally:
        await viewer.close()


async def test_bad_offer_is_a_400(stamped: Server) -> None:
    async with aiohttp.ClientSession(headers=stamped.basic()) as session:
        async with session.post(
            f"{stamped.url}/api/webrtc/offer", json={"sdp": "hello", "type": "offer"}
        ) as resp:
            assert resp.status == 400
        async with session.post(f"{stamped.url}/api/webrtc/offer", json={"type": "x"}) as resp:
            assert resp.status == 400
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{stamped.url}/api/webrtc/offer", json={"sdp": "v=0", "type": "offer"}
        ) as resp:
            assert resp.status == 401


LAZY_PROBE = """
import asyncio, sys, tempfile, pathlib
import aiohttp
from tests.conftest import start_server

async def main():
    with tempfile.TemporaryDirectory() as tmp:
        srv, runner = await start_server(pathlib.Path(tmp))
        try:
            async with aiohttp.ClientSession(headers=srv.basic()) as s:
                async with s.get(srv.url + "/api/health") as r:
                    assert r.status == 200
                async with s.post(srv.url + "/api/webrtc/offer", json={"sdp": "x"}) as r:
                    assert r.status == 400
            print("aiortc" in sys.modules)
        finally:
            await runner.cleanup()

asyncio.run(main())
"""


def test_aiortc_is_not_loaded_until_an_offer_needs_it() -> None:
    """A running appliance with no WebRTC viewer has not imported aiortc (18 MiB, 0.2 s)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", LAZY_PROBE], cwd=root, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


async def raw_offer(
    session: aiohttp.ClientSession, srv: Server, sdp: str
) -> aiohttp.ClientResponse:
    async with session.post(f"{srv.url}/api/webrtc/offer", json={"sdp": sdp, "type": "offer"}) as r:
        await r.read()
        return r


async def test_unconnected_peers_are_reaped_and_broken_offers_take_no_slot(tmp_path: Path) -> None:
    """Offers whose answers are never applied hold their slots only for connect_timeout (set to
    1 s here); an offer without media is a 400 and takes no slot, even when all are taken."""
    srv, runner = await start_server(
        tmp_path, STAMPED + "[webrtc]\nmax_peers = 2\nconnect_timeout = 1\n"
    )
    clients: list[RTCPeerConnection] = []
    try:
        async with aiohttp.ClientSession(headers=srv.basic()) as session:
            for _ in range(2):
                pc = RTCPeerConnection()
                clients.append(pc)
                pc.addTransceiver("video", direction="recvonly")
                pc.createDataChannel("input")
                await pc.setLocalDescription(await pc.createOffer())
                resp = await raw_offer(session, srv, pc.localDescription.sdp)
                assert resp.status == 200  # ...and the answer is never applied
            peers = srv.app[WEBRTC].peers
            assert len(peers) == 2
            assert (await raw_offer(session, srv, clients[0].localDescription.sdp)).status == 503
            async with session.post(
                f"{srv.url}/api/webrtc/offer", json={"sdp": "v=0\r\nx", "type": "offer"}
            ) as resp:
                assert resp.status == 400
                assert "no media section" in (await resp.json())["error"]
            assert len(peers) == 2
            async with asyncio.timeout(10):
                await asyncio.gather(*(p.closed.wait() for p in list(peers.values())))
            assert not srv.app[WEBRTC].peers
        viewer = await connect(srv)  # a slot is free again, and a real viewer keeps it
        try:
            async with asyncio.timeout(20):
                await viewer.frame_stamp()
            (peer,) = srv.app[WEBRTC].peers.values()
            assert peer.reaper is None and not peer.closed.is_set()
        finally:
            await viewer.close()
    finally:
        for pc in clients:
            await pc.close()
        await runner.cleanup()
