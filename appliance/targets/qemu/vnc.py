"""A small RFB (VNC) client for QEMU's built-in VNC server, over a socket pair handed to QEMU.

Only what reading QEMU's display needs (RFC 6143): protocol 3.8, security type None (QEMU's
``add_client`` with ``skipauth``), one 32-bit true-colour pixel format laid out as OpenCV's BGR
plus padding, and the encodings Raw, DesktopSize (the guest changed resolution) and QEMU's LED
State pseudo-encoding (-261: the guest's keyboard LEDs, which QMP cannot report).

Why Raw and no compression: the socket never leaves the machine, so bytes are free and CPU is
not; zlib/Tight would make QEMU compress and us decompress every changed rectangle. Why VNC at
all: QEMU sends only the rectangles that changed and only after we ask, so a still screen costs
nothing and a change arrives one refresh after it happens (bench/qemu_display.py measured it
against polling QMP ``screendump``: docs/qemu.md).
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from capture.frame import Image

ENCODING_RAW = 0
ENCODING_DESKTOP_SIZE = -223
ENCODING_QEMU_LED = -261
MAX_SIDE = 8192  # refuse a desktop larger than any QEMU display (a corrupt stream)

# bpp 32, depth 24, little-endian, true colour, 255/255/255, shifts 16/8/0 → bytes B, G, R, pad
PIXEL_FORMAT = struct.pack(">BBBBHHHBBB3x", 32, 24, 0, 1, 255, 255, 255, 16, 8, 0)


class RfbError(Exception):
    """The server spoke something this client does not understand, or refused us."""


def rfb_leds(state: int) -> int:
    """QEMU LED state (bit0 Scroll, bit1 Num, bit2 Caps) → HID LED bits (Num 1, Caps 2,
    Scroll 4)."""
    return (
        (0x01 if state & 0x02 else 0)
        | (0x02 if state & 0x04 else 0)
        | (0x04 if state & 0x01 else 0)
    )


@dataclass
class RfbClient:
    """One RFB connection. :meth:`handshake`, then :meth:`update` repeatedly."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    on_leds: Callable[[int], None] = lambda leds: None
    framebuffer: Image | None = None
    name: str = ""

    async def handshake(self) -> None:
        version = await self.reader.readexactly(12)
        if not version.startswith(b"RFB 003."):
            raise RfbError(f"not an RFB server: {version!r}")
        self.writer.write(b"RFB 003.008\n")
        (count,) = await self.reader.readexactly(1)
        if count == 0:
            (length,) = struct.unpack(">I", await self.reader.readexactly(4))
            reason = await self.reader.readexactly(length)
            raise RfbError(f"VNC server refused: {reason.decode(errors='replace')}")
        types = await self.reader.readexactly(count)
        if 1 not in types:
            raise RfbError(f"VNC server wants authentication (types {list(types)})")
        self.writer.write(b"\x01")
        (result,) = struct.unpack(">I", await self.reader.readexactly(4))
        if result != 0:
            raise RfbError("VNC security handshake failed")
        self.writer.write(b"\x01")  # ClientInit: shared
        width, height = struct.unpack(">HH", await self.reader.readexactly(4))
        await self.reader.readexactly(16)  # the server's pixel format: we set ours
        (length,) = struct.unpack(">I", await self.reader.readexactly(4))
        self.name = (await self.reader.readexactly(length)).decode(errors="replace")
        self._resize(width, height)
        encodings = (ENCODING_RAW, ENCODING_DESKTOP_SIZE, ENCODING_QEMU_LED)
        self.writer.write(b"\x00\x00\x00\x00" + PIXEL_FORMAT)  # SetPixelFormat
        self.writer.write(struct.pack(f">BxH{len(encodings)}i", 2, len(encodings), *encodings))
        self.request(incremental=False)
        await self.writer.drain()

    def request(self, *, incremental: bool = True) -> None:
        """FramebufferUpdateRequest for the whole screen."""
        assert self.framebuffer is not None
        h, w = self.framebuffer.shape[:2]
        self.writer.write(struct.pack(">BBHHHH", 3, int(incremental), 0, 0, w, h))

    def _resize(self, width: int, height: int) -> None:
        if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
            raise RfbError(f"implausible desktop size {width}x{height}")
        self.framebuffer = np.zeros((height, width, 3), np.uint8)

    async def update(self) -> bool:
        """Read messages until one framebuffer update is complete; True when pixels or the
        size changed (an update of only LEDs returns False)."""
        while True:
            (kind,) = await self.reader.readexactly(1)
            if kind == 0:
                return await self._framebuffer_update()
            if kind == 1:  # SetColourMapEntries (not with true colour, but legal)
                _, _, count = struct.unpack(">BHH", await self.reader.readexactly(5))
                await self.reader.readexactly(count * 6)
            elif kind == 2:  # Bell
                continue
            elif kind == 3:  # ServerCutText
                _, length = struct.unpack(">3sI", await self.reader.readexactly(7))
                await self.reader.readexactly(length)
            else:
                raise RfbError(f"unexpected RFB message type {kind}")

    async def _framebuffer_update(self) -> bool:
        _, count = struct.unpack(">BH", await self.reader.readexactly(3))
        changed = False
        for _ in range(count):
            x, y, w, h, encoding = struct.unpack(">HHHHi", await self.reader.readexactly(12))
            if encoding == ENCODING_RAW:
                data = await self.reader.readexactly(w * h * 4)
                fb = self.framebuffer
                assert fb is not None
                if x + w > fb.shape[1] or y + h > fb.shape[0]:
                    raise RfbError(f"rectangle {w}x{h}+{x}+{y} outside the screen")
                pixels = np.frombuffer(data, np.uint8).reshape(h, w, 4)
                fb[y : y + h, x : x + w] = pixels[:, :, :3]
                changed = True
            elif encoding == ENCODING_DESKTOP_SIZE:
                self._resize(w, h)
                changed = True
            elif encoding == ENCODING_QEMU_LED:
                (state,) = await self.reader.readexactly(1)
                self.on_leds(rfb_leds(state))
            else:
                raise RfbError(f"unexpected RFB encoding {encoding}")
        return changed
