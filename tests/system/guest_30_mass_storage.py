"""An image file attached to the gadget's mass-storage LUN appears as a disk on the host side."""

from __future__ import annotations

import glob
import os
from pathlib import Path

from systest import wait_for

LUN = Path("/sys/kernel/config/usb_gadget/ipkvm/functions/mass_storage.usb0/lun.0")
MAGIC = b"ipkvm-systest-virtual-media\n"


def _usb_disks() -> list[str]:
    """Block devices the host side sees on USB: the gadget's LUN, present even when empty
    (removable), as /dev/sdX or, when the LUN is a CD-ROM (the gadget's default), /dev/srX."""
    return sorted(
        os.path.basename(dev)
        for dev in glob.glob("/sys/block/s[dr]*")
        if "/usb" in os.path.realpath(dev)
    )


def _size(disk: str) -> int:
    return int(Path(f"/sys/block/{disk}/size").read_text()) * 512


def _eject() -> None:
    forced = LUN / "forced_eject"  # the host may hold the medium locked (PREVENT MEDIUM REMOVAL)
    if forced.exists():
        forced.write_text("1\n")
    else:
        (LUN / "file").write_text("\n")


def _read_head(disk: str) -> bytes:
    try:
        with open(f"/dev/{disk}", "rb") as f:
            return f.read(len(MAGIC))
    except OSError:
        return b""


def test_lun_image_appears_as_block_device() -> None:
    assert LUN.is_dir(), "gadget built without mass storage ([gadget] mass_storage = true)"
    disk = wait_for(_usb_disks, 60, "the gadget's LUN as a block device on the host side")[0]
    size = 8 * 1024 * 1024
    image = Path("/tmp/systest-media.img")
    with image.open("wb") as f:
        f.write(MAGIC.ljust(512, b"\0"))
        f.truncate(size)
    (LUN / "file").write_text(f"{image}\n")
    try:
        wait_for(lambda: _size(disk) == size, 60, f"/dev/{disk} with an 8 MiB medium")
        wait_for(lambda: _read_head(disk) == MAGIC, 30, f"the image's first bytes on /dev/{disk}")
    finally:
        _eject()
    # the host notices the medium is gone when it next opens the drive (ENOMEDIUM)
    wait_for(lambda: _read_head(disk) == b"", 60, f"no medium in /dev/{disk} after the eject")
