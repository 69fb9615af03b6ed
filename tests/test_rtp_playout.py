"""Playout-delay on the wire: a browser that offers the extension (Chromium does) gets it in the
answer and in every video packet, with min = max = 0 ("render each frame as soon as decoded");
one that does not offer it gets neither."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import aiohttp
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc import rtp as aiortc_rtp

from appliance.api.rtp_playout import PLAYOUT_DELAY_URI, PlayoutDelayMap, playout_delay_value
from tests.conftest import Server, start_server

OFFERED_ID = 12


def test_value_is_two_12_bit_fields_in_10_ms_units() -> None:
    assert playout_delay_value() == b"\x00\x00\x00"
    assert playout_delay_value(100, 200) == bytes([0x00, 0xA0, 0x14])
    assert playout_delay_value(40950, 40950) == b"\xff\xff\xff"
    with pytest.raises(ValueError, match="playout delay"):
        playout_delay_value(200, 100)
    with pytest.raises(ValueError, match="playout delay"):
        playout_delay_value(0, 50_000)


@pytest.mark.parametrize("mid", ["0", "a-mid-longer-than-16-bytes"])  # one- and two-byte forms
def test_map_appends_the_extension_to_what_aiortc_writes(mid: str) -> None:
    from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters

    ext = PlayoutDelayMap(playout_delay_value(0, 100))
    ext.configure(
        RTCRtpParameters(
            headerExtensions=[
                RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
                RTCRtpHeaderExtensionParameters(id=OFFERED_ID, uri=PLAYOUT_DELAY_URI),
            ]
        )
    )
    profile, data = ext.set(aiortc_rtp.HeaderExtensions(mid=mid))
    assert len(data) % 4 == 0
    parsed = dict(aiortc_rtp.unpack_header_extensions(profile, data))
    assert parsed == {1: mid.encode(), OFFERED_ID: bytes([0x00, 0x00, 0x0A])}
    bare = PlayoutDelayMap(playout_delay_value())
    assert bare.set(aiortc_rtp.HeaderExtensions(mid=mid))[1] == b""  # not negotiated: nothing


class Recorder:
    """Wraps a client transport's header-extension map: notes every (id, value) it parses."""

    def __init__(self, inner: aiortc_rtp.HeaderExtensionsMap) -> None:
        self.inner = inner
        self.seen: list[list[tuple[int, bytes]]] = []
        self.arrived = asyncio.Event()

    def configure(self, parameters: object) -> None:
        self.inner.configure(parameters)  # type: ignore[arg-type]

    def get(self, profile: int, value: bytes) -> aiortc_rtp.HeaderExtensions:
        self.seen.append(list(aiortc_rtp.unpack_header_extensions(profile, value)))
        if len(self.seen) >= 20:
            self.arrived.set()
        return self.inner.get(profile, value)

    def set(self, values: aiortc_rtp.HeaderExtensions) -> tuple[int, bytes]:
        return self.inner.set(values)


def with_extension(sdp: str, offered: bool) -> str:
    """The offer as a browser would send it: with or without the playout-delay extmap."""
    lines = [line for line in sdp.split("\r\n") if PLAYOUT_DELAY_URI not in line]
    if offered:
        at = next(i for i, line in enumerate(lines) if line.startswith("m=video"))
        at = next(i for i in range(at, len(lines)) if lines[i].startswith("a=extmap:"))
        lines.insert(at, f"a=extmap:{OFFERED_ID} {PLAYOUT_DELAY_URI}")
    return "\r\n".join(lines)


async def watch(srv: Server, offered: bool) -> tuple[str, list[list[tuple[int, bytes]]]]:
    pc = RTCPeerConnection()
    transceiver = pc.addTransceiver("video", direction="recvonly")
    try:
        await pc.setLocalDescription(await pc.createOffer())
        offer = with_extension(pc.localDescription.sdp, offered)
        async with aiohttp.ClientSession(headers=srv.basic()) as session:
            async with session.post(
                f"{srv.url}/api/webrtc/offer", json={"sdp": offer, "type": "offer"}
            ) as resp:
                assert resp.status == 200, await resp.text()
                answer = (await resp.json())["sdp"]
        transport = transceiver.receiver.transport
        recorder = Recorder(transport._rtp_header_extensions_map)
        transport._rtp_header_extensions_map = recorder  # type: ignore[assignment]
        await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        async with asyncio.timeout(20):
            await recorder.arrived.wait()
        return answer, recorder.seen
    finally:
        await pc.close()


@pytest.fixture
async def server(tmp_path: Path) -> object:
    srv, runner = await start_server(tmp_path, "")
    try:
        yield srv
    finally:
        await runner.cleanup()


async def test_offered_extension_is_answered_and_on_every_packet(server: Server) -> None:
    answer, packets = await watch(server, offered=True)
    extmaps = re.findall(r"a=extmap:(\d+) (\S+)", answer)
    assert (str(OFFERED_ID), PLAYOUT_DELAY_URI) in extmaps
    for extensions in packets:
        assert (OFFERED_ID, b"\x00\x00\x00") in extensions


async def test_not_offered_means_not_sent(server: Server) -> None:
    answer, packets = await watch(server, offered=False)
    assert PLAYOUT_DELAY_URI not in answer
    assert all(OFFERED_ID not in dict(extensions) for extensions in packets)
