"""The hardware target's virtual media: the USB gadget's mass-storage LUN in configfs.

Written against the kernel's f_mass_storage attributes (``functions/mass_storage.usb0/lun.0``):

- ``file``: the backing file or block device; writing it opens the medium, an empty write ejects.
- ``cdrom`` and ``ro``: the kernel refuses to change them while a medium is open (EBUSY), so they
  are written before ``file``. A CD-ROM is always read-only (the kernel forces it too).
- A change between CD-ROM and flash is seen by the host only after it enumerates the device
  again: the gadget is unbound and bound around it (a USB replug, ~1 s without keyboard and
  mouse on the host side). Inserting the same kind as before changes nothing else.
- ``forced_eject`` (Linux 5.x and later): ejects even when the host has locked the medium with
  PREVENT MEDIUM REMOVAL, which Windows and most Linux hosts do as soon as they mount it; an
  empty write to ``file`` then fails with EBUSY. Used when the kernel has it.

Why the gadget itself is not rebuilt here: changing the LUN's medium is what a real drive does
(the host sees a medium change, not a replug), and the "HID only" gadget (``[gadget]
mass_storage = false``) keeps working for firmwares that cannot enumerate both: the target then
has no virtual media (a null facet that says why).

Attribute writes are a few syscalls but the kernel opens the backing file in ``file``'s write
(a network block device may take its time), so they run in the thread pool with a time-out.
"""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import Callable
from pathlib import Path

from appliance.config.media import CdromCap
from appliance.targets.facets import ActionRefused, FacetUnavailable, MediaKind, MediaSpec

WRITE_TIMEOUT = 20.0

CDROM_MAX_SECTORS = 256 * 60 * 75 - 1
"""What mainline f_mass_storage (storage_common.c, ``fsg_lun_open``) serves of a CD-ROM medium:
1151999 sectors of 2048 bytes, ≈ 2.36 GB, the last address READ TOC can give in MSF form
(255:59:74). A larger file is cut there ("file too big: using only first 1151999 blocks" in the
kernel log) and the host reads errors past it: the field's "large Windows ISOs fail in CD mode".
Measured on Debian bookworm's 6.1 in the system test (guest_35_media.py): a 5 GiB image showed
1151999 sectors on the host side."""
CDROM_MAX_BYTES = CDROM_MAX_SECTORS * 2048

USB_F_MASS_STORAGE = Path("/sys/module/usb_f_mass_storage")
"""The loaded mass-storage function's sysfs directory (a built-in one has it too)."""


def cdrom_cap_lifted(module: Path = USB_F_MASS_STORAGE) -> bool | None:
    """Whether the loaded usb_f_mass_storage serves CD-ROM media past 1151999 sectors.

    The signal is the read-only module parameter ``large_cdrom`` that the image's patched build
    adds (image/oot-modules): ``Y`` means the cap is gone, ``N`` that it was loaded with the
    mainline behaviour. A module without the parameter is a mainline one (capped). None: the
    module is not loaded, so nothing can be said (the caller stays on the safe side). A
    parameter was chosen over ``modinfo`` or a version string because sysfs describes the
    module that is *running*, not a file on disk that depmod may or may not have picked.
    """
    try:
        value = (module / "parameters" / "large_cdrom").read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return False if module.is_dir() else None
    return value in ("Y", "y", "1")


def cdrom_cap_reason(cap: CdromCap, module: Path = USB_F_MASS_STORAGE) -> str | None:
    """Why an oversize CD-ROM must be refused, or None when it may be attached."""
    if cap == "off":
        return None
    if cap == "on":
        return '[media] cdrom_size_cap = "on"'
    lifted = cdrom_cap_lifted(module)
    if lifted:
        return None
    if lifted is None:
        return f"{module.name} is not loaded, so its CD-ROM size cap is unknown"
    return f"the loaded {module.name} has the mainline CD-ROM size cap (no large_cdrom=Y)"


class LunMedia:
    """One mass-storage LUN directory (on configfs, or a plain directory in tests)."""

    available = True

    def __init__(
        self,
        lun: Path,
        *,
        on_change: Callable[[], None] | None = None,
        cdrom_cap: CdromCap = "auto",
        module: Path = USB_F_MASS_STORAGE,
    ) -> None:
        """*cdrom_cap*: when to refuse CD-ROM media the kernel would cut (:data:`CdromCap`);
        *module*: the mass-storage function's sysfs directory, asked at each such attach."""
        self.lun = lun
        self.cdrom_cap = cdrom_cap
        self.module = module
        self.on_change = on_change or (lambda: None)
        self._label: str | None = None
        self._lock = asyncio.Lock()

    def _read(self, attr: str) -> str | None:
        try:
            return (self.lun / attr).read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            return None

    def _write(self, attr: str, value: str) -> None:
        _write_path(self.lun / attr, value)

    def medium(self) -> str:
        """The backing file the kernel has open ("" when the drive is empty)."""
        return self._read("file") or ""

    def status(self) -> dict[str, object]:
        if not self.lun.is_dir():
            return {
                "available": False,
                "inserted": False,
                "reason": f"no mass-storage LUN at {self.lun} (is the gadget set up?)",
            }
        path = self.medium()
        out: dict[str, object] = {"available": True, "inserted": bool(path)}
        if path:
            cdrom = self._read("cdrom") == "1"
            kind: MediaKind = "cdrom" if cdrom else "flash"
            out.update(
                path=path,
                label=self._label or Path(path).name,
                kind=kind,
                read_only=cdrom or self._read("ro") == "1",
            )
        return out

    async def insert(self, spec: MediaSpec) -> None:
        if not self.lun.is_dir():
            raise FacetUnavailable(f"no mass-storage LUN at {self.lun} (is the gadget set up?)")
        async with self._lock:
            if self.medium():
                raise ActionRefused("a medium is inserted: eject it first")
            cdrom = spec.kind == "cdrom"
            ro = cdrom or spec.read_only
            if cdrom and self.cdrom_cap != "off":
                size = await asyncio.to_thread(_size, spec.path)
                why = (
                    await asyncio.to_thread(cdrom_cap_reason, self.cdrom_cap, self.module)
                    if size > CDROM_MAX_BYTES
                    else None
                )
                if why:
                    raise ActionRefused(
                        f"{spec.label} is {size} bytes: this kernel's CD-ROM emulation serves "
                        f"only the first {CDROM_MAX_BYTES} (1151999 sectors), the host would "
                        f"read errors past it ({why}); attach it as a flash drive (hybrid ISOs "
                        "boot from it) or use the image's usb_f_mass_storage, which lifts the "
                        "cap (docs/media.md)"
                    )
            try:
                async with asyncio.timeout(WRITE_TIMEOUT):
                    await asyncio.to_thread(self._insert, str(spec.path), cdrom, ro)
            except TimeoutError:
                raise ActionRefused(f"the kernel did not open {spec.path} in time") from None
            except OSError as exc:
                raise ActionRefused(
                    f"the gadget refused {spec.path}: {exc.strerror or exc}"
                ) from exc
            self._label = spec.label
        self.on_change()

    def _insert(self, path: str, cdrom: bool, ro: bool) -> None:
        self._write("removable", "1")
        replug = self._read("cdrom") not in (None, str(int(cdrom)))
        udc_file = self.lun.parents[2] / "UDC"  # <gadget>/functions/mass_storage.usb0/lun.0
        udc = (self._read_path(udc_file) or "") if replug else ""
        if udc:
            # The host learnt "CD-ROM" or "disk" from INQUIRY when it enumerated the device and
            # never asks again: a change of kind is only seen after a replug (measured in the
            # system test: a LUN switched to flash stayed /dev/sr0). Unbind, change, bind.
            _write_path(udc_file, "")
        try:
            self._write("cdrom", str(int(cdrom)))
            self._write("ro", str(int(ro)))
            self._write("file", path)
        finally:
            if udc:
                _write_path(udc_file, udc)

    @staticmethod
    def _read_path(path: Path) -> str | None:
        try:
            return path.read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            return None

    async def eject(self) -> None:
        if not self.lun.is_dir():
            return
        async with self._lock:
            if not self.medium():
                return
            try:
                async with asyncio.timeout(WRITE_TIMEOUT):
                    await asyncio.to_thread(self._eject)
            except TimeoutError:
                raise ActionRefused("the kernel did not release the medium in time") from None
            except OSError as exc:
                if exc.errno == errno.EBUSY:
                    raise ActionRefused(
                        "the host has locked the medium and this kernel has no forced_eject"
                    ) from exc
                raise ActionRefused(f"eject failed: {exc.strerror or exc}") from exc
            self._label = None
        self.on_change()

    def _eject(self) -> None:
        if (self.lun / "forced_eject").exists():
            self._write("forced_eject", "1")
            if (self.lun / "file").read_text().strip():  # a plain directory (tests): no kernel
                self._write("file", "")
        else:
            self._write("file", "")


def _size(path: Path) -> int:
    """Bytes of a file or block device (0 when it cannot be opened: the kernel will say why)."""
    try:
        with open(path, "rb") as f:
            return f.seek(0, os.SEEK_END)
    except OSError:
        return 0


def _write_path(path: Path, value: str) -> None:
    """One ``write()`` of *value* and a newline (configfs takes an attribute in one call)."""
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC | (0 if path.exists() else os.O_CREAT), 0o644)
    try:
        os.write(fd, value.encode() + b"\n")
    finally:
        os.close(fd)
