"""The QEMU command line of a launched guest, built from ``[qemu]`` (a pure function: tested
without running QEMU).

Choices, and why:

- ``-nodefaults`` then exactly the devices the facets drive: a std VGA (SeaBIOS and OVMF both
  draw on it), an IDE CD-ROM with the qdev id ``cdrom0`` (:mod:`.media` changes its medium), a
  USB tablet (an absolute pointer; the PS/2 mouse stays for relative reports and BIOSes);
- ``-vnc none``: a VNC server with no listener, so the display (:mod:`.vnc`) hands QEMU one end
  of a socket pair through QMP ``add_client`` — no socket file, no port, no password to leak;
- ``-no-shutdown``: a guest that powers itself off keeps its QEMU (status ``shutdown``), so
  "power on" is a reset and ``cont`` (milliseconds) instead of a new process;
- ``accel = "auto"`` passes ``-accel kvm -accel tcg``: QEMU itself falls back to TCG when KVM
  cannot be initialised (no /dev/kvm, no permission, nested virtualisation off), which a check
  of /dev/kvm from outside cannot tell as reliably.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from appliance.config import QemuConfig

CDROM_ID = "cdrom0"
"""The qdev id of the launched guests' CD-ROM drive (``blockdev-change-medium id=``)."""


def _value(text: str) -> str:
    """A value inside a QEMU option list: commas are doubled."""
    return text.replace(",", ",,")


def disk_format(path: str) -> str:
    """qcow2 by its suffix, else raw (named, so QEMU does not probe and warn)."""
    return "qcow2" if path.endswith(".qcow2") else "raw"


def guest_argv(q: QemuConfig, name: str) -> list[str]:
    """The command line of guest *name* (without ``-qmp``, which the guest adds).

    ``{name}`` in ``disks``, ``cdrom`` and ``extra_args`` becomes the guest's name ("guest1"...),
    so several guests get their own disk image or serial log from one configuration.
    """

    def own(text: str) -> str:
        return text.replace("{name}", name)

    accel = ["-accel", "kvm", "-accel", "tcg"] if q.accel == "auto" else ["-accel", q.accel]
    argv = [
        q.binary,
        "-name",
        _value(name),
        "-nodefaults",
        "-no-user-config",
        "-machine",
        _value(q.machine),
        *accel,
        "-m",
        str(q.memory),
        "-vga",
        "std",
        "-display",
        "none",
        "-vnc",
        "none",
        "-no-shutdown",
        "-usb",
        "-device",
        "usb-tablet",
    ]
    if q.firmware:
        argv += ["-bios", q.firmware]
    if q.boot_menu:
        argv += ["-boot", f"menu=on,splash-time={q.splash_ms}"]
    for index, disk in enumerate(own(d) for d in q.disks):
        argv += [
            "-drive",
            f"file={_value(disk)},if=ide,index={index},media=disk,format={disk_format(disk)}",
        ]
    cd = "if=none,id=cd0,media=cdrom,readonly=on"
    if q.cdrom:
        cd += f",file={_value(own(q.cdrom))},format=raw"
    # no bus: QEMU puts the CD in the first free IDE/AHCI slot after the disks (pc and q35)
    argv += ["-drive", cd, "-device", f"ide-cd,drive=cd0,id={CDROM_ID}"]
    argv += [own(arg) for arg in q.extra_args]
    return argv
