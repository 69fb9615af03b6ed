"""``[qemu]``: QEMU guests as targets (``target.kind = "qemu"``), launched or attached.

Read by :mod:`appliance.targets.qemu`. Either the appliance launches and supervises its guests
(``binary``, ``machine``, ``memory``, ``firmware``, ``disks``, ``cdrom``), or it attaches to
guests someone else runs through their QMP sockets (``attach``). With ``switch.driver = "qemu"``
each guest is one port of the switch (``switch.count`` guests, or one per ``attach`` socket).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from appliance.config import checks
from appliance.config.errors import ConfigError
from appliance.config.options import option

QemuAccel = Literal["auto", "kvm", "tcg"]
QemuDisplay = Literal["vnc", "screendump"]
QemuRestart = Literal["on-crash", "never"]
MAX_GUESTS = 16


def strings(key: str, value: Any) -> tuple[str, ...]:
    """A list of non-empty strings (paths, command-line arguments)."""
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(key, "must be a list of non-empty strings")
    if any("\0" in v for v in value):
        raise ConfigError(key, "must not contain NUL characters")
    return tuple(value)


def sockets(key: str, value: Any) -> tuple[str, ...]:
    found = strings(key, value)
    if len(found) > MAX_GUESTS:
        raise ConfigError(key, f"{len(found)} sockets; at most {MAX_GUESTS} guests")
    return found


@dataclass(frozen=True, slots=True, kw_only=True)
class QemuConfig:
    binary: str = option(
        "qemu-system-x86_64", check=checks.text, doc="QEMU system emulator to launch guests with"
    )
    machine: str = option("pc", check=checks.text, doc="QEMU machine type (-machine)")
    memory: int = option(64, check=checks.int_range(16, 1 << 20), doc="guest memory, MiB")
    firmware: str = option(
        "", check=checks.text, doc='-bios image (e.g. OVMF.fd); "": QEMU\'s SeaBIOS'
    )
    disks: tuple[str, ...] = option((), check=strings, doc="disk images (raw or qcow2)")
    cdrom: str = option("", check=checks.text, doc='ISO in the CD-ROM at launch; "": empty')
    accel: QemuAccel = option("auto", doc="auto: kvm when /dev/kvm opens, else tcg")
    boot_menu: bool = option(True, doc="SeaBIOS boot menu (-boot menu=on) with splash_ms")
    splash_ms: int = option(
        3000, check=checks.int_range(0, 60000), doc="how long SeaBIOS offers its boot menu, ms"
    )
    extra_args: tuple[str, ...] = option((), check=strings, doc="more QEMU arguments")
    display: QemuDisplay = option(
        "vnc", doc="how frames are read: vnc (pushed updates) or screendump (polled)"
    )
    restart: QemuRestart = option(
        "on-crash", doc="relaunch a launched guest whose QEMU died unasked"
    )
    run_dir: str = option(
        "", check=checks.text, doc='QMP sockets of launched guests; "": STATE_DIR/qemu'
    )
    attach: tuple[str, ...] = option(
        (), check=sockets, doc="QMP sockets of running guests to attach to (none: launch)"
    )
    timeout: float = option(5.0, check=checks.number(0.1, 60), doc="seconds a QMP command may take")
