"""The frame path from a device buffer to viewers, fed by recorded device buffers (ReplaySource
calls the V4L2 reader's own buffer → frame function); the work counters prove what each source and
consumer costs: a JPEG device watched over MJPEG costs no decode and no encode, a YUYV device
watched over H.264 exactly one conversion and no BGR."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import cv2
import numpy as np
import pytest

from capture.h264 import H264Encoder
from capture.hub import FrameHub
from capture.jpeg import JpegEncoder
from capture.replay import ReplaySource
from capture.yuv import Yuv420
from tests.conftest import start_server

W, H = 320, 240


def picture(n: int) -> np.ndarray:
    """A distinct BGR test picture per *n* (a moving bar and a number)."""
    image = np.full((H, W, 3), (40, 90, 160), np.uint8)
    cv2.rectangle(image, (10 + 20 * n, 20), (40 + 20 * n, 200), (255, 255, 255), -1)
    cv2.putText(image, str(n), (200, 120), cv2.FONT_HERSHEY_SIMPLEX, 2, (0, 0, 0), 3)
    return image


def jpegs(count: int) -> list[bytes]:
    return [cv2.imencode(".jpg", picture(n))[1].tobytes() for n in range(count)]


def yuyv(image: np.ndarray) -> bytes:
    """A packed YUYV buffer as a capture device would fill it (BT.601 video range)."""
    i420 = cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420)
    y = i420[:H]
    u = i420[H : H + H // 4].reshape(H // 2, W // 2).repeat(2, axis=0)
    v = i420[H + H // 4 :].reshape(H // 2, W // 2).repeat(2, axis=0)
    out = np.empty((H, W * 2), np.uint8)
    out[:, 0::2], out[:, 1::4], out[:, 3::4] = y, u, v
    return out.tobytes()


def uyvy(image: np.ndarray) -> bytes:
    packed = np.frombuffer(yuyv(image), np.uint8).reshape(H, W * 2)
    out = np.empty_like(packed)
    out[:, 0::2], out[:, 1::2] = packed[:, 1::2], packed[:, 0::2]
    return out.tobytes()


async def test_mjpeg_source_to_mjpeg_viewers_costs_no_decode_and_no_encode(
    tmp_path: Path,
) -> None:
    """Two MJPEG viewers and snapshots of a JPEG device get the device's bytes, byte for byte."""
    recorded = jpegs(6)
    srv, runner = await start_server(tmp_path)
    appliance = srv.appliance
    source = ReplaySource(recorded, "mjpeg", W, H, fps=0)
    try:
        await appliance.source.close()  # the demo screen stops; the replayed device takes over
        hub = appliance.hub
        await source.start(hub)
        source.step()
        work_before = hub.work.as_dict()
        async with aiohttp.ClientSession(headers=srv.basic()) as http:
            streams = [await http.get(f"{srv.url}/api/stream.mjpeg") for _ in range(2)]
            received: list[list[bytes]] = [[], []]
            arrived = asyncio.Condition()

            async def read(i: int) -> None:
                reader = aiohttp.MultipartReader.from_response(streams[i])
                while len(received[i]) < len(recorded):
                    part = await reader.next()
                    assert part is not None
                    received[i].append(await part.read())  # type: ignore[union-attr]
                    async with arrived:
                        arrived.notify_all()

            readers = [asyncio.create_task(read(i)) for i in range(2)]
            for _ in range(len(recorded) - 1):
                # the next buffer once both viewers got the current one (none is skipped)
                async with asyncio.timeout(5), arrived:
                    await arrived.wait_for(
                        lambda: all(len(r) >= source.published for r in received)
                    )
                source.step()
            async with asyncio.timeout(10):
                await asyncio.gather(*readers)
            async with http.get(f"{srv.url}/api/snapshot") as resp:
                snapshot = await resp.read()
            async with http.get(f"{srv.url}/api/state") as resp:
                state = await resp.json()
            for s in streams:
                s.close()
        for got in received:
            assert got == recorded  # the device's bytes, untouched
        assert snapshot == recorded[-1]
        work = state["video"]["work"]
        assert state["video"]["format"] == "mjpeg"
        assert work["frames"] - work_before["frames"] == len(recorded) - 1
        assert work["decodes"] == 0 and work["encodes"] == 0 and work["conversions"] == 0
        assert work["per_frame"]["decodes"] == 0 and work["per_frame"]["encodes"] == 0
        assert work["passthrough"] >= 2 * len(recorded)
        # the one copy out of the device buffer per frame, nothing else
        assert work["copies"] == work["frames"]
        assert work["stages"]["capture"]["copies"] == work["frames"]
    finally:
        await source.close()
        await runner.cleanup()


async def test_mjpeg_source_decodes_once_per_frame_for_h264_and_matching() -> None:
    """H.264, a quality-changed JPEG and screen matching all need pixels: one decode serves all."""
    hub = FrameHub()
    recorded = jpegs(3)
    source = ReplaySource(recorded, "mjpeg", W, H, fps=0)
    await source.start(hub)
    encoder = H264Encoder(hub)
    jpeg = JpegEncoder(executor=None)
    sub = encoder.subscribe()
    try:
        for n in range(3):
            source.step()
            frame = hub.latest
            assert frame is not None
            async with asyncio.timeout(10):
                while True:
                    got = await sub.get()
                    if got.seq == frame.seq:
                        break
            await jpeg.encode(frame, quality=50)
            bgr = frame.image
            assert np.abs(bgr.astype(int) - picture(n).astype(int)).mean() < 8
        assert hub.work.stages["decode"].counts["decodes"] == 3
        assert hub.work.stages["h264"].counts["encodes"] >= 3
        assert hub.work.stages["jpeg"].counts["encodes"] == 3
        assert hub.work.stages["bgr"].counts["conversions"] == 3
    finally:
        await encoder.close()
        await source.close()


@pytest.mark.parametrize("fmt", ["yuyv", "uyvy"])
async def test_raw_source_to_h264_is_one_conversion_and_no_bgr(fmt: str) -> None:
    hub = FrameHub()
    pack = yuyv if fmt == "yuyv" else uyvy
    source = ReplaySource([pack(picture(n)) for n in range(4)], fmt, W, H, fps=0)  # type: ignore[arg-type]
    await source.start(hub)
    encoder = H264Encoder(hub)
    sub = encoder.subscribe()
    try:
        for _ in range(4):
            source.step()
            frame = hub.latest
            assert frame is not None
            async with asyncio.timeout(10):
                while (await sub.get()).seq != frame.seq:
                    pass
        work = hub.work
        assert work.frames == 4
        assert work.stages["yuv"].counts["conversions"] == 4  # exactly one per frame
        assert work.total("conversions") == 4  # and none to BGR
        assert work.stages["bgr"].counts["conversions"] == 0
        assert work.total("decodes") == 0
        assert work.stages["h264"].counts["encodes"] >= 4
        # the I420 the encoder got is the picture (luma matches OpenCV's own conversion)
        assert frame is not None
        y, _, _ = frame.i420().planes
        want = cv2.cvtColor(picture(3), cv2.COLOR_BGR2YUV_I420)[:H]
        assert np.abs(y.astype(int) - want.astype(int)).max() <= 1
    finally:
        await encoder.close()
        await source.close()


async def test_raw_source_jpeg_is_encoded_from_yuv_and_shares_the_conversion() -> None:
    hub = FrameHub()
    source = ReplaySource([yuyv(picture(1))], "yuyv", W, H, fps=0)
    await source.start(hub)
    source.step()
    frame = hub.latest
    assert frame is not None
    encoder = JpegEncoder()
    first = await encoder.encode(frame)
    frame.i420()  # what H.264 would ask for: already there
    assert first[:2] == b"\xff\xd8"
    decoded = cv2.imdecode(np.frombuffer(first, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (H, W, 3)
    # levels go in as they are (limited range): the picture is right up to a small contrast loss
    assert np.abs(decoded.astype(int) - picture(1).astype(int)).mean() < 25
    assert hub.work.total("conversions") == 1 and hub.work.stages["bgr"].counts["conversions"] == 0
    assert hub.work.stages["jpeg"].counts["encodes"] == 1


def test_nv12_and_packed_conversions_agree() -> None:
    from capture import yuv

    image = picture(2)
    i420 = cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420)
    y = i420[:H]
    u = i420[H : H + H // 4].reshape(H // 2, W // 2)
    v = i420[H + H // 4 :].reshape(H // 2, W // 2)
    nv12 = np.empty((H * 3 // 2, W), np.uint8)
    nv12[:H] = y
    nv12[H:, 0::2], nv12[H:, 1::2] = u, v
    got = yuv.nv12_to_i420(nv12, W, H)
    assert isinstance(got, Yuv420)
    assert np.array_equal(got.data, i420)
    packed = np.frombuffer(yuyv(image), np.uint8).reshape(H, W * 2)
    assert np.array_equal(yuv.packed_to_i420(packed, "yuyv", W, H).data, i420)


async def test_identical_jpeg_bytes_are_unchanged_without_decoding() -> None:
    hub = FrameHub()
    one, two = jpegs(2)
    source = ReplaySource([one, one, two], "mjpeg", W, H, fps=0)
    await source.start(hub)
    seqs = []
    for _ in range(3):
        source.step()
        assert hub.latest is not None
        seqs.append(hub.latest.content_seq)
    assert seqs == [1, 1, 2]
    assert hub.work.total("decodes") == 0


def test_a_buffer_without_a_picture_is_dropped_not_published() -> None:
    from capture.v4l2_stream import captured_from_buffer

    jpeg = jpegs(1)[0]
    assert captured_from_buffer("mjpeg", W, H, W, memoryview(jpeg), len(jpeg)) is not None
    # a dongle's half-written buffer (no SOI), a raw buffer shorter than the picture
    assert captured_from_buffer("mjpeg", W, H, W, memoryview(b"\x00" * 100), 100) is None
    raw = yuyv(picture(0))
    assert captured_from_buffer("yuyv", W, H, 2 * W, memoryview(raw), len(raw) - 1) is None
    # only bytesused counts: the rest of the driver's buffer is not part of the JPEG
    padded = jpeg + b"\x00" * 4096
    got = captured_from_buffer("mjpeg", W, H, W, memoryview(padded), len(jpeg))
    assert got is not None and got.data == jpeg


def test_v4l2_structs_match_the_kernel_header(tmp_path: Path) -> None:
    """Sizes and ioctl numbers of the mmap-streaming structs against linux/videodev2.h."""
    import ctypes
    import shutil
    import subprocess

    from capture import v4l2_ioctl as vio
    from capture import v4l2_stream as vs

    cc = shutil.which("cc")
    header = Path("/usr/include/linux/videodev2.h")
    if cc is None or not header.exists():
        pytest.skip("no C compiler or videodev2.h")
    names = ["QUERYCAP", "G_FMT", "S_FMT", "REQBUFS", "QUERYBUF", "QBUF", "DQBUF", "STREAMON",
             "STREAMOFF", "S_PARM"]  # fmt: skip
    src = tmp_path / "sizes.c"
    src.write_text(
        "#include <stdio.h>\n#include <linux/videodev2.h>\nint main(void){"
        + "".join(f'printf("%lu\\n",(unsigned long)VIDIOC_{n});' for n in names)
        + 'printf("%lu\\n",(unsigned long)VIDIOC_G_EDID);'
        + 'printf("%lu\\n",(unsigned long)VIDIOC_S_EDID);'
        + 'printf("%zu\\n",sizeof(struct v4l2_buffer));return 0;}'
    )
    exe = tmp_path / "sizes"
    subprocess.run([cc, str(src), "-o", str(exe)], check=True, timeout=60)
    out = [
        int(x) for x in subprocess.run([str(exe)], capture_output=True, text=True).stdout.split()
    ]
    ours = [getattr(vs, f"VIDIOC_{n}") for n in names] + [vio.VIDIOC_G_EDID, vio.VIDIOC_S_EDID]
    assert out[:-1] == ours
    assert out[-1] == ctypes.sizeof(vs.Buffer)


@pytest.mark.skipif(
    any(Path("/dev").glob("video*")), reason="a V4L2 device here might be an M2M encoder"
)
async def test_a_missing_hardware_encoder_falls_back_to_x264_and_says_why(tmp_path: Path) -> None:
    """No V4L2 M2M encoder on this machine: the stream still flows (x264), and /api/state says
    which encoder runs and why the hardware one does not."""
    srv, runner = await start_server(tmp_path, '[stream]\nh264_codec = "h264_v4l2m2m"\n')
    try:
        encoder = srv.appliance.h264
        sub = encoder.subscribe()
        async with asyncio.timeout(20):
            first = await sub.get()
        assert first.keyframe and first.data
        sub.close()
        async with aiohttp.ClientSession(headers=srv.basic()) as http:
            async with http.get(f"{srv.url}/api/state") as resp:
                state = (await resp.json())["video"]["encoder"]
        assert state["requested"] == "h264_v4l2m2m"
        assert state["codec"] == "libx264" and state["hardware"] is False
        assert state["fallback_reason"].startswith("h264_v4l2m2m: ")
    finally:
        await runner.cleanup()
