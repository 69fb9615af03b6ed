"""Property tests for the image header reader (the decompression-bomb guard).

Every uploaded template passes through ``read_header``/``check`` before any decoder runs, so any
bytes must give an ``ImageInfo`` or ``ImageRejected`` (a 400 with a message), never another
exception (a 500), and a well-formed PNG header must be read as exactly the size it declares.
"""

from __future__ import annotations

import struct
import zlib

from hypothesis import example, given
from hypothesis import strategies as st

from appliance.imagecheck import (
    JPEG_MAGIC,
    PNG_MAGIC,
    TEMPLATE_LIMITS,
    ImageInfo,
    ImageRejected,
    check,
    read_header,
)

bodies = st.binary(max_size=120)
# Bytes after a real signature reach the format readers, not only the "unknown format" refusal;
# JPEG marker soup (FF xx plus lengths) walks the segment loop.
marker_soup = st.lists(
    st.tuples(st.integers(0xC0, 0xFF), st.integers(0, 40), st.binary(max_size=12)).map(
        lambda t: bytes([0xFF, t[0]]) + struct.pack(">H", t[1]) + t[2]
    ),
    max_size=6,
).map(b"".join)
images = st.one_of(
    bodies,
    bodies.map(PNG_MAGIC.__add__),
    bodies.map(JPEG_MAGIC.__add__),
    marker_soup.map(lambda b: JPEG_MAGIC[:2] + b),
)


@given(images)
@example(b"\xff\xd8\xff")
@example(b"\xff\xd8\xff\xc0\x00\x01")  # segment length below 2
@example(b"\xff\xd8\xff\xc2\x00\x08\x08\x00\x00\x00\x00\x03")  # zero size
@example(PNG_MAGIC + b"\x00\x00\x00\x0dIHDR")
def test_any_bytes_give_info_or_image_rejected(data: bytes) -> None:
    for call in (lambda: read_header(data), lambda: check(data, TEMPLATE_LIMITS)):
        try:
            info = call()
        except ImageRejected as exc:
            assert str(exc)
            continue
        assert isinstance(info, ImageInfo) and info.width > 0 and info.height > 0
        assert info.format in ("PNG", "JPEG")


def _png_header(width: int, height: int, depth: int, colour: int, interlace: int) -> bytes:
    body = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, interlace)
    chunk = b"IHDR" + body
    return PNG_MAGIC + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))


@given(
    st.integers(1, 2**31 - 1),
    st.integers(1, 2**31 - 1),
    st.sampled_from([(0, 1, 1), (0, 16, 1), (2, 8, 3), (3, 4, 1), (4, 8, 2), (6, 16, 4)]),
    st.integers(0, 1),
)
@example(640, 480, (2, 8, 3), 0)
@example(3840, 2160, (6, 16, 4), 1)
@example(16000, 16000, (0, 1, 1), 0)
def test_png_header_gives_the_declared_size(
    width: int, height: int, kind: tuple[int, int, int], interlace: int
) -> None:
    """A valid IHDR is read as its size, and ``check`` refuses it exactly when it exceeds the
    template limits (a 31 KB PNG may declare 16000x16000)."""
    colour, depth, channels = kind
    data = _png_header(width, height, depth, colour, interlace)
    assert read_header(data) == ImageInfo("PNG", width, height, channels, depth)
    fits = (
        width <= TEMPLATE_LIMITS.max_width
        and height <= TEMPLATE_LIMITS.max_height
        and width * height <= TEMPLATE_LIMITS.max_pixels
        and 6 * width * height <= TEMPLATE_LIMITS.max_decode_bytes
    )
    try:
        check(data, TEMPLATE_LIMITS)
    except ImageRejected:
        assert not fits
    else:
        assert fits
