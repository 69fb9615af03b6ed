"""Build, bind and tear down the USB gadget (keyboard + two mice, optional mass storage) in
configfs.

Written against the kernel's configfs interface (Documentation/usb/gadget_configfs.rst), and just
as happy on a plain directory so tests can check every file. Two differences matter:

- On configfs ``mkdir functions/hid.x`` creates the attribute files; on a plain directory they do
  not exist. So normal attributes are written with create-if-missing, while *probed* attributes
  (``no_out_endpoint``, ``wakeup_on_write``: newer kernels only) are written only if the file is
  already there.
- On configfs ``rmdir`` removes a directory together with its attribute files; a plain directory
  must be emptied first. Teardown empties directories only when the tree is *not* on configfs.

Setup is idempotent: each attribute is compared with what is there and written only on a
difference. A bound gadget whose tree already matches is left alone (the host sees nothing);
one that needs a change is unbound, changed and bound again (the host sees a replug).

Each HID function becomes ``/dev/hidgN``; the kernel picks N when the function directory is
created, so functions are created in order: keyboard, absolute mouse, relative mouse.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from hid.descriptors import DEFAULT_FUNCTIONS, HidFunction

DEFAULT_ROOT = Path("/sys/kernel/config/usb_gadget")
DEFAULT_UDC_DIR = Path("/sys/class/udc")
LANG = "0x409"  # US English string descriptors
CONFIG = "c.1"
MASS_STORAGE = "mass_storage.usb0"


class GadgetError(Exception):
    """A user-facing problem (no configfs, no UDC, permission, UDC busy): one clear line."""


@dataclass(frozen=True, slots=True)
class MassStorage:
    """The virtual-media LUN. ``file`` empty = no medium; CD-ROM mode implies read-only."""

    file: str = ""
    cdrom: bool = True
    ro: bool = True
    removable: bool = True
    nofua: bool = False
    inquiry_string: str = "ipkvm   Virtual Media"  # vendor (8) + product (16), ≤ 28 chars


@dataclass(frozen=True, slots=True)
class GadgetConfig:
    root: Path = DEFAULT_ROOT
    name: str = "ipkvm"
    udc_dir: Path = DEFAULT_UDC_DIR
    vendor_id: int = 0x1D6B  # Linux Foundation
    product_id: int = 0x0104  # Multifunction Composite Gadget
    bcd_device: int = 0x0100  # bump to make hosts re-enumerate after a descriptor change
    bcd_usb: int = 0x0200
    manufacturer: str = "ipkvm"
    product: str = "ipkvm Composite KVM Device"
    serial: str = "ipkvm0001"
    configuration: str = "ipkvm HID"
    max_power: int = 250  # mA
    attributes: int = 0xA0  # bus powered + remote wakeup
    functions: tuple[HidFunction, ...] = DEFAULT_FUNCTIONS
    mass_storage: MassStorage | None = None  # None = "HID only" (some UEFIs need it)
    wakeup_on_write: bool = True

    @property
    def path(self) -> Path:
        return self.root.absolute() / self.name


@dataclass
class GadgetStatus:
    name: str
    path: Path
    exists: bool
    udc: str | None = None  # bound UDC, None when unbound
    state: str | None = None  # /sys/class/udc/<udc>/state: "configured" once a host enumerated
    functions: list[str] = field(default_factory=list)  # linked into the config, in link order
    devices: dict[str, Path] = field(default_factory=dict)  # HID function name → /dev/hidgN
    medium: str | None = None  # mass storage file, "" when empty, None without mass storage

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "path": str(self.path),
            "exists": self.exists,
            "udc": self.udc,
            "state": self.state,
            "functions": self.functions,
            "devices": {k: str(v) for k, v in self.devices.items()},
            "medium": self.medium,
        }


# --------------------------------------------------------------------------- file helpers
def is_configfs(path: Path) -> bool:
    """True when *path* lives on a configfs mount (from /proc/self/mounts)."""
    target = os.path.realpath(path)
    best, fstype = "", ""
    try:
        with open("/proc/self/mounts", encoding="utf-8") as f:
            for line in f:
                parts = line.split()
                if len(parts) < 3:
                    continue
                mnt = parts[1].replace("\\040", " ")
                inside = target == mnt or target.startswith(mnt.rstrip("/") + "/")
                if inside and len(mnt) > len(best):
                    best, fstype = mnt, parts[2]
    except OSError:
        return False
    return fstype == "configfs"


def _same(current: bytes, wanted: bytes, text: bool) -> bool:
    """Compare an attribute's content with what we would write, the way the kernel parses it:
    ``0x1d6b`` equals ``7531``; for text, trailing newline and padding do not matter (the kernel
    pads ``inquiry_string`` to 28 characters). Binary values (report_desc) compare exactly."""
    if not text:
        return current == wanted
    a, b = current.rstrip(), wanted.rstrip()
    if a == b:
        return True
    try:
        return int(a, 0) == int(b, 0)
    except ValueError:
        return False


class _Writer:
    """Writes attributes, or in dry-run mode only records what it would change."""

    def __init__(self, dry_run: bool) -> None:
        self.dry_run = dry_run
        self.changes: list[str] = []

    def mkdir(self, path: Path) -> None:
        if path.is_dir():
            return
        self.changes.append(f"mkdir {path}")
        if not self.dry_run:
            with _errors(path):
                path.mkdir(parents=True, exist_ok=True)

    def write(self, path: Path, value: str | bytes, *, probe: bool = False) -> None:
        """Write *value* (text gets a trailing newline, like ``echo``); a *probe* attribute only
        when the kernel created its file."""
        data = value if isinstance(value, bytes) else value.encode() + b"\n"
        try:
            current: bytes | None = path.read_bytes()
        except FileNotFoundError:
            current = None
        except OSError as exc:
            raise _user_error(exc, path) from exc
        if current is None and probe:
            return
        if current is not None and _same(current, data, text=isinstance(value, str)):
            return
        self.changes.append(f"write {path}")
        if not self.dry_run:
            write_attr(path, data)

    def symlink(self, target: Path, link: Path) -> None:
        # configfs reports its links as relative paths: compare where they lead.
        if link.is_symlink() and os.path.realpath(link) == os.path.realpath(target):
            return
        self.changes.append(f"link {link}")
        if self.dry_run:
            return
        with _errors(link):
            if link.is_symlink():
                link.unlink()
            os.symlink(target, link)


def write_attr(path: Path, data: bytes) -> None:
    """One ``write()`` call: configfs attributes take the whole value at once."""
    with _errors(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            n = os.write(fd, data)
        finally:
            os.close(fd)
    if n != len(data):
        raise GadgetError(f"short write to {path}: {n} of {len(data)} bytes")


def _user_error(exc: OSError, path: Path) -> GadgetError:
    if exc.errno in (errno.EACCES, errno.EPERM):
        return GadgetError(f"permission denied on {path}: run as root")
    if exc.errno == errno.EBUSY:
        return GadgetError(f"{path} is busy (UDC used by another gadget, or gadget bound)")
    return GadgetError(f"{path}: {exc.strerror or exc}")


@contextmanager
def _errors(path: Path) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise _user_error(exc, path) from exc


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


# --------------------------------------------------------------------------- tree
def _apply(cfg: GadgetConfig, w: _Writer) -> None:
    """Create or update every directory, attribute and link of the gadget (not UDC)."""
    g = cfg.path
    w.mkdir(g)
    w.write(g / "idVendor", f"{cfg.vendor_id:#06x}")
    w.write(g / "idProduct", f"{cfg.product_id:#06x}")
    w.write(g / "bcdDevice", f"{cfg.bcd_device:#06x}")
    w.write(g / "bcdUSB", f"{cfg.bcd_usb:#06x}")
    strings = g / "strings" / LANG
    w.mkdir(strings)
    w.write(strings / "manufacturer", cfg.manufacturer)
    w.write(strings / "product", cfg.product)
    w.write(strings / "serialnumber", cfg.serial)

    c = g / "configs" / CONFIG
    w.mkdir(c)
    w.write(c / "MaxPower", str(cfg.max_power))
    w.write(c / "bmAttributes", f"{cfg.attributes:#04x}")
    w.mkdir(c / "strings" / LANG)
    w.write(c / "strings" / LANG / "configuration", cfg.configuration)

    # Functions are created in order (that order is the /dev/hidgN order), then linked.
    linked: list[str] = []
    for fn in cfg.functions:
        _function(w, g / "functions" / f"hid.{fn.name}", c, partial(_hid, cfg, fn))
        linked.append(f"hid.{fn.name}")
    if cfg.mass_storage is not None:
        body = partial(_apply_mass_storage, cfg.mass_storage)
        _function(w, g / "functions" / MASS_STORAGE, c, body)
        linked.append(MASS_STORAGE)

    wanted = set(linked)
    for entry in sorted(c.iterdir()) if c.is_dir() else []:
        if entry.is_symlink() and entry.name not in wanted:  # e.g. mass storage switched off
            w.changes.append(f"unlink {entry}")
            if not w.dry_run:
                with _errors(entry):
                    entry.unlink()
    # Interfaces are numbered in link order: if any link is missing, relink all in order.
    if not all((c / name).is_symlink() for name in linked):
        for name in linked:
            if (c / name).is_symlink():
                w.changes.append(f"unlink {c / name}")
                if not w.dry_run:
                    with _errors(c / name):
                        (c / name).unlink()
    for name in linked:
        w.symlink(g / "functions" / name, c / name)
    if cfg.mass_storage is None and (g / "functions" / MASS_STORAGE).is_dir():
        w.changes.append(f"rmdir {g / 'functions' / MASS_STORAGE}")
        if not w.dry_run:
            _remove_dir(g / "functions" / MASS_STORAGE, is_configfs(g))


def _function(w: _Writer, fdir: Path, config: Path, body: Callable[[_Writer, Path], None]) -> None:
    """Create a function directory and write its attributes. The kernel refuses to change a
    function that is linked into a config (it is in use even when unbound), so a function that
    needs a change is unlinked first; the caller links it again."""
    w.mkdir(fdir)
    trial = _Writer(dry_run=True)
    body(trial, fdir)
    link = config / fdir.name
    if trial.changes and link.is_symlink():
        w.changes.append(f"unlink {link}")
        if not w.dry_run:
            with _errors(link):
                link.unlink()
    body(w, fdir)


def _hid(cfg: GadgetConfig, fn: HidFunction, w: _Writer, f: Path) -> None:
    w.write(f / "protocol", str(fn.protocol))
    w.write(f / "subclass", str(fn.subclass))
    w.write(f / "report_length", str(fn.report_length))
    w.write(f / "report_desc", fn.report_desc)
    if fn.no_out_endpoint:
        w.write(f / "no_out_endpoint", "1", probe=True)
    if cfg.wakeup_on_write:
        w.write(f / "wakeup_on_write", "1", probe=True)


def _apply_mass_storage(ms: MassStorage, w: _Writer, f: Path) -> None:
    lun = f / "lun.0"
    w.mkdir(lun)  # configfs creates lun.0 itself; a plain directory needs it made
    ro = ms.ro or ms.cdrom
    wanted = {"cdrom": ms.cdrom, "ro": ro}
    current_file = _read(lun / "file")
    mode_changes = any(
        (v := _read(lun / k)) is not None and v != str(int(b)) for k, b in wanted.items()
    )
    if current_file and mode_changes:
        w.write(lun / "file", "")  # the kernel refuses ro/cdrom changes with a medium inserted
    w.write(lun / "removable", str(int(ms.removable)))
    w.write(lun / "cdrom", str(int(ms.cdrom)))
    w.write(lun / "ro", str(int(ro)))
    w.write(lun / "nofua", str(int(ms.nofua)))
    w.write(lun / "inquiry_string", ms.inquiry_string[:28])
    w.write(lun / "file", ms.file)


def hidg_devices(cfg: GadgetConfig, dev_dir: Path = Path("/dev")) -> dict[str, Path]:
    """HID function name → character device. Uses the kernel's ``dev`` attribute (major:minor)
    when present, else assumes minors in creation order (true when no other HID gadget exists)."""
    out: dict[str, Path] = {}
    for index, fn in enumerate(cfg.functions):
        minor = index
        dev = _read(cfg.path / "functions" / f"hid.{fn.name}" / "dev")
        if dev and ":" in dev:
            try:
                minor = int(dev.split(":", 1)[1])
            except ValueError:
                pass
        out[fn.name] = dev_dir / f"hidg{minor}"
    return out


# --------------------------------------------------------------------------- UDC
def find_udc(udc_dir: Path = DEFAULT_UDC_DIR) -> str:
    """The first USB device controller (``dwc2``'s ``fe980000.usb``, ``dummy_udc.0`` ...)."""
    try:
        names = sorted(p.name for p in udc_dir.iterdir())
    except FileNotFoundError:
        names = []
    if not names:
        raise GadgetError(
            f"no USB device controller in {udc_dir} (is the OTG port in peripheral mode: "
            "dtoverlay=dwc2, or dummy_hcd loaded?)"
        )
    return names[0]


def bound_udc(cfg: GadgetConfig) -> str | None:
    name = _read(cfg.path / "UDC")
    return name or None


def bind(cfg: GadgetConfig, udc: str = "auto") -> str:
    """Bind to *udc* ("auto": the first in ``udc_dir``); returns the UDC name."""
    name = find_udc(cfg.udc_dir) if udc == "auto" else udc
    current = bound_udc(cfg)
    if current == name:
        return name
    if current:
        unbind(cfg)
    write_attr(cfg.path / "UDC", name.encode() + b"\n")
    return name


def unbind(cfg: GadgetConfig) -> None:
    """Detach from the UDC: the host sees the device unplugged."""
    if bound_udc(cfg):
        write_attr(cfg.path / "UDC", b"\n")


# --------------------------------------------------------------------------- public API
def setup(cfg: GadgetConfig, udc: str | None = "auto") -> dict[str, Path]:
    """Create or update the gadget and bind it (*udc*: a name, "auto", or None to leave it
    unbound). Running it again with the same config changes nothing. Returns function → device.
    """
    if not cfg.root.is_dir():
        raise GadgetError(
            f"{cfg.root} does not exist: configfs not mounted or libcomposite not loaded "
            "(modprobe libcomposite; mount -t configfs none /sys/kernel/config)"
        )
    udc_name = None if udc is None else (find_udc(cfg.udc_dir) if udc == "auto" else udc)
    probe = _Writer(dry_run=True)
    _apply(cfg, probe)
    current = bound_udc(cfg) if cfg.path.is_dir() else None
    if probe.changes:
        if current:
            unbind(cfg)  # attributes of a bound gadget cannot change
            current = None
        _apply(cfg, _Writer(dry_run=False))
    if udc_name is not None and current != udc_name:
        bind(cfg, udc_name)
    return hidg_devices(cfg)


def changes_needed(cfg: GadgetConfig) -> list[str]:
    """What :func:`setup` would change (empty when the tree matches): for status and tests."""
    w = _Writer(dry_run=True)
    _apply(cfg, w)
    return w.changes


def _remove_dir(path: Path, configfs: bool) -> None:
    """rmdir; on a plain directory first remove the attribute files and default groups the
    kernel would have removed with it."""
    try:
        path.rmdir()
        return
    except FileNotFoundError:
        return
    except OSError as exc:
        if exc.errno != errno.ENOTEMPTY or configfs:
            raise _user_error(exc, path) from exc
    for entry in path.iterdir():
        if entry.is_symlink() or not entry.is_dir():
            entry.unlink()
        else:
            _remove_dir(entry, configfs)
    with _errors(path):
        path.rmdir()


def teardown(cfg: GadgetConfig) -> None:
    """Remove the gadget in the order the kernel requires: unbind, unlink functions from
    configs, config strings, configs, functions, gadget strings, gadget. Missing parts are fine.
    """
    g = cfg.path
    if not g.is_dir():
        return
    configfs = is_configfs(g)
    unbind(cfg)
    configs = sorted((g / "configs").iterdir()) if (g / "configs").is_dir() else []
    for c in configs:
        for entry in sorted(c.iterdir()):
            if entry.is_symlink():
                with _errors(entry):
                    entry.unlink()
    for c in configs:
        for lang in sorted((c / "strings").iterdir()) if (c / "strings").is_dir() else []:
            _remove_dir(lang, configfs)
        _remove_dir(c, configfs)
    for fn in sorted((g / "functions").iterdir()) if (g / "functions").is_dir() else []:
        _remove_dir(fn, configfs)
    for lang in sorted((g / "strings").iterdir()) if (g / "strings").is_dir() else []:
        _remove_dir(lang, configfs)
    _remove_dir(g, configfs)


def status(cfg: GadgetConfig) -> GadgetStatus:
    g = cfg.path
    st = GadgetStatus(name=cfg.name, path=g, exists=g.is_dir())
    if not st.exists:
        return st
    st.udc = bound_udc(cfg)
    if st.udc:
        st.state = _read(cfg.udc_dir / st.udc / "state")
    c = g / "configs" / CONFIG
    if c.is_dir():
        # Link order is not kept by the filesystem: report the known order first.
        known = [f"hid.{fn.name}" for fn in cfg.functions] + [MASS_STORAGE]
        links = {e.name for e in c.iterdir() if e.is_symlink()}
        st.functions = [n for n in known if n in links] + sorted(links - set(known))
    present = [fn for fn in cfg.functions if (g / "functions" / f"hid.{fn.name}").is_dir()]
    devices = hidg_devices(cfg)
    st.devices = {fn.name: devices[fn.name] for fn in present}
    if (g / "functions" / MASS_STORAGE).is_dir():
        st.medium = _read(g / "functions" / MASS_STORAGE / "lun.0" / "file") or ""
    return st
