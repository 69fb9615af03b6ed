"""EDID: what the HDMI receiver tells the source it can show; built, parsed and checked here.

Why the appliance sets one: an HDMI-to-CSI bridge has no EDID of its own, and a source shows
nothing until the receiver offers one (the field's second most common support topic is "no
signal"). The default offers what a KVM needs and a bridge can take: 1920x1080 at 60, 50 and 30 Hz
and 1280x720 at 60 and 50 Hz, RGB only (YCbCr 4:4:4 and 4:2:2 off: bridges of the TC358743 class
cannot take every YCbCr mode, and the capture pipeline converts to YUV itself), no audio.

Layout (VESA E-EDID 1.3 base block + one CEA-861 extension, 128 bytes each, each block's bytes
summing to 0 mod 256): header, manufacturer/product, basic parameters, established/standard
timings, four 18-byte descriptors (detailed timings, range limits, name), extension count and
checksum; the CEA block carries the video data block (VICs), the HDMI vendor-specific block
(physical address 1.0.0.0) and further detailed timings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

HEADER: Final = b"\x00\xff\xff\xff\xff\xff\xff\x00"
BLOCK: Final = 128
CEA_TAG: Final = 0x02
HDMI_OUI: Final = 0x000C03


class EdidError(ValueError):
    """Not a valid EDID (the message says what is wrong)."""


@dataclass(frozen=True)
class Timing:
    """A detailed timing (CEA-861 numbers): active size, porches and sync widths, pixel clock."""

    width: int
    height: int
    pixelclock: int  # Hz
    hfront: int
    hsync: int
    hback: int
    vfront: int
    vsync: int
    vback: int

    @property
    def refresh(self) -> float:
        total = (self.width + self.hfront + self.hsync + self.hback) * (
            self.height + self.vfront + self.vsync + self.vback
        )
        return self.pixelclock / total

    def __str__(self) -> str:
        return f"{self.width}x{self.height}p{self.refresh:.0f}"


# CEA-861 modes (VIC → timing) the default offers.
CEA_MODES: Final[dict[int, Timing]] = {
    16: Timing(1920, 1080, 148_500_000, 88, 44, 148, 4, 5, 36),  # 1080p60
    31: Timing(1920, 1080, 148_500_000, 528, 44, 148, 4, 5, 36),  # 1080p50
    34: Timing(1920, 1080, 74_250_000, 88, 44, 148, 4, 5, 36),  # 1080p30
    4: Timing(1280, 720, 74_250_000, 110, 40, 220, 5, 5, 20),  # 720p60
    19: Timing(1280, 720, 74_250_000, 440, 40, 220, 5, 5, 20),  # 720p50
}
DEFAULT_VICS: Final = (16, 31, 34, 4, 19)


def checksum(block: bytes | bytearray) -> int:
    """The byte that makes *block*'s first 127 bytes plus it sum to 0 mod 256."""
    return (-sum(block[:127])) & 0xFF


def _seal(block: bytearray) -> bytes:
    block[127] = checksum(block)
    return bytes(block)


def encode_dtd(t: Timing) -> bytes:
    """An 18-byte detailed timing descriptor (digital separate sync, +h +v, progressive)."""
    hblank = t.hfront + t.hsync + t.hback
    vblank = t.vfront + t.vsync + t.vback
    clock = t.pixelclock // 10_000
    return bytes(
        [
            clock & 0xFF,
            clock >> 8,
            t.width & 0xFF,
            hblank & 0xFF,
            (t.width >> 8) << 4 | hblank >> 8,
            t.height & 0xFF,
            vblank & 0xFF,
            (t.height >> 8) << 4 | vblank >> 8,
            t.hfront & 0xFF,
            t.hsync & 0xFF,
            (t.vfront & 0xF) << 4 | (t.vsync & 0xF),
            (t.hfront >> 8) << 6 | (t.hsync >> 8) << 4 | (t.vfront >> 4) << 2 | t.vsync >> 4,
            0x40,  # image size 320 x 180 mm (16:9), low bytes
            0xB4,
            0x10,  # high nibbles: 0x1 (h 320 = 0x140), 0x0 (v 180 = 0xB4)
            0,
            0,
            0x1E,  # digital separate sync, vsync +, hsync +
        ]
    )


def decode_dtd(d: bytes) -> Timing | None:
    """The timing of an 18-byte descriptor, or None for a display descriptor (clock 0)."""
    clock = d[0] | d[1] << 8
    if clock == 0:
        return None
    width = d[2] | (d[4] >> 4) << 8
    hblank = d[3] | (d[4] & 0xF) << 8
    height = d[5] | (d[7] >> 4) << 8
    vblank = d[6] | (d[7] & 0xF) << 8
    hfront = d[8] | (d[11] >> 6) << 8
    hsync = d[9] | ((d[11] >> 4) & 3) << 8
    vfront = d[10] >> 4 | ((d[11] >> 2) & 3) << 4
    vsync = (d[10] & 0xF) | (d[11] & 3) << 4
    return Timing(
        width,
        height,
        clock * 10_000,
        hfront,
        hsync,
        hblank - hfront - hsync,
        vfront,
        vsync,
        vblank - vfront - vsync,
    )


def _text_descriptor(tag: int, text: str) -> bytes:
    body = text.encode("ascii", "replace")[:13]
    if len(body) < 13:
        body += b"\n" + b" " * (12 - len(body))
    return bytes([0, 0, 0, tag, 0]) + body


def _pnp_id(vendor: str) -> bytes:
    if not re.fullmatch(r"[A-Z]{3}", vendor):
        raise EdidError(f"the vendor id is three capital letters, not {vendor!r}")
    value = 0
    for ch in vendor:
        value = value << 5 | (ord(ch) - ord("A") + 1)
    return value.to_bytes(2, "big")


def build(
    vics: tuple[int, ...] = DEFAULT_VICS,
    *,
    name: str = "ipkvm",
    vendor: str = "IPK",
    product: int = 0x0001,
    ycbcr444: bool = False,
    ycbcr422: bool = False,
) -> bytes:
    """A two-block EDID offering the CEA modes *vics* (the first is the preferred one)."""
    unknown = [v for v in vics if v not in CEA_MODES]
    if unknown or not vics:
        raise EdidError(f"modes must be some of VICs {sorted(CEA_MODES)}, not {list(vics)}")
    base = bytearray(BLOCK)
    base[0:8] = HEADER
    base[8:10] = _pnp_id(vendor)
    base[10:12] = product.to_bytes(2, "little")
    base[12:16] = (1).to_bytes(4, "little")  # serial
    base[16], base[17] = 1, 2024 - 1990  # week, year
    base[18], base[19] = 1, 3  # EDID 1.3
    base[20] = 0x80  # digital input
    base[21], base[22] = 32, 18  # 32 x 18 cm: 16:9
    base[23] = 120  # gamma 2.2
    base[24] = 0x0A | (0x08 if ycbcr444 else 0) | (0x10 if ycbcr422 else 0)  # RGB, preferred
    base[25:35] = bytes.fromhex("ee9ea3544c99260f5054")  # sRGB-like chromaticity
    base[35:38] = bytes([0x21, 0x08, 0x00])  # 640x480@60, 800x600@60, 1024x768@60
    base[38:54] = b"\x01\x01" * 8  # no standard timings
    first = CEA_MODES[vics[0]]
    second = next((CEA_MODES[v] for v in vics[1:] if CEA_MODES[v] != first), first)
    base[54:72] = encode_dtd(first)
    base[72:90] = encode_dtd(second)
    # range limits: 24-75 Hz vertical, 15-80 kHz horizontal, 150 MHz pixel clock, no GTF
    base[90:108] = bytes([0, 0, 0, 0xFD, 0, 24, 75, 15, 80, 15, 0, 0x0A]) + b" " * 6
    base[108:126] = _text_descriptor(0xFC, name)
    base[126] = 1  # one extension: CEA-861
    cea = bytearray(BLOCK)
    cea[0], cea[1] = CEA_TAG, 3
    video = bytes([2 << 5 | len(vics), *vics])  # the native mode is the first DTD
    # video capability block: RGB quantization range selectable (full/limited), as sources expect
    capability = bytes([7 << 5 | 2, 0x00, 0x4A])  # + IT and CE modes underscanned
    hdmi = bytes([3 << 5 | 5]) + HDMI_OUI.to_bytes(3, "little") + bytes([0x10, 0x00])
    blocks = video + capability + hdmi
    cea[4 : 4 + len(blocks)] = blocks
    dtd_offset = 4 + len(blocks)
    cea[2] = dtd_offset
    extra = [CEA_MODES[v] for v in vics if CEA_MODES[v] not in (first, second)][:2]
    for i, timing in enumerate(extra):
        cea[dtd_offset + 18 * i : dtd_offset + 18 * (i + 1)] = encode_dtd(timing)
    # underscanned (a KVM wants every pixel), YCbCr flags, one native DTD
    cea[3] = 0x80 | (0x20 if ycbcr444 else 0) | (0x10 if ycbcr422 else 0) | 1
    return _seal(base) + _seal(cea)


DEFAULT: Final = build()
"""The appliance's default EDID (see the module docstring)."""


@dataclass
class EdidInfo:
    """What a parsed EDID says, for the API and the CLI."""

    vendor: str
    product: int
    name: str = ""
    version: str = ""
    timings: list[str] = field(default_factory=list)
    vics: list[int] = field(default_factory=list)
    ycbcr444: bool = False
    ycbcr422: bool = False
    hdmi: bool = False
    extensions: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "vendor": self.vendor,
            "product": self.product,
            "name": self.name,
            "version": self.version,
            "timings": self.timings,
            "vics": self.vics,
            "ycbcr444": self.ycbcr444,
            "ycbcr422": self.ycbcr422,
            "hdmi": self.hdmi,
            "extensions": self.extensions,
        }


def parse(edid: bytes) -> EdidInfo:
    """Check and describe *edid*; raises :class:`EdidError` saying what is wrong."""
    if len(edid) < BLOCK or len(edid) % BLOCK:
        raise EdidError(f"an EDID is a multiple of 128 bytes, not {len(edid)}")
    if edid[:8] != HEADER:
        raise EdidError("the EDID header (00 ff ff ff ff ff ff 00) is missing")
    blocks = [edid[i : i + BLOCK] for i in range(0, len(edid), BLOCK)]
    for n, block in enumerate(blocks):
        if sum(block) & 0xFF:
            raise EdidError(
                f"block {n}: checksum {block[127]:#04x}, should be {checksum(block):#04x}"
            )
    if edid[126] != len(blocks) - 1:
        raise EdidError(
            f"the base block announces {edid[126]} extensions, {len(blocks) - 1} follow"
        )
    pnp = int.from_bytes(edid[8:10], "big")
    vendor = "".join(chr(((pnp >> s) & 0x1F) + ord("A") - 1) for s in (10, 5, 0))
    info = EdidInfo(
        vendor=vendor,
        product=int.from_bytes(edid[10:12], "little"),
        version=f"{edid[18]}.{edid[19]}",
        extensions=len(blocks) - 1,
    )
    for off in range(54, 126, 18):
        d = edid[off : off + 18]
        timing = decode_dtd(d)
        if timing is not None:
            info.timings.append(str(timing))
        elif d[3] == 0xFC:
            info.name = d[5:18].split(b"\n")[0].decode("ascii", "replace").strip()
    for block in blocks[1:]:
        if block[0] != CEA_TAG:
            continue
        info.ycbcr444 = bool(block[3] & 0x20)
        info.ycbcr422 = bool(block[3] & 0x10)
        dtd_offset = block[2] or 127
        i = 4
        while i < min(dtd_offset, 127):
            tag, length = block[i] >> 5, block[i] & 0x1F
            payload = block[i + 1 : i + 1 + length]
            if tag == 2:
                info.vics.extend(v & 0x7F if v & 0x7F <= 64 else v for v in payload)
            elif (
                tag == 3 and len(payload) >= 3 and int.from_bytes(payload[:3], "little") == HDMI_OUI
            ):
                info.hdmi = True
            i += 1 + length
        for off in range(dtd_offset, 127 - 17, 18):
            timing = decode_dtd(block[off : off + 18])
            if timing is None:
                break
            info.timings.append(str(timing))
    return info


def from_text(text: str) -> bytes:
    """EDID bytes from hex text (spaces, newlines, ``0x`` prefixes allowed), e.g. a .hex file."""
    cleaned = re.sub(r"0x|[\s,:]", "", text.strip(), flags=re.IGNORECASE)
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise EdidError("EDID hex text has characters that are not hex digits") from None


def load(data: bytes) -> bytes:
    """A custom EDID from a file's contents (binary, or hex text), checked."""
    edid = data if data[:8] == HEADER else from_text(data.decode("ascii", "replace"))
    parse(edid)
    return edid
