"""An image file attached to the gadget's mass-storage LUN appears as a disk on the host side."""

from __future__ import annotations

import glob
import os
from pathlib import Path

from systest import wait_for

LUN = Path("/sys/kernel/config/usb_gadget/ipkvm/functions/mass_storage.usb0/lun.0")
MAGIC = b"ipkvm-systest-virtual-media\n"


def _usb_disks() -> set[str]:
    disks = set()
    for dev in glob.glob("/sys/block/sd*"):
        if "/usb" in os.path.realpath(dev):
            disks.add(os.path.basename(dev))
    return disks


def test_lun_image_appears_as_block_device() -> None:
    assert LUN.is_dir(), "gadget built without mass storage ([gadget] mass_storage = true)"
    image = Path("/tmp/systest-media.img")
    with image.open("wb") as f:
        f.write(MAGIC.ljust(512, b"\0"))
        f.truncate(8 * 1024 * 1024)
    before = _usb_disks()
    (LUN / "file").write_text(f"{image}\n")
    try:
        disk = wait_for(lambda: _usb_disks() - before, 30, "a USB disk on the host side").pop()

        def read_head() -> bytes:
            try:
                with open(f"/dev/{disk}", "rb") as f:
                    return f.read(len(MAGIC))
            except OSError:
                return b""

        head = wait_for(lambda: read_head() == MAGIC, 30, f"/dev/{disk} readable")
        assert head
        size = int(Path(f"/sys/block/{disk}/size").read_text()) * 512
        assert size == 8 * 1024 * 1024, size
    finally:
        (LUN / "file").write_text("\n")
