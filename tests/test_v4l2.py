"""V4l2Source: missing and wrong devices degrade to a signal state plus an explanatory frame,
retry without a restart, and close promptly. A real capture device is used when one exists."""

from __future__ import annotations

import asyncio
import errno
import glob
import os
import re
import struct
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from capture import v4l2_ioctl as vio
from capture.frame import SignalState
from capture.hub import FrameHub
from capture.v4l2 import V4l2Source, _DvProbe, device_index


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


# ---------------------------------------------------------------- ioctl numbers and struct layouts
# Values printed by a C program including <linux/videodev2.h> on x86_64 (gcc, kernel UAPI 6.1):
# printf("%#lx", VIDIOC_...), sizeof(struct v4l2_dv_timings) == 132, sizeof(struct v4l2_event)
# == 136 with the union at offset 8 and the timestamp at 80.
HEADER = Path("/usr/include/linux/videodev2.h")


def test_ioctl_numbers_match_the_kernel_header_values() -> None:
    assert vio.VIDIOC_QUERY_DV_TIMINGS == 0x80845663
    assert vio.VIDIOC_S_DV_TIMINGS == 0xC0845657
    assert vio.VIDIOC_G_DV_TIMINGS == 0xC0845658
    assert vio.VIDIOC_SUBSCRIBE_EVENT == 0x4020565A
    assert vio.VIDIOC_DQEVENT == 0x80885659
    assert vio.DV_TIMINGS_SIZE == 132
    assert vio.EVENT_SIZE == 136
    # the _IOC helper itself, against asm-generic/ioctl.h examples (VIDIOC_G_INPUT: _IOR int)
    assert vio.ior("V", 38, 4) == 0x80045626
    with pytest.raises(ValueError):
        vio.ioc(vio.IOC_READ, "V", 1, 1 << 14)


@pytest.mark.skipif(not HEADER.exists(), reason="linux-libc-dev (videodev2.h) not installed")
def test_ioctl_directions_and_numbers_follow_the_installed_header() -> None:
    text = HEADER.read_text()
    ours = {
        "VIDIOC_QUERY_DV_TIMINGS": vio.VIDIOC_QUERY_DV_TIMINGS,
        "VIDIOC_S_DV_TIMINGS": vio.VIDIOC_S_DV_TIMINGS,
        "VIDIOC_G_DV_TIMINGS": vio.VIDIOC_G_DV_TIMINGS,
        "VIDIOC_DQEVENT": vio.VIDIOC_DQEVENT,
        "VIDIOC_SUBSCRIBE_EVENT": vio.VIDIOC_SUBSCRIBE_EVENT,
    }
    directions = {
        "_IOR": vio.IOC_READ,
        "_IOW": vio.IOC_WRITE,
        "_IOWR": vio.IOC_READ | vio.IOC_WRITE,
    }
    for name, number in ours.items():
        match = re.search(rf"#define\s+{name}\s+(_IOW?R?)\('V',\s*(\d+),", text)
        assert match is not None, name
        assert number >> 30 == directions[match.group(1)], name
        assert number & 0xFF == int(match.group(2)), name
        assert (number >> 8) & 0xFF == ord("V"), name
    assert "#define V4L2_EVENT_SOURCE_CHANGE\t\t5" in text


def test_dv_timings_pack_and_unpack_a_720p60_mode() -> None:
    """CEA-861 1280x720p60: 74.25 MHz, 1650x750 total."""
    timings = vio.DvTimings.pack(1280, 720, 74_250_000, (110, 40, 220), (5, 5, 20))
    raw = timings.raw
    assert len(raw) == 132
    # type, then the packed bt struct: width, height, interlaced, polarities, u64 pixelclock
    assert struct.unpack_from("<IIIIIQ", raw) == (0, 1280, 720, 0, 0, 74_250_000)
    assert struct.unpack_from("<6I", raw, 4 + 24) == (110, 40, 220, 5, 5, 20)
    assert raw[4 + 124 :] == bytes(4)  # the rest of the union's reserved[32]
    back = vio.DvTimings.unpack(raw)
    assert back == timings
    assert (back.frame_width, back.frame_height) == (1650, 750)
    assert str(back) == "1280x720p60.00"
    with pytest.raises(ValueError):
        vio.DvTimings.unpack(raw[:-1])
    with pytest.raises(ValueError):
        vio.DvTimings.unpack(struct.pack("<I", 7) + raw[4:])


def test_source_change_event_unpacks() -> None:
    raw = struct.pack(
        "<I4x64sIIqqI8I4x",
        vio.V4L2_EVENT_SOURCE_CHANGE,
        struct.pack("<I", vio.V4L2_EVENT_SRC_CH_RESOLUTION),
        2,
        17,
        123,
        456,
        0,
        *([0] * 8),
    )
    assert len(raw) == vio.EVENT_SIZE
    event = vio.Event.unpack(raw)
    assert (event.type, event.changes, event.pending, event.sequence, event.id) == (5, 1, 2, 17, 0)


def test_non_v4l2_files_answer_enotty_and_the_probe_falls_back_to_frames(tmp_path: Path) -> None:
    """The real kernel: a regular file and /dev/null have no DV timings."""
    path = tmp_path / "video0"
    path.write_bytes(b"")
    fd = os.open(path, os.O_RDWR)
    try:
        with pytest.raises(OSError) as info:
            vio.query_dv_timings(fd)
        assert info.value.errno in vio.UNSUPPORTED_ERRNOS
        with pytest.raises(OSError):
            vio.subscribe_source_change(fd)
    finally:
        os.close(fd)
    probe = _DvProbe("/dev/null")
    verdict = probe.check()
    assert (verdict.loss, verdict.timings, verdict.changed) == (None, None, False)
    assert probe.supported is False and probe.fd is None
    assert probe.check() == verdict  # and it stops asking


def test_loss_errnos_are_the_kernel_ones() -> None:
    assert vio.LOSS_ERRNOS == {
        errno.ENOLINK: "no_link",
        errno.ENOLCK: "no_lock",
        errno.ERANGE: "out_of_range",
    }
    assert errno.ENOTTY in vio.UNSUPPORTED_ERRNOS
