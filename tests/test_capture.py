"""FrameHub (latest wins, waiting, change detection, signal) and JpegEncoder (cache, pixels)."""

from __future__ import annotations

import asyncio
import time

import cv2
import numpy as np
import pytest

from capture.frame import Captured, Frame, Image, SignalState
from capture.hub import FrameHub
from capture.jpeg import JpegEncoder, target_size


def screen(width: int = 1280, height: int = 720, text: str = "Asset Tag: abc") -> Image:
    """A BIOS-ish picture: blue background, one line of small anti-aliased text."""
    image = np.zeros((height, width, 3), np.uint8)
    image[:] = (170, 0, 0)
    cv2.putText(
        image, text, (40, 200), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA
    )
    return image


def arrow(image: Image, x: int, y: int) -> Image:
    """A 12x18 pointer with its tip at (x, y), drawn on a copy."""
    out = image.copy()
    pts = np.array([[x, y], [x, y + 17], [x + 4, y + 13], [x + 11, y + 12]], np.int32)
    cv2.fillPoly(out, [pts], (255, 255, 255))
    return out


# --------------------------------------------------------------------------- hub: frames
async def test_latest_wins_no_queue() -> None:
    hub = FrameHub()
    for text in ("a", "b", "c"):
        hub.publish(screen(text=text))
    frame = await hub.next_frame(0)
    assert frame.seq == 3 and frame.content_seq == 3
    assert frame is hub.latest
    # Asking again for "newer than 1" gives the newest, not frame 2.
    assert (await hub.next_frame(1)).seq == 3


async def test_next_frame_waits_for_a_newer_frame() -> None:
    hub = FrameHub()
    first = hub.publish(screen(text="one"))
    waiter = asyncio.create_task(hub.next_frame(first.seq))
    await asyncio.sleep(0)  # let it start waiting
    assert not waiter.done()
    second_image = screen(text="two")
    hub.publish(second_image, timestamp=123.5)
    async with asyncio.timeout(1):
        frame = await waiter
    assert frame.seq == 2 and frame.timestamp == 123.5
    assert frame.image is second_image


async def test_one_typed_character_bumps_content_seq() -> None:
    hub = FrameHub()
    hub.publish(screen(text="Asset Tag: abc"))
    frame = hub.publish(screen(text="Asset Tag: abcd"))
    assert frame.content_seq == 2
    # Even a "." (a couple of pixels at this font size) is seen.
    frame = hub.publish(screen(text="Asset Tag: abcd."))
    assert frame.content_seq == 3


async def test_pointer_moving_one_pixel_bumps_content_seq() -> None:
    hub = FrameHub()
    base = screen()
    hub.publish(arrow(base, 600, 300))
    assert hub.publish(arrow(base, 601, 300)).content_seq == 2
    assert hub.publish(arrow(base, 601, 301)).content_seq == 3


async def test_unchanged_frames_keep_content_seq() -> None:
    hub = FrameHub()
    image = screen()
    hub.publish(image)
    hub.publish(image)  # the same object again
    frame = hub.publish(image.copy())  # equal pixels, new buffer
    assert (frame.seq, frame.content_seq) == (3, 1)


@pytest.mark.parametrize("where", ["top-left", "bottom-right", "last-row-middle"])
async def test_a_one_pixel_change_anywhere_is_a_change(where: str) -> None:
    hub = FrameHub()
    image = screen()
    hub.publish(image)
    changed = image.copy()
    h, w = changed.shape[:2]
    y, x = {"top-left": (0, 0), "bottom-right": (h - 1, w - 1), "last-row-middle": (h - 1, w // 2)}[
        where
    ]
    changed[y, x] = 255 - changed[y, x]
    assert hub.publish(changed).content_seq == 2


async def test_changed_only_skips_identical_frames() -> None:
    hub = FrameHub()
    image = screen()
    first = hub.publish(image)
    waiter = asyncio.create_task(hub.next_frame(first.seq, changed_only=True))
    hub.publish(image.copy())
    hub.publish(image.copy())
    await asyncio.sleep(0)
    assert not waiter.done(), "identical frames must not wake a changed_only consumer"
    hub.publish(screen(text="Asset Tag: abcX"))
    hub.publish(screen(text="Asset Tag: abcX"))
    async with asyncio.timeout(1):
        frame = await waiter
    assert (frame.seq, frame.content_seq) == (5, 2)
    # A consumer that already has frame 4 (the changed one) waits for the next change.
    assert (await hub.next_frame(3, changed_only=True)).seq == 5
    later = asyncio.create_task(hub.next_frame(4, changed_only=True))
    await asyncio.sleep(0)
    assert not later.done()
    later.cancel()


async def test_noise_threshold_ignores_wobble_but_not_text() -> None:
    hub = FrameHub(noise_threshold=8)
    image = screen()
    hub.publish(image)
    rng = np.random.default_rng(1)
    noise = rng.integers(-6, 7, image.shape)
    noisy = np.clip(image.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    assert hub.publish(noisy).content_seq == 1
    assert hub.publish(screen(text="Asset Tag: abd")).content_seq == 2


async def test_publish_rejects_non_bgr_images() -> None:
    hub = FrameHub()
    with pytest.raises(ValueError, match="BGR"):
        hub.publish(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="BGR"):
        hub.publish(np.zeros((10, 10, 3), np.float32))
    assert hub.latest is None


# --------------------------------------------------------------------------- hub: signal
async def test_signal_listeners_hear_changes_once() -> None:
    hub = FrameHub()
    heard: list[SignalState] = []
    unsubscribe = hub.subscribe(heard.append)
    assert hub.signal.status == "starting"
    hub.set_signal("no_device", "No capture device at /dev/video0")
    hub.set_signal("no_device", "No capture device at /dev/video0")  # same: silent
    hub.publish(screen(640, 480))  # resolution becomes known: a change
    hub.publish(screen(640, 480))
    hub.set_signal("ok", "Capturing")
    assert [(s.status, s.width, s.height) for s in heard] == [
        ("no_device", 0, 0),
        ("no_device", 640, 480),
        ("ok", 640, 480),
    ]
    assert heard[0].message == "No capture device at /dev/video0"
    unsubscribe()
    hub.set_signal("no_signal", "gone")
    assert len(heard) == 3
    with pytest.raises(ValueError):
        hub.set_signal("broken")  # type: ignore[arg-type]


async def test_fps_is_measured_from_published_frames() -> None:
    hub = FrameHub()
    image = screen(320, 240)
    now = time.monotonic()
    for i in range(11):  # 11 frames over the last second: 10 fps
        hub.publish(image, timestamp=now - 1.0 + i * 0.1)
    assert hub.signal.fps == pytest.approx(10.0, rel=0.01)
    assert hub.signal.as_dict()["fps"] == pytest.approx(10.0, rel=0.01)


# --------------------------------------------------------------------------- JPEG
def decode(data: bytes) -> Image:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, "not a decodable image"
    return image.astype(np.uint8)


def frame_of(image: Image, content_seq: int = 1) -> Frame:
    return Frame(Captured.bgr(image), seq=content_seq, content_seq=content_seq, timestamp=0.0)


async def test_jpeg_same_content_costs_one_encode() -> None:
    hub = FrameHub()
    encoder = JpegEncoder(quality=80)
    image = screen()
    a = hub.publish(image)
    b = hub.publish(image.copy())  # new frame, same content
    first = await encoder.encode(a)
    second = await encoder.encode(b)
    assert encoder.encodes == 1
    assert first is second
    # Ten viewers asking at the same moment share the one encode in flight.
    c = hub.publish(screen(text="changed"))
    results = await asyncio.gather(*(encoder.encode(c) for _ in range(10)))
    assert encoder.encodes == 2
    assert all(r is results[0] for r in results)
    assert results[0] != first


async def test_a_viewer_leaving_does_not_cancel_the_shared_encode() -> None:
    encoder = JpegEncoder()
    frame = frame_of(screen(1920, 1080))
    leaving = asyncio.create_task(encoder.encode(frame))
    staying = asyncio.create_task(encoder.encode(frame))
    await asyncio.sleep(0)  # both are now waiting on the one encode
    leaving.cancel()
    async with asyncio.timeout(5):
        data = await staying
    assert leaving.cancelled()
    assert decode(data).shape == (1080, 1920, 3)
    assert encoder.encodes == 1
    assert await encoder.encode(frame) is data  # and the result stayed cached


async def test_jpeg_decodes_back_to_the_picture() -> None:
    encoder = JpegEncoder(quality=80)
    image = screen(text="Asset Tag: JPEG")
    data = await encoder.encode(frame_of(image))
    assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"
    decoded = decode(data)
    assert decoded.shape == image.shape
    diff = np.abs(decoded.astype(np.int16) - image.astype(np.int16))
    assert diff.mean() < 2.0
    # The text is still there: the text row differs from plain background, as in the source.
    text_rows = decoded[185:205, 40:200]
    assert (text_rows.min(axis=2) > 150).sum() > 50


async def test_jpeg_quality_and_scaling() -> None:
    encoder = JpegEncoder(quality=80)
    frame = frame_of(screen(1920, 1080))
    full = await encoder.encode(frame)
    low = await encoder.encode(frame, quality=30)
    half = await encoder.encode(frame, scale=0.5)
    boxed = await encoder.encode(frame, max_width=640, max_height=640)
    assert encoder.encodes == 4
    assert len(low) < len(full)
    sizes = [decode(d).shape[:2] for d in (half, boxed)]
    assert sizes == [(540, 960), (360, 640)]
    with pytest.raises(ValueError):
        await encoder.encode(frame, quality=0)


async def test_png_is_lossless_and_cached_separately() -> None:
    encoder = JpegEncoder()
    image = screen(text="Exact pixels")
    frame = frame_of(image)
    png = await encoder.encode_png(frame)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    decoded = decode(png)
    assert np.array_equal(decoded, image)
    await encoder.encode(frame)
    await encoder.encode_png(frame)
    assert encoder.encodes == 2


def test_target_size_keeps_aspect_and_never_enlarges_with_maxima() -> None:
    assert target_size(1280, 720) == (1280, 720)
    assert target_size(1280, 720, max_width=1920) == (1280, 720)
    assert target_size(1920, 1080, max_height=720) == (1280, 720)
    assert target_size(1280, 720, scale=0.25) == (320, 180)
    assert target_size(1280, 720, max_width=0, max_height=0) == (1280, 720)  # 0: no limit
    with pytest.raises(ValueError):
        target_size(1280, 720, max_width=-1)
    with pytest.raises(ValueError):
        target_size(1280, 720, scale=0)
