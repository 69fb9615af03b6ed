"""WebRTC viewers: video from the shared encoder, input over data channels. The route
(``POST /api/webrtc/offer``) is in :mod:`appliance.api.webrtc`, which imports this module (and
with it aiortc) only when the first viewer makes an offer.

Why pre-encoded packets: aiortc encodes per RTCRtpSender, so ten peers would cost ten x264
encodes. When a track's ``recv()`` returns an ``av.Packet`` instead of a frame, aiortc's H.264
codec only packetizes it (``H264Encoder.pack``). Each peer's track therefore subscribes to the
appliance's one :class:`~capture.h264.H264Encoder` and wraps its access units in packets: ten
viewers, one encode. A PLI/FIR from any peer lands in ``RTCRtpSender._send_keyframe``, which
would only flag aiortc's own (unused) encoder; we replace it on each sender so it asks the shared
encoder for an IDR instead.

A browser that offers no H.264 gets VP8 from aiortc's own per-peer encoder (a fallback: it costs
one encode per such viewer).

Input: data channel ``input`` (ordered, reliable) carries the same JSON messages as ``/api/ws``
(key, button, wheel, release_all, mouse…); ``pointer`` (unordered, no retransmits) carries
absolute moves, where a late move is worthless. Each peer is one HID client: its keys and buttons
are released when a channel closes, the connection fails or closes, or the app shuts down.

Slots: each offer takes one of ``max_peers`` slots at once (the answer is sent before ICE starts),
so a peer that never connects would hold its slot for good: an offer whose answer is never
applied, a browser tab closed mid-handshake, ICE that cannot get through a NAT. Every peer
therefore has a reaper: it must reach "connected" within ``connect_timeout`` seconds of its
offer, and one that drops to "disconnected" must come back within the same time, or it is
closed. "failed" and "closed" free the slot at once. An offer without a media section is refused
before it takes a slot: nothing could ever connect over it.
A peer is closed when the credentials of the offer that created it are revoked
(:mod:`appliance.api.connections`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av
import cv2
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)

from appliance.api.httpjson import fail
from appliance.api.ice import IceServer
from appliance.api.rtp_playout import send_playout_delay
from appliance.api.ws import Check, handle_text

__all__ = ["BadOffer", "Peer", "WebRtcPeers", "check_offer"]
from appliance.api.connections import Connection, ConnectionRegistry
from appliance.auth import Credential
from appliance.runtime import Appliance
from capture.frame import Image
from capture.h264 import TIME_BASE, H264Encoder, Subscription
from capture.hub import FrameHub
from capture.pacing import FramePacer

log = logging.getLogger(__name__)

PREFERRED_PROFILE = "42e01f"  # constrained baseline, level 3.1: what every browser decodes


class SharedH264Track(MediaStreamTrack):
    """A peer's video track: access units of the shared encoder, as ``av.Packet``s."""

    kind = "video"

    def __init__(self, encoder: H264Encoder) -> None:
        super().__init__()
        self.encoder = encoder
        self._sub: Subscription = encoder.subscribe(maxsize=8)

    async def recv(self) -> Any:  # an av.Packet
        try:
            frame = await self._sub.get()
        except EOFError:
            from aiortc.mediastreams import MediaStreamError

            raise MediaStreamError from None
        packet = av.Packet(frame.data)
        packet.pts = frame.pts
        packet.time_base = TIME_BASE
        return packet

    def stop(self) -> None:
        self._sub.close()
        super().stop()


class HubVideoTrack(MediaStreamTrack):
    """VP8 fallback: raw frames from the hub for aiortc's per-peer encoder (latest frame wins)."""

    kind = "video"

    def __init__(self, hub: FrameHub, max_fps: float = 30.0, keepalive: float = 1.0) -> None:
        super().__init__()
        self.hub = hub
        self.pacer = FramePacer(max_fps)  # no wait for a source at the cap
        self.keepalive = keepalive
        self._seq = 0
        self._t0: float | None = None

    async def recv(self) -> Any:  # an av.VideoFrame
        rest = self.pacer.delay()
        if rest > 0:
            await asyncio.sleep(rest)
        try:
            async with asyncio.timeout(self.keepalive):
                frame = await self.hub.next_frame(self._seq, changed_only=True)
        except TimeoutError:
            frame = self.hub.latest or await self.hub.next_frame(0)
        self._seq = frame.seq
        now = time.monotonic()
        self.pacer.take(now)
        if self._t0 is None:
            self._t0 = now
        image = frame.image[: frame.height & ~1, : frame.width & ~1]
        yuv = await asyncio.get_running_loop().run_in_executor(None, _to_i420, image)
        vf = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        vf.pts = round((now - self._t0) * 90_000)
        vf.time_base = Fraction(1, 90_000)
        return vf


def _to_i420(image: Image) -> Image:
    return cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420)  # type: ignore[return-value]


@dataclass
class Peer:
    pc: RTCPeerConnection
    client: str
    codec: str
    channels: list[RTCDataChannel] = field(default_factory=list)
    reaper: asyncio.TimerHandle | None = None
    """Closes the peer unless it (re)connects in time; None while it is connected."""
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    """Set first thing on close: data-channel messages still in flight are then ignored, and
    tests await it (the slot is free once the peer has left :attr:`WebRtcPeers.peers`)."""
    connection: Connection | None = None
    check: Check | None = None
    """The data channels' per-message rights check (``appliance.api.rights``)."""


class BadOffer(ValueError):
    """An offer that could never connect: refused with a 400 before it takes a slot."""


def check_offer(sdp: str) -> None:
    """Refuse an offer aiortc would accept but no peer could ever connect over.

    aiortc parses leniently: ``v=0\\r\\nx`` is a valid session with no media, answered with an
    empty answer, and the peer then waits for ICE that never starts. At least one media section
    (audio/video, or the data channel's ``application``) is needed; missing ICE credentials or
    DTLS fingerprints are reported by aiortc's own setRemoteDescription.
    """
    from aiortc.sdp import SessionDescription

    try:
        parsed = SessionDescription.parse(sdp)
    except Exception as exc:  # aiortc raises whatever its line parsers hit
        raise BadOffer(f"unreadable SDP: {exc}") from None
    if not parsed.media:
        raise BadOffer("the offer has no media section (m=video or m=application)")


class WebRtcPeers:
    """Every WebRTC viewer of the appliance; closes them all on shutdown."""

    def __init__(
        self,
        appliance: Appliance,
        encoder: H264Encoder,
        ice_servers: Sequence[IceServer] = (),
        max_peers: int = 16,
        connect_timeout: float = 20.0,
        connections: ConnectionRegistry | None = None,
    ) -> None:
        self.appliance = appliance
        self.encoder = encoder
        self.ice_servers = tuple(ice_servers)
        self.max_peers = max_peers
        self.connect_timeout = connect_timeout
        self.connections = connections
        self.peers: dict[str, Peer] = {}
        self._reaping: set[asyncio.Task[None]] = set()

    def _configuration(self) -> RTCConfiguration:
        return RTCConfiguration(
            iceServers=[
                RTCIceServer(urls=s.urls, username=s.username, credential=s.credential)
                for s in self.ice_servers
            ]
        )

    async def answer(
        self, sdp: str, credential: Credential | None = None, check: Check | None = None
    ) -> RTCSessionDescription:
        """Accept a browser's offer; returns the answer with all our ICE candidates in it.

        ``credential`` authenticated the offer: the peer is closed when it is revoked.
        """
        check_offer(sdp)  # before the capacity check: a broken offer is a 400, never a 503
        if len(self.peers) >= self.max_peers:
            fail(503, f"too many WebRTC viewers (at most {self.max_peers})")
        client = self.appliance.new_client("rtc")
        pc = RTCPeerConnection(self._configuration())
        peer = Peer(pc, client, codec="", check=check)
        self.peers[client] = peer
        self._arm_reaper(peer, "did not connect")
        if self.connections is not None:
            peer.connection = self.connections.register(
                credential, client, lambda: self.close_peer(client)
            )

        @pc.on("datachannel")
        def on_datachannel(channel: RTCDataChannel) -> None:
            self._attach_channel(peer, channel)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            state = pc.connectionState
            log.info("WebRTC %s: %s", client, state)
            if state == "connected":
                self._disarm_reaper(peer)
            elif state == "disconnected":
                self._arm_reaper(peer, "stayed disconnected")
            if state in ("disconnected", "failed", "closed"):
                self.appliance.hid.release_client(client)
            if state in ("failed", "closed"):
                await self.close_peer(client)

        try:
            # The transceiver exists before the offer is applied, so that aiortc negotiates
            # with our codec preferences (it fixes the codecs in setRemoteDescription).
            video = _video_codecs(sdp)
            if video is not None:
                track: MediaStreamTrack
                if "h264" in video:
                    track = SharedH264Track(self.encoder)
                    peer.codec = "H264"
                else:
                    track = HubVideoTrack(self.appliance.hub, self.encoder.settings.max_fps)
                    peer.codec = "VP8"
                transceiver = pc.addTransceiver(track, direction="sendonly")
                if peer.codec == "H264":
                    transceiver.setCodecPreferences(self._h264_codecs())
                self._hook_keyframes(transceiver.sender, peer)
                send_playout_delay(transceiver.sender)  # render at once, no smoothing delay
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            answer = await pc.createAnswer()
            await pc.setLocalDescription(answer)
        except Exception:
            await self.close_peer(client)
            raise
        local = pc.localDescription
        return local

    @staticmethod
    def _h264_codecs() -> list[Any]:
        """Our H.264 (packetization-mode 1, constrained baseline first) and its RTX."""
        codecs = RTCRtpSender.getCapabilities("video").codecs
        h264 = [c for c in codecs if c.mimeType.lower() == "video/h264"]
        h264.sort(key=lambda c: c.parameters.get("profile-level-id") != PREFERRED_PROFILE)
        rtx = [c for c in codecs if c.mimeType.lower() == "video/rtx"]
        return h264 + rtx

    def _hook_keyframes(self, sender: RTCRtpSender, peer: Peer) -> None:
        """Route this peer's PLI/FIR to the shared encoder (H.264) or aiortc's own (VP8)."""
        if peer.codec != "H264":
            return
        encoder = self.encoder

        def send_keyframe() -> None:
            encoder.request_keyframe()

        sender._send_keyframe = send_keyframe  # type: ignore[method-assign]

    def _attach_channel(self, peer: Peer, channel: RTCDataChannel) -> None:
        if channel.label not in ("input", "pointer"):
            log.info("WebRTC %s: ignoring data channel %r", peer.client, channel.label)
            return
        peer.channels.append(channel)
        appliance = self.appliance

        @channel.on("message")
        def on_message(message: str | bytes) -> None:
            if peer.closed.is_set():
                return
            reply: dict[str, Any] | None
            if isinstance(message, bytes):
                reply = {
                    "type": "error",
                    "message": "binary messages are not accepted",
                    "request": None,
                }
            else:
                # never raises on bad input; a refused right is an error event
                reply = handle_text(appliance, peer.client, message, peer.check)
            if reply is not None and channel.readyState == "open":
                channel.send(json.dumps(reply))

        @channel.on("close")
        def on_close() -> None:
            appliance.hid.release_client(peer.client)

    def _arm_reaper(self, peer: Peer, why: str) -> None:
        """Close *peer* unless it reaches "connected" within ``connect_timeout`` seconds."""
        self._disarm_reaper(peer)
        loop = asyncio.get_running_loop()
        peer.reaper = loop.call_later(self.connect_timeout, self._reap, peer.client, why)

    @staticmethod
    def _disarm_reaper(peer: Peer) -> None:
        if peer.reaper is not None:
            peer.reaper.cancel()
            peer.reaper = None

    def _reap(self, client: str, why: str) -> None:
        peer = self.peers.get(client)
        if peer is None:
            return
        peer.reaper = None
        log.info("WebRTC %s: %s within %g s, closing it", client, why, self.connect_timeout)
        task = asyncio.get_running_loop().create_task(self.close_peer(client))
        self._reaping.add(task)  # a reference until done: the loop keeps only weak ones
        task.add_done_callback(self._reaping.discard)

    async def close_peer(self, client: str) -> None:
        peer = self.peers.pop(client, None)
        if peer is None:
            return
        self._disarm_reaper(peer)
        peer.closed.set()
        if self.connections is not None and peer.connection is not None:
            self.connections.unregister(peer.connection)
        self.appliance.hid.release_client(client)
        with contextlib.suppress(Exception):
            await peer.pc.close()

    async def close(self) -> None:
        await asyncio.gather(*(self.close_peer(c) for c in list(self.peers)))
        await asyncio.gather(*self._reaping, return_exceptions=True)


def _video_codecs(sdp: str) -> set[str] | None:
    """Video codecs of the offer ("h264" only with packetization-mode 1); None: no video."""
    in_video = False
    seen_video = False
    names: dict[str, str] = {}
    mode1: set[str] = set()
    for line in sdp.splitlines():
        if line.startswith("m="):
            in_video = line.startswith("m=video")
            seen_video = seen_video or in_video
        elif in_video and line.startswith("a=rtpmap:"):
            pt, _, rest = line[len("a=rtpmap:") :].partition(" ")
            names[pt] = rest.split("/")[0].lower()
        elif in_video and line.startswith("a=fmtp:") and "packetization-mode=1" in line:
            mode1.add(line[len("a=fmtp:") :].split()[0])
    if not seen_video:
        return None
    return {n for pt, n in names.items() if n != "h264" or pt in mode1}
