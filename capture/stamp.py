"""A machine-readable frame stamp: frame counter and capture time as black/white blocks.

Benchmarks read it back from what a viewer actually received (a JPEG, a decoded WebRTC frame, a
browser canvas) to measure latency end to end without trusting any log.

Layout: two rows of 40 square blocks at the top-left corner, block size ``width // 80`` pixels
(16 px at 1280 wide, 24 px at 1920), so the strip covers the left half of the top two block
rows. Block size follows the width so a scaled-down picture still decodes (the decoder uses
``width / 80``). The 80 blocks, row by row, carry (1 = white, 0 = black):

    1 0 1 0 | counter: 32 bits, MSB first | time: 32 bits | CRC-8 (poly 0x07) of those 8 bytes
    | 0 1 0 1

The leading and trailing markers give the decoder its black and white levels; the CRC rejects
pictures that carry no stamp. Whole blocks of flat black or white, aligned to the 8x8 grid of
JPEG/H.264 transforms, survive heavy compression (tested at JPEG quality 50).

The time is wall-clock milliseconds modulo 2**32 (:func:`stamp_clock_ms`), so a browser on the
same machine can compare it with ``Date.now()``.
"""

from __future__ import annotations

import time
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from capture.frame import Image

BLOCKS_PER_ROW: Final = 40
ROWS: Final = 2
WIDTH_DIVISOR: Final = 80  # block size = image width / 80
_START: Final = (1, 0, 1, 0)
_END: Final = (0, 1, 0, 1)
_MIN_CONTRAST: Final = 80.0


def stamp_clock_ms() -> int:
    """The stamp clock: wall-clock milliseconds modulo 2**32."""
    return time.time_ns() // 1_000_000 % (1 << 32)


def stamp_age_ms(stamp_ms: int, now_ms: int | None = None) -> int:
    """Milliseconds from *stamp_ms* to *now_ms* (default: now), correct across the 2**32 wrap."""
    now = stamp_clock_ms() if now_ms is None else now_ms
    age = (now - stamp_ms) % (1 << 32)
    return age - (1 << 32) if age >= 1 << 31 else age


def crc8(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def _bits(counter: int, ms: int) -> list[int]:
    payload = (counter % (1 << 32)).to_bytes(4, "big") + (ms % (1 << 32)).to_bytes(4, "big")
    value = int.from_bytes(payload + bytes([crc8(payload)]), "big")
    data = [(value >> (71 - i)) & 1 for i in range(72)]
    return [*_START, *data, *_END]


def stamp_block(width: int) -> int:
    return max(width // WIDTH_DIVISOR, 2)


def draw_stamp(image: Image, counter: int, ms: int) -> None:
    """Write the stamp into the top-left corner of *image*, in place."""
    block = stamp_block(image.shape[1])
    strip = np.asarray(_bits(counter, ms), np.uint8).reshape(ROWS, BLOCKS_PER_ROW) * 255
    big = np.repeat(np.repeat(strip, block, axis=0), block, axis=1)
    image[: ROWS * block, : BLOCKS_PER_ROW * block] = big[:, :, None]


def decode_stamp(image: npt.NDArray[Any]) -> tuple[int, int] | None:
    """``(counter, ms)`` from a stamped picture (possibly compressed or scaled), else None."""
    if image.ndim != 3 or image.shape[1] < WIDTH_DIVISOR or image.shape[0] < 4:
        return None
    block = image.shape[1] / WIDTH_DIVISOR
    if ROWS * block > image.shape[0]:
        return None
    levels: list[float] = []
    for row in range(ROWS):
        for col in range(BLOCKS_PER_ROW):
            # The middle half of the block: away from edges that compression smears.
            y0, y1 = int((row + 0.25) * block), int((row + 0.75) * block) + 1
            x0, x1 = int((col + 0.25) * block), int((col + 0.75) * block) + 1
            levels.append(float(image[y0:y1, x0:x1].mean()))
    ends = [*_START, *_END]
    marks = levels[:4] + levels[-4:]
    white = float(np.mean([v for v, b in zip(marks, ends, strict=True) if b]))
    black = float(np.mean([v for v, b in zip(marks, ends, strict=True) if not b]))
    if white - black < _MIN_CONTRAST:
        return None
    threshold = (white + black) / 2
    bits = [1 if v > threshold else 0 for v in levels]
    if tuple(bits[:4]) != _START or tuple(bits[-4:]) != _END:
        return None
    value = 0
    for bit in bits[4:-4]:
        value = (value << 1) | bit
    raw = value.to_bytes(9, "big")
    if crc8(raw[:8]) != raw[8]:
        return None
    return int.from_bytes(raw[:4], "big"), int.from_bytes(raw[4:8], "big")
