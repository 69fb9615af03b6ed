"""The volume label of an ISO 9660 image (ECMA-119), read from its primary volume descriptor.

The volume descriptors start at logical sector 16 (2048-byte sectors): each is a type byte,
``CD001``, a version byte 1, and the rest. Type 1 is the primary volume descriptor; its
volume identifier is 32 "d-characters" at offset 40, padded with spaces. Type 255 ends the set.
Hybrid installer images (an MBR in sector 0, ISO 9660 from sector 16) read the same way.

Used by the demo target, which shows the label when it "boots" from the CD, and by the API to
describe an image. Reads at most a few sectors; never the whole file.
"""

from __future__ import annotations

from pathlib import Path

SECTOR = 2048
FIRST_DESCRIPTOR = 16
MAX_DESCRIPTORS = 32  # a real image has 2-4 (primary, boot record, Joliet, terminator)
MAGIC = b"CD001"
PRIMARY = 1
TERMINATOR = 255


def volume_label(path: Path | str) -> str | None:
    """The primary volume descriptor's volume identifier, stripped; None when *path* is not an
    ISO 9660 image (or cannot be read)."""
    try:
        with open(path, "rb") as f:
            for index in range(MAX_DESCRIPTORS):
                f.seek((FIRST_DESCRIPTOR + index) * SECTOR)
                block = f.read(SECTOR)
                if len(block) < SECTOR or block[1:6] != MAGIC:
                    return None
                if block[0] == PRIMARY:
                    return block[40:72].decode("ascii", "replace").strip(" \x00") or ""
                if block[0] == TERMINATOR:
                    return None
    except OSError:
        return None
    return None


def primary_descriptor(label: str, *, volume_sectors: int = 32) -> bytes:
    """A primary volume descriptor with *label* (tests and the demo build tiny ISO images)."""
    block = bytearray(SECTOR)
    block[0] = PRIMARY
    block[1:6] = MAGIC
    block[6] = 1
    block[8:40] = b" " * 32  # system identifier
    block[40:72] = label.encode("ascii")[:32].ljust(32)
    block[80:84] = volume_sectors.to_bytes(4, "little")
    block[84:88] = volume_sectors.to_bytes(4, "big")
    block[128:130] = SECTOR.to_bytes(2, "little")
    block[130:132] = SECTOR.to_bytes(2, "big")
    block[881] = 1  # file structure version
    return bytes(block)


def tiny_iso(label: str, size: int = 64 * SECTOR) -> bytes:
    """The smallest image :func:`volume_label` reads: 16 empty sectors, a primary volume
    descriptor, a terminator, padded to *size*."""
    terminator = bytearray(SECTOR)
    terminator[0] = TERMINATOR
    terminator[1:6] = MAGIC
    terminator[6] = 1
    head = bytes(FIRST_DESCRIPTOR * SECTOR) + primary_descriptor(
        label, volume_sectors=size // SECTOR
    )
    return (head + bytes(terminator)).ljust(size, b"\0")
