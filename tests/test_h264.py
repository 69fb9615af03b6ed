"""The shared H.264 encoder: what comes out decodes to the picture that went in, keyframes come
when asked, a static screen is not re-encoded, slow subscribers skip to the next keyframe."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import av
import cv2
import numpy as np
import pytest

from appliance.targets.demo.machine import DemoMachine
from appliance.targets.demo.video import DemoSource
from capture.frame import Image
from capture.h264 import EncodedFrame, EncoderSettings, H264Encoder, Subscription, sps_info
from capture.hub import FrameHub
from capture.stamp import decode_stamp


class Decoder:
    """A real H.264 decoder, as a viewer would use."""

    def __init__(self) -> None:
        self.ctx = av.CodecContext.create("h264", "r")

    def decode(self, data: bytes) -> list[Image]:
        # One access unit per packet, as a WebCodecs or RTP viewer gets them (a parser would
        # hold each one back until the next start code arrives).
        return [f.to_ndarray(format="bgr24") for f in self.ctx.decode(av.Packet(data))]


async def next_frame(sub: Subscription, timeout: float = 5.0) -> EncodedFrame:
    async with asyncio.timeout(timeout):
        return await sub.get()


@pytest.fixture
async def stamped() -> AsyncIterator[tuple[FrameHub, DemoMachine]]:
    """A hub fed by the demo target at 30 fps, every frame stamped (so every frame changes)."""
    hub = FrameHub()
    machine = DemoMachine(1280, 720, stamp=True)
    source = DemoSource(machine, fps=30)
    await source.start(hub)
    try:
        yield hub, machine
    finally:
        await source.close()


async def test_stream_decodes_to_the_source_picture(stamped: tuple[FrameHub, DemoMachine]) -> None:
    hub, _ = stamped
    enc = H264Encoder(hub, EncoderSettings(bitrate=8000))
    sub = enc.subscribe()
    decoder = Decoder()
    first = await next_frame(sub)
    assert first.keyframe
    assert first.data.startswith((b"\x00\x00\x00\x01", b"\x00\x00\x01"))
    info = sps_info(first.data)
    assert info is not None and info.profile_idc == 66  # baseline: what every browser decodes
    assert info.codec_string.startswith("avc1.42")
    pictures = decoder.decode(first.data)
    counters = []
    for _ in range(10):
        encoded = await next_frame(sub)
        assert not encoded.keyframe
        assert encoded.seq > first.seq
        pictures += decoder.decode(encoded.data)
        source = hub.latest
        assert source is not None
    await sub_close(enc, sub)
    assert len(pictures) >= 10
    for picture in pictures:
        assert picture.shape == (720, 1280, 3)
        stamp = decode_stamp(picture)
        assert stamp is not None, "frame stamp unreadable after H.264"
        counters.append(stamp[0])
    assert counters == sorted(counters) and len(set(counters)) >= 8
    # The last picture against the source frame it came from (same stamp counter).
    machine_picture = hub.latest
    assert machine_picture is not None
    diff = cv2.absdiff(pictures[-1][64:], machine_picture.image[64:])  # below the stamp strip
    assert float(diff.mean()) < 4.0
    mse = float(np.mean(diff.astype(np.float32) ** 2))
    psnr = 10 * np.log10(255**2 / max(mse, 1e-6))
    assert psnr > 30


async def sub_close(enc: H264Encoder, sub: Subscription) -> None:
    sub.close()
    await enc.close()


async def test_keyframe_on_request(stamped: tuple[FrameHub, DemoMachine]) -> None:
    hub, _ = stamped
    enc = H264Encoder(hub, EncoderSettings(min_keyframe_interval=0.0))
    sub = enc.subscribe()
    assert (await next_frame(sub)).keyframe
    for _ in range(3):
        assert not (await next_frame(sub)).keyframe
    enc.request_keyframe()
    got = await next_frame(sub)
    if not got.keyframe:  # the request can land while a frame is already being encoded
        got = await next_frame(sub)
    assert got.keyframe
    assert sps_info(got.data) is not None  # SPS/PPS repeated in front of every IDR
    assert enc.stats.keyframes == 2
    await sub_close(enc, sub)


async def test_static_screen_is_not_reencoded_except_keepalive() -> None:
    hub = FrameHub()
    machine = DemoMachine(1280, 720, stamp=False)
    source = DemoSource(machine, fps=30)  # publishes the same picture 30 times a second
    await source.start(hub)
    settings = EncoderSettings(keepalive=0.4, refine_frames=2)
    enc = H264Encoder(hub, settings)
    sub = enc.subscribe()
    try:
        first = await next_frame(sub)
        assert first.keyframe
        await next_frame(sub)  # two refinement frames right after the picture appeared
        refined = await next_frame(sub)
        start = time.monotonic()
        keepalive = await next_frame(sub)
        gap = time.monotonic() - start
        published_before = hub.latest.seq if hub.latest else 0
        await next_frame(sub)
        published = (hub.latest.seq if hub.latest else 0) - published_before
    finally:
        sub.close()
        await enc.close()
        await source.close()
    assert gap >= 0.3, f"an unchanged picture was re-encoded after {gap:.3f}s"
    assert keepalive.seq > refined.seq and not keepalive.keyframe
    assert enc.stats.frames_encoded == 5
    assert enc.stats.keepalives == 2
    assert published >= 6, "the source kept publishing meanwhile"


async def test_a_change_is_encoded_at_once() -> None:
    hub = FrameHub()
    image = np.full((720, 1280, 3), 40, np.uint8)
    hub.publish(image)
    enc = H264Encoder(hub, EncoderSettings(keepalive=30, refine_frames=0))
    sub = enc.subscribe()
    decoder = Decoder()
    decoder.decode((await next_frame(sub)).data)
    changed = image.copy()
    cv2.rectangle(changed, (100, 100), (300, 200), (255, 255, 255), -1)
    hub.publish(changed)
    start = time.monotonic()
    encoded = await next_frame(sub, timeout=2.0)
    assert time.monotonic() - start < 1.0
    (picture,) = decoder.decode(encoded.data)
    assert picture[150, 200].min() > 200 and picture[400, 600].max() < 80
    await sub_close(enc, sub)


async def test_subscribers_share_one_encode(stamped: tuple[FrameHub, DemoMachine]) -> None:
    hub, _ = stamped
    enc = H264Encoder(hub)
    a, b = enc.subscribe(), enc.subscribe()
    fa = [await next_frame(a) for _ in range(6)]
    fb = [await next_frame(b) for _ in range(6)]
    assert fa[0].keyframe and fb[0].keyframe
    assert [f.seq for f in fa] == [f.seq for f in fb]
    assert all(x is y for x, y in zip(fa, fb, strict=True))  # the very same access units
    assert enc.stats.starts == 1 and enc.stats.codec_opens == 1
    assert enc.stats.frames_encoded <= 8
    a.close()
    assert enc.running
    b.close()
    assert not enc.running  # lazy: nobody watching, nothing encoded
    await enc.close()


async def test_slow_subscriber_skips_to_a_keyframe(stamped: tuple[FrameHub, DemoMachine]) -> None:
    hub, _ = stamped
    enc = H264Encoder(hub, EncoderSettings(min_keyframe_interval=0.0))
    slow = enc.subscribe(maxsize=3)
    fast = enc.subscribe(maxsize=3)
    received = [await next_frame(fast) for _ in range(12)]  # slow reads nothing meanwhile
    keyframes_while_stalled = enc.stats.keyframes
    assert slow.dropped > 0
    assert keyframes_while_stalled == 1, "a stalled reader must not force keyframes"
    assert sum(f.keyframe for f in received) == 1
    got = await next_frame(slow)  # reading again: it asks for a keyframe and gets one first
    assert got.keyframe
    assert enc.stats.keyframes == 2
    slow.close()
    fast.close()
    await enc.close()


async def test_resolution_change_reopens_with_a_keyframe() -> None:
    hub = FrameHub()
    hub.publish(np.zeros((720, 1280, 3), np.uint8))
    enc = H264Encoder(hub, EncoderSettings(keepalive=30, refine_frames=0))
    sub = enc.subscribe()
    first = await next_frame(sub)
    assert (first.width, first.height) == (1280, 720)
    hub.publish(np.full((1080, 1920, 3), 128, np.uint8))
    second = await next_frame(sub)
    assert second.keyframe and (second.width, second.height) == (1920, 1080)
    (picture,) = Decoder().decode(second.data)
    assert picture.shape == (1080, 1920, 3)
    await sub_close(enc, sub)


@pytest.mark.parametrize(
    ("width", "height"),
    [(1366, 768), (802, 602), (801, 601)],  # odd chroma width; height % 4 == 2; odd (cropped)
)
async def test_unusual_sizes_decode_to_the_picture(width: int, height: int) -> None:
    hub = FrameHub()
    # Red and blue bands 16 rows high: chroma planes misplaced by even a few rows show at once.
    image = np.zeros((height, width, 3), np.uint8)
    for y in range(0, height, 32):
        image[y : y + 16] = (0, 0, 255)
        image[y + 16 : y + 32] = (255, 0, 0)
    hub.publish(image)
    enc = H264Encoder(hub, EncoderSettings(keepalive=30, refine_frames=0))
    sub = enc.subscribe()
    encoded = await next_frame(sub)
    (picture,) = Decoder().decode(encoded.data)
    w, h = width - width % 2, height - height % 2
    assert picture.shape == (h, w, 3)
    diff = cv2.absdiff(picture, image[:h, :w]).mean()
    assert diff < 6, f"decoded picture differs by {diff:.1f} levels on average"
    await sub_close(enc, sub)
