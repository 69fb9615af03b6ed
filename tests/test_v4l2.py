"""V4l2Source: missing and wrong devices degrade to a signal state plus an explanatory frame,
retry without a restart, and close promptly. A real capture device is used when one exists."""

from __future__ import annotations

import asyncio
import glob
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from capture.frame import SignalState
from capture.hub import FrameHub
from capture.v4l2 import V4l2Source, device_index


async def wait_signal(hub: FrameHub, predicate: Callable[[SignalState], bool]) -> SignalState:
    """Wait (bounded) until the hub's signal satisfies *predicate*."""
    changed = asyncio.Event()
    unsubscribe = hub.subscribe(lambda _s: changed.set())
    try:
        async with asyncio.timeout(5):
            while not predicate(hub.signal):
                await changed.wait()
                changed.clear()
    finally:
        unsubscribe()
    return hub.signal


def text_pixels(image: np.ndarray) -> int:
    """Bright (text) pixels in the middle band of a generated message frame."""
    h = image.shape[0]
    band = image[h // 2 - 60 : h // 2 + 60]
    return int((band.min(axis=2) > 150).sum())


async def test_missing_device_reports_no_device_with_a_message_frame(tmp_path: Path) -> None:
    path = str(tmp_path / "video9")
    hub = FrameHub()
    source = V4l2Source(path, 640, 480, retry_interval=2.0)
    t0 = time.monotonic()
    await source.start(hub)
    signal = await wait_signal(hub, lambda s: s.status == "no_device")
    assert path in signal.message
    frame = await asyncio.wait_for(hub.next_frame(0), 2)
    assert time.monotonic() - t0 < 2.0
    assert frame.image.shape == (480, 640, 3)
    assert text_pixels(frame.image) > 500, "the frame must say why there is no picture"
    t1 = time.monotonic()
    await source.close()  # the thread is in its 2 s retry wait: close must not wait it out
    assert time.monotonic() - t1 < 1.0  # well under the 2 s retry wait


async def test_retries_and_notices_when_the_path_changes(tmp_path: Path) -> None:
    """Every retry re-checks the device: here it appears (as a non-video node) after start."""
    path = tmp_path / "video0"
    hub = FrameHub()
    source = V4l2Source(str(path), 320, 240, retry_interval=0.05)
    await source.start(hub)
    try:
        first = await wait_signal(hub, lambda s: s.status == "no_device")
        assert "No capture device" in first.message
        before = hub.latest
        assert before is not None
        # Retries re-publish the same explanation: seq moves, the content does not.
        again = await asyncio.wait_for(hub.next_frame(before.seq), 2)
        assert again.content_seq == before.content_seq
        os.symlink("/dev/null", path)
        second = await wait_signal(hub, lambda s: "not a V4L2 video device" in s.message)
        assert second.status == "no_device"
        changed = await asyncio.wait_for(hub.next_frame(again.seq, changed_only=True), 2)
        assert changed.content_seq > again.content_seq
    finally:
        await source.close()


def test_device_index_follows_symlinks(tmp_path: Path) -> None:
    link = tmp_path / "by-id-hdmi"
    os.symlink("/dev/video3", link)
    assert device_index(str(link)) == 3
    assert device_index("/dev/video12") == 12
    assert device_index("2") == 2
    assert device_index("/dev/null") is None
    with pytest.raises(ValueError):
        V4l2Source("/dev/video0", fourcc="H264")


def capture_devices() -> list[str]:
    found = []
    for path in sorted(glob.glob("/dev/video*")):
        name = os.path.basename(path)
        caps = Path(f"/sys/class/video4linux/{name}/device_caps")
        # Without sysfs we cannot tell capture from output nodes: try it anyway.
        if not caps.exists() or int(caps.read_text(), 16) & 0x1:
            found.append(path)
    return found


@pytest.mark.skipif(not capture_devices(), reason="no /dev/video* capture device on this machine")
async def test_real_device_delivers_frames_or_says_no_signal() -> None:
    hub = FrameHub()
    source = V4l2Source(capture_devices()[0], 1280, 720, 30, "YUYV")
    await source.start(hub)
    try:
        signal = await wait_signal(hub, lambda s: s.status in ("ok", "no_signal"))
        frame = await asyncio.wait_for(hub.next_frame(0), 5)
        assert frame.image.ndim == 3 and frame.image.shape[2] == 3
        if signal.status == "ok":
            newer = await asyncio.wait_for(hub.next_frame(frame.seq), 5)
            assert newer.seq > frame.seq
    finally:
        t0 = time.monotonic()
        await source.close()
        assert time.monotonic() - t0 < 3
