"""Check an uploaded image's header before anything decodes it (the decompression-bomb guard).

A PNG or JPEG says how big it is in a few header bytes, and a decoder allocates the whole picture
from those bytes before it reads a single pixel. A 31 KB PNG (16000x16000, one bit per pixel,
zlib-compressed zero rows) made ``cv2.imdecode`` allocate 1.5 GB in 4.3 s here, and the service
went on to 6 GB; a 4.5 KB one (6000x6000) cost 1 GB and 5 s. The request body limit (1 MB) does
not help: compression is what makes the file small. So every image a user sends goes through
:func:`check` first: it reads the header with the standard library (no decoder runs), refuses
formats it cannot read, and refuses pictures whose size exceeds the caller's :class:`Limits`, with a
message naming the dimensions and the limit.

To accept a new image input, call :func:`check` with a :class:`Limits` for it before decoding (and
decode off the event loop). To accept a new format, add a header reader to ``_READERS``: a format
without one is refused, never decoded blind.

This module imports only the standard library, so the script parser (and the CLI) can use it.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"


class ImageRejected(ValueError):
    """The image cannot be accepted; the message says why, for the user (a 4xx, not a 500)."""


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What the header says, before any decoding."""

    format: str  # "PNG" or "JPEG"
    width: int
    height: int
    channels: int  # as stored: 1 grey, 2 grey+alpha, 3 colour, 4 colour+alpha or CMYK
    bit_depth: int  # bits per sample as stored (PNG 1..16, JPEG 8 or 12)
    buffered: bool = False
    """JPEG only: progressive or multi-scan, so libjpeg keeps every DCT coefficient of the whole
    picture (2 bytes per sample) until the last scan, on top of the decoded pixels."""

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"

    def decode_bytes(self, out_channels: int = 3) -> int:
        """Peak memory of decoding to 8-bit *out_channels* (an estimate from above).

        Two copies of the output: ``cv2.imdecode`` decodes into a buffer of its own and copies
        (measured here with ``IMREAD_COLOR``, peak RSS over 3840x2160 pictures: 6.7 bytes per
        pixel for PNG of every colour type and bit depth and for baseline JPEG, about 3 MB of it
        fixed; 1.5 GB, 5.7 bytes per pixel, for the 16000x16000 bomb). A progressive or multi-scan
        JPEG adds libjpeg's whole-picture coefficient buffer, 2 bytes per stored sample (9.4 bytes
        per pixel measured for progressive 4:4:4 colour, estimated 12). Bit depth does not count:
        OpenCV strips 16-bit samples while reading rows.
        """
        total = 2 * self.pixels * out_channels
        if self.buffered:
            total += self.pixels * self.channels * 2
        return total


@dataclass(frozen=True, slots=True)
class Limits:
    """What one kind of input accepts. ``what`` names it in messages ("template", "image")."""

    max_width: int
    max_height: int
    max_pixels: int
    max_decode_bytes: int
    formats: frozenset[str] = frozenset({"PNG", "JPEG"})
    what: str = "image"
    max_jpeg_scans: int = 100
    """A progressive JPEG is decoded once per scan; encoders write at most a few dozen (libjpeg's
    default script has 10, ``jpegtran -optimize`` tries 64 at most), while a 1 MB file of empty
    scans over a large picture keeps a core busy for minutes."""


def check(data: bytes, limits: Limits) -> ImageInfo:
    """Read *data*'s header and check it against *limits*; raise :class:`ImageRejected` if it
    must not be decoded. Costs microseconds: safe to call on the event loop."""
    info = read_header(data, limits.what)
    if info.format not in limits.formats:
        accepted = " or ".join(sorted(limits.formats))
        raise ImageRejected(f"{limits.what} is a {info.format} image; only {accepted} is accepted")
    if info.width > limits.max_width or info.height > limits.max_height:
        raise ImageRejected(
            f"{limits.what} is {info.size} pixels; at most "
            f"{limits.max_width}x{limits.max_height} is accepted"
        )
    if info.pixels > limits.max_pixels:
        raise ImageRejected(
            f"{limits.what} is {info.size} = {info.pixels:,} pixels; at most "
            f"{limits.max_pixels:,} pixels are accepted"
        )
    if info.format == "JPEG":
        scans = data.count(b"\xff\xda")  # entropy-coded data stuffs 0xFF as FF 00: exact or more
        if scans > limits.max_jpeg_scans:
            raise ImageRejected(
                f"{limits.what} is a JPEG with {scans} scans; at most {limits.max_jpeg_scans}"
            )
    cost = info.decode_bytes()
    if cost > limits.max_decode_bytes:
        kind = "progressive JPEG" if info.buffered else info.format
        raise ImageRejected(
            f"{limits.what} is a {info.size} {kind}, which takes about {cost >> 20} MB to decode;"
            f" at most {limits.max_decode_bytes >> 20} MB is allowed (a smaller or baseline image"
            " is fine)"
        )
    return info


def read_header(data: bytes, what: str = "image") -> ImageInfo:
    """Format and dimensions from the first bytes; :class:`ImageRejected` if unknown or corrupt."""
    if not data:
        raise ImageRejected(f"{what} is empty")
    for magic, reader in _READERS:
        if data.startswith(magic):
            return reader(data, what)
    raise ImageRejected(f"{what} is not a decodable image: only PNG and JPEG are accepted")


# ---------------------------------------------------------------------------- PNG
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel as stored
_PNG_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
_PNG_MAX_SIDE = 2**31 - 1  # the PNG specification's own limit


def _png(data: bytes, what: str) -> ImageInfo:
    """The IHDR chunk, which the PNG specification puts first, right after the signature."""
    head = data[8 : 8 + 8 + 13 + 4]
    if len(head) < 25:
        raise ImageRejected(f"{what}: PNG is truncated before its header")
    length, kind = struct.unpack(">I4s", head[:8])
    if kind != b"IHDR" or length != 13:
        raise ImageRejected(f"{what}: PNG does not start with a valid IHDR chunk")
    body = head[8:21]
    (crc,) = struct.unpack(">I", head[21:25])
    if zlib.crc32(kind + body) != crc:
        raise ImageRejected(f"{what}: PNG header is corrupt (IHDR checksum)")
    width, height, depth, colour, compression, filtering, interlace = struct.unpack(
        ">IIBBBBB", body
    )
    if not (0 < width <= _PNG_MAX_SIDE and 0 < height <= _PNG_MAX_SIDE):
        raise ImageRejected(f"{what}: PNG header gives an invalid size {width}x{height}")
    if colour not in _PNG_CHANNELS or depth not in _PNG_DEPTHS[colour]:
        raise ImageRejected(f"{what}: PNG header gives colour type {colour} with {depth}-bit")
    if compression or filtering or interlace > 1:
        raise ImageRejected(f"{what}: PNG header uses unknown compression/filter/interlace")
    return ImageInfo("PNG", width, height, _PNG_CHANNELS[colour], depth)


# ---------------------------------------------------------------------------- JPEG
# Start-of-frame markers libjpeg-turbo decodes (baseline, extended, progressive; Huffman or
# arithmetic). Lossless (C3) and hierarchical (C5-C7, CD-CF) frames are refused: OpenCV cannot
# return them as 8-bit colour, and refusing is simpler than estimating their cost.
_SOF_DECODABLE = {0xC0: False, 0xC1: False, 0xC2: True, 0xC9: False, 0xCA: True}  # -> progressive
_SOF_OTHER = {0xC3, 0xC5, 0xC6, 0xC7, 0xCB, 0xCD, 0xCE, 0xCF}
_NO_LENGTH = {0x01, *range(0xD0, 0xD8)}  # TEM, RSTn: markers without a length field


def _jpeg(data: bytes, what: str) -> ImageInfo:
    """Walk the marker segments from SOI to the first start-of-frame (SOFn).

    Segments are skipped by their length, never searched for by byte pattern: an EXIF block
    (APP1) carries a whole thumbnail JPEG with its own SOF, which says nothing about the picture.
    """
    pos = 2
    end = len(data)
    while pos < end:
        if data[pos] != 0xFF:
            raise ImageRejected(f"{what}: JPEG header is corrupt (no marker at byte {pos})")
        while pos < end and data[pos] == 0xFF:  # fill bytes may precede a marker
            pos += 1
        if pos >= end:
            break
        marker = data[pos]
        pos += 1
        if marker in _NO_LENGTH:
            continue
        if marker in (0xD8, 0xD9, 0xDA):  # SOI again, EOI, SOS: the frame header was missing
            raise ImageRejected(f"{what}: JPEG has no frame header before its image data")
        if pos + 2 > end:
            break
        (length,) = struct.unpack(">H", data[pos : pos + 2])
        if length < 2:
            raise ImageRejected(f"{what}: JPEG header is corrupt (segment length {length})")
        segment = data[pos + 2 : pos + length]
        if marker in _SOF_OTHER:
            raise ImageRejected(f"{what}: lossless and hierarchical JPEG are not supported")
        if marker in _SOF_DECODABLE:
            if len(segment) < 6:
                break
            depth, height, width, components = struct.unpack(">BHHB", segment[:6])
            if height == 0 or width == 0:
                raise ImageRejected(f"{what}: JPEG header gives an invalid size {width}x{height}")
            if depth not in (8, 12) or components not in (1, 3, 4):
                raise ImageRejected(
                    f"{what}: JPEG with {components} components of {depth} bits is not supported"
                )
            # Several scans also mean a whole-picture coefficient buffer (non-interleaved
            # baseline). Counted after this header, so an EXIF thumbnail's scan is not; the count
            # is an upper bound (see :func:`check`), so is the cost.
            buffered = _SOF_DECODABLE[marker] or data.count(b"\xff\xda", pos + length) > 1
            return ImageInfo("JPEG", width, height, components, depth, buffered)
        pos += length
    raise ImageRejected(f"{what}: JPEG is truncated before its frame header")


_READERS: tuple[tuple[bytes, Callable[[bytes, str], ImageInfo]], ...] = (
    (PNG_MAGIC, _png),
    (JPEG_MAGIC, _jpeg),
)


# ---------------------------------------------------------------------------- limits per input
TEMPLATE_LIMITS = Limits(
    max_width=7680,
    max_height=4320,
    max_pixels=3840 * 2160,
    max_decode_bytes=64 << 20,
    what="template",
)
"""Screen-wait templates (``POST /api/screen/wait``, script ``WAITFOR``).

A template is matched unscaled inside a captured frame, so one larger than the screen only ever
fails; the sides are capped at the largest capture mode the configuration accepts (``video.width``
and ``video.height``, 7680x4320). The total is capped at 4K (8.3 megapixels): real templates are
cut-outs of a screen (a menu entry, a dialog), and a whole 4K screen decodes to 25 MB and peaks at
53 MB (measured, see :meth:`ImageInfo.decode_bytes`), which a 512 MB board can afford one at a
time, where the 8K maximum (33 megapixels, 210 MB) it could not. ``max_decode_bytes`` (64 MiB)
lets every PNG and baseline JPEG up to the pixel cap through (50 MB estimated at 4K) and refuses
the progressive JPEGs whose coefficient buffer would push a 4K one to 100 MB.
"""
