"""Decompression bombs: an uploaded image is checked from its header before anything decodes it.

The header reader agrees with OpenCV on real PNG and JPEG files of every kind; a tiny PNG claiming
16000x16000 pixels is refused in milliseconds with its size and the limit, through
``/api/screen/wait`` and ``/api/scripts/run``, without the process's peak memory moving; and a
legitimate template is decoded in a thread, so ``/api/health`` answers meanwhile.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import resource
import struct
import threading
import time
import zlib
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import numpy as np
import pytest

from appliance import imagecheck
from appliance.imagecheck import ImageRejected
from appliance.scripting import ducky, screen
from appliance.targets.demo.machine import DemoMachine
from tests.conftest import Server

LIMITS = imagecheck.TEMPLATE_LIMITS


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


@functools.cache
def png_bomb(width: int, height: int) -> bytes:
    """A valid grey 1-bit PNG of zero rows: 31 KB for 16000x16000, 1.5 GB once decoded. Built a
    row at a time, so the test itself never holds the 32 MB of raw rows."""
    row = b"\0" * (1 + (width + 7) // 8)  # filter byte + packed bits
    z = zlib.compressobj(9)
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        imagecheck.PNG_MAGIC + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def encode(ext: str, image: Any, *params: int) -> bytes:
    ok, buf = cv2.imencode(ext, image, list(params))
    assert ok
    return bytes(buf.tobytes())


def noise(h: int, w: int, channels: int = 3) -> Any:
    rng = np.random.default_rng(7)
    return rng.integers(0, 256, (h, w, channels) if channels > 1 else (h, w), np.uint8)


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# ---------------------------------------------------------------------------- header reader
@pytest.mark.parametrize(
    ("image", "params", "channels", "depth"),
    [
        (noise(30, 40), (), 3, 8),
        (noise(30, 40, 1), (), 1, 8),
        (noise(30, 40, 4), (), 4, 8),
        (noise(30, 40).astype(np.uint16) * 257, (), 3, 16),
        (noise(30, 40, 1).astype(np.uint16) * 257, (), 1, 16),
        (noise(30, 40, 1) // 128 * 255, (cv2.IMWRITE_PNG_BILEVEL, 1), 1, 1),
    ],
    ids=["bgr8", "grey8", "bgra8", "bgr16", "grey16", "bilevel"],
)
def test_png_header_matches_what_opencv_decodes(
    image: Any, params: tuple[int, ...], channels: int, depth: int
) -> None:
    data = encode(".png", image, *params)
    info = imagecheck.check(data, LIMITS)
    assert (info.format, info.width, info.height) == ("PNG", 40, 30)
    assert (info.channels, info.bit_depth) == (channels, depth)
    assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).shape == (30, 40, 3)


@pytest.mark.parametrize(
    ("image", "params", "channels", "buffered"),
    [
        (noise(30, 40), (), 3, False),
        (noise(30, 40, 1), (), 1, False),
        (noise(30, 40), (cv2.IMWRITE_JPEG_PROGRESSIVE, 1), 3, True),
    ],
    ids=["baseline", "grey", "progressive"],
)
def test_jpeg_header_matches_what_opencv_decodes(
    image: Any, params: tuple[int, ...], channels: int, buffered: bool
) -> None:
    data = encode(".jpg", image, *params)
    info = imagecheck.check(data, LIMITS)
    assert (info.format, info.width, info.height, info.bit_depth) == ("JPEG", 40, 30, 8)
    assert (info.channels, info.buffered) == (channels, buffered)


def _jpeg_with_sof(data: bytes, width: int, height: int) -> bytes:
    """*data* with the dimensions in its (first) baseline frame header replaced."""
    at = data.index(b"\xff\xc0") + 5  # marker, length (2), precision (1)
    return data[:at] + struct.pack(">HH", height, width) + data[at + 4 :]


def test_jpeg_exif_thumbnail_does_not_fool_the_reader() -> None:
    """The reader skips segments by their length: a frame header inside an APP1 (EXIF) block is
    a thumbnail's, not the picture's, whichever way round the sizes lie."""
    real = encode(".jpg", noise(30, 40))
    thumb = _jpeg_with_sof(encode(".jpg", noise(8, 8)), 16000, 16000)
    app1 = b"Exif\0\0" + thumb
    data = real[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + real[2:]
    info = imagecheck.check(data, LIMITS)
    assert (info.width, info.height, info.buffered) == (40, 30, False)  # the thumbnail's scan
    bomb = _jpeg_with_sof(real, 16000, 16000)
    hidden = bomb[:2] + b"\xff\xe1" + struct.pack(">H", 2 + 6 + len(real)) + b"Exif\0\0" + real
    with pytest.raises(ImageRejected, match="16000x16000"):
        imagecheck.check(hidden + bomb[2:], LIMITS)


def test_oversized_images_are_refused_naming_size_and_limit() -> None:
    with pytest.raises(ImageRejected) as info:
        imagecheck.check(png_bomb(16000, 16000), LIMITS)
    assert str(info.value) == "template is 16000x16000 pixels; at most 7680x4320 is accepted"
    # Within both sides but over the pixel cap (a 4K screen): the total is named.
    with pytest.raises(ImageRejected, match=r"5000x4000 = 20,000,000 pixels; at most 8,294,400"):
        imagecheck.check(png_bomb(5000, 4000), LIMITS)
    jpeg = _jpeg_with_sof(encode(".jpg", noise(8, 8)), 7000, 7000)
    with pytest.raises(ImageRejected, match="7000x7000"):
        imagecheck.check(jpeg, LIMITS)
    # At the cap exactly, a PNG and a baseline JPEG pass; a progressive JPEG of that size would
    # need its coefficient buffer as well (~100 MB), so it is refused with the cost.
    assert imagecheck.check(png_bomb(3840, 2160), LIMITS).pixels == LIMITS.max_pixels
    flat4k = np.zeros((2160, 3840, 3), np.uint8)
    assert not imagecheck.check(encode(".jpg", flat4k), LIMITS).buffered
    progressive = encode(".jpg", flat4k, cv2.IMWRITE_JPEG_PROGRESSIVE, 1)
    with pytest.raises(ImageRejected, match=r"3840x2160 progressive JPEG, .* 94 MB .* 64 MB"):
        imagecheck.check(progressive, LIMITS)
    small = encode(".jpg", noise(30, 40), cv2.IMWRITE_JPEG_PROGRESSIVE, 1)
    with pytest.raises(ImageRejected, match="scans"):
        imagecheck.check(small + b"\xff\xda" * 101, LIMITS)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "empty"),
        (b"GIF89a" + bytes(20), "not a decodable image: only PNG and JPEG"),
        (encode(".bmp", noise(4, 4)), "only PNG and JPEG"),
        (imagecheck.PNG_MAGIC + b"\0\0\0\x0dIHDR", "truncated"),
        (imagecheck.PNG_MAGIC + _chunk(b"IDAT", bytes(13)), "IHDR"),
        (png_bomb(8, 8)[:29] + b"\0\0\0\0" + png_bomb(8, 8)[33:], "checksum"),
        (
            imagecheck.PNG_MAGIC + _chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 5, 8, 0, 0, 0, 0)),
            "0x5",
        ),
        (
            imagecheck.PNG_MAGIC + _chunk(b"IHDR", struct.pack(">IIBBBBB", 5, 5, 3, 2, 0, 0, 0)),
            "3-bit",
        ),
        (b"\xff\xd8\xff\xd9", "no frame header"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "truncated"),
        (b"\xff\xd8\xff\xc3\x00\x0b\x08\x00\x10\x00\x10\x01\x01\x11\x00", "lossless"),
        (b"\xff\xd8\xff\xc0\x00\x0b\x08\x00\x00\x00\x10\x01\x01\x11\x00", "invalid size 16x0"),
    ],
    ids=[
        "empty",
        "gif",
        "bmp",
        "png-truncated",
        "png-no-ihdr",
        "png-bad-crc",
        "png-zero-width",
        "png-bad-depth",
        "jpeg-no-sof",
        "jpeg-truncated",
        "jpeg-lossless",
        "jpeg-dnl-height",
    ],
)
def test_unknown_or_corrupt_headers_are_refused(data: bytes, words: str) -> None:
    with pytest.raises(ImageRejected, match=words):
        imagecheck.check(data, LIMITS)


def test_screen_refuses_a_bomb_before_decoding_and_still_decodes_a_template() -> None:
    bomb = png_bomb(16000, 16000)
    started = time.monotonic()
    with pytest.raises(screen.ScreenError, match="16000x16000 pixels; at most 7680x4320"):
        screen.decode_png(bomb)
    assert time.monotonic() - started < 0.5  # a decode takes 4 s; the header check microseconds
    image = noise(30, 40)
    assert np.array_equal(screen.decode_png(encode(".png", image)), image)
    jpeg = screen.decode_png(encode(".jpg", image, cv2.IMWRITE_JPEG_QUALITY, 100))
    assert jpeg.shape == (30, 40, 3)


def test_detail_is_the_per_channel_standard_deviation() -> None:
    """The flat-colour check sums in place now (NumPy's std copied the picture as float64)."""
    for image in (noise(30, 40), noise(30, 40, 1), np.full((9, 9, 3), 7, np.uint8)):
        expected = float(image.reshape(-1, image.shape[2] if image.ndim == 3 else 1).std(0).max())
        assert screen._detail(image) == pytest.approx(expected, abs=1e-9)


def test_script_templates_are_checked_on_their_line(tmp_path: Path) -> None:
    script = ducky.parse("STRING x\nWAITFOR  big.png 5\n")
    with pytest.raises(ducky.DuckyError) as info:
        ducky.decode_templates(script, {"big.png": b64(png_bomb(6000, 6000))})
    assert (info.value.line, info.value.column) == (2, 10)
    assert (
        info.value.message
        == "template 'big.png' is 6000x6000 pixels; at most 7680x4320 is accepted"
    )
    # The CLI reads templates from disk: same check, before anything is uploaded.
    (tmp_path / "big.png").write_bytes(png_bomb(16000, 16000))
    with pytest.raises(ducky.DuckyError, match=r"16000x16000 pixels; at most 7680x4320") as info:
        ducky.load_templates(script, tmp_path)
    assert info.value.line == 2
    jpeg = encode(".jpg", noise(30, 40))
    with pytest.raises(ducky.DuckyError, match="not a PNG"):
        ducky.decode_templates(script, {"big.png": b64(jpeg)})


# ---------------------------------------------------------------------------- through the API
def demo(server: Server) -> DemoMachine:
    machine = server.appliance.target.machine  # type: ignore[attr-defined]
    assert isinstance(machine, DemoMachine)
    return machine


async def main_tab_png(server: Server) -> bytes:
    """A legitimate template: the demo's "Main" tab, cut from the current frame."""
    frame = await server.appliance.hub.next_frame(0)  # type: ignore[attr-defined]
    x, y, w, h = demo(server).tab_rect("Main")
    return encode(".png", frame.image[y : y + h, x : x + w])


async def timed_health(http: aiohttp.ClientSession) -> float:
    started = time.monotonic()
    async with http.get("/api/health") as resp:
        assert resp.status == 200
    return time.monotonic() - started


async def test_bomb_template_is_refused_at_once_and_costs_no_memory(server: Server) -> None:
    """Before the fix: 1.5 GB and 4 s in imdecode, then 6 GB in the flat-colour check, the event
    loop blocked throughout (health waited), and a 400 about a flat colour only at the end."""
    bomb = png_bomb(16000, 16000)
    assert len(bomb) < 40_000
    async with aiohttp.ClientSession(base_url=server.url, headers=server.basic()) as http:
        await timed_health(http)
        legit = await main_tab_png(server)
        before = maxrss_mb()
        started = time.monotonic()
        post = asyncio.create_task(
            http.post("/api/screen/wait", json={"image": b64(bomb), "timeout": 5})
        )
        health_s = await timed_health(http)
        async with await post as resp:
            assert resp.status == 400
            body = await resp.json()
        elapsed = time.monotonic() - started
        grown = maxrss_mb() - before
        assert body["error"] == "template is 16000x16000 pixels; at most 7680x4320 is accepted"
        assert health_s < 1.0, f"/api/health took {health_s:.2f} s"
        assert elapsed < 1.0, f"refusing the bomb took {elapsed:.2f} s"
        assert grown < 50, f"peak RSS grew by {grown:.0f} MB"
        # Nothing was lost: the service still matches a real template.
        async with http.post("/api/screen/wait", json={"image": b64(legit), "timeout": 5}) as resp:
            assert resp.status == 200, await resp.text()
            assert (await resp.json())["score"] > 0.99


async def test_bomb_in_a_script_is_refused_on_its_line_and_nothing_is_typed(
    server: Server,
) -> None:
    machine = demo(server)
    reports = machine.reports
    state = machine.state()
    script = "STRING before\nWAITFOR big.png 5\nSTRING after\n"
    async with aiohttp.ClientSession(base_url=server.url, headers=server.basic()) as http:
        for size in (6000, 16000):
            before = maxrss_mb()
            started = time.monotonic()
            body = {"script": script, "templates": {"big.png": b64(png_bomb(size, size))}}
            async with http.post("/api/scripts/run", json=body) as resp:
                assert resp.status == 400
                err = await resp.json()
            elapsed = time.monotonic() - started
            assert (err["line"], err["column"]) == (2, 9)
            assert err["error"].startswith(f"line 2, column 9: template 'big.png' is {size}x{size}")
            assert elapsed < 1.0, f"refusing the script took {elapsed:.2f} s"
            assert maxrss_mb() - before < 50
    assert machine.reports == reports
    assert machine.state() == state


async def test_health_answers_while_a_template_decodes(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Decoding runs in a thread: held there until /api/health has answered, it still completes
    and matches. (On the event loop, the held decode would block health, and fail after 3 s.)"""
    decoding = threading.Event()
    health_answered = threading.Event()
    decode = screen.decode_png

    def held_decode(data: bytes) -> Any:
        decoding.set()
        if not health_answered.wait(3):
            raise AssertionError("the decode blocked /api/health")
        return decode(data)

    monkeypatch.setattr(screen, "decode_png", held_decode)
    legit = await main_tab_png(server)
    async with aiohttp.ClientSession(base_url=server.url, headers=server.basic()) as http:
        post = asyncio.create_task(
            http.post("/api/screen/wait", json={"image": b64(legit), "timeout": 5})
        )
        assert await asyncio.to_thread(decoding.wait, 5)
        assert await timed_health(http) < 1.0
        health_answered.set()
        async with await post as resp:
            assert resp.status == 200, await resp.text()
            found = await resp.json()
    x, y, w, h = demo(server).tab_rect("Main")
    assert (found["x"], found["y"], found["w"], found["h"]) == (x, y, w, h)


async def test_jpeg_template_matches_and_other_formats_are_refused(server: Server) -> None:
    frame = await server.appliance.hub.next_frame(0)  # type: ignore[attr-defined]
    x, y, w, h = demo(server).tab_rect("Main")
    cut = frame.image[y : y + h, x : x + w]
    async with aiohttp.ClientSession(base_url=server.url, headers=server.basic()) as http:
        jpeg = encode(".jpg", cut, cv2.IMWRITE_JPEG_QUALITY, 95)
        async with http.post("/api/screen/wait", json={"image": b64(jpeg), "timeout": 5}) as resp:
            assert resp.status == 200, await resp.text()
            assert (await resp.json())["x"] == x
        bmp = encode(".bmp", cut)
        async with http.post("/api/screen/wait", json={"image": b64(bmp), "timeout": 5}) as resp:
            assert resp.status == 400
            assert "only PNG and JPEG" in (await resp.json())["error"]
