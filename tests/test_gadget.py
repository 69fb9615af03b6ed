"""The configfs gadget builder on a plain temp directory: every file, idempotency, teardown,
probed attributes, UDC binding and the ``ipkvm gadget`` command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hid import gadget
from hid.descriptors import KEYBOARD, MOUSE_ABS, MOUSE_REL
from hid.gadget import GadgetConfig, GadgetError, MassStorage

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def cfg(tmp_path: Path) -> GadgetConfig:
    root = tmp_path / "usb_gadget"
    root.mkdir()
    udc = tmp_path / "udc"
    (udc / "dummy_udc.0").mkdir(parents=True)
    (udc / "dummy_udc.0" / "state").write_text("configured\n")
    return GadgetConfig(root=root, udc_dir=udc)


def tree(root: Path) -> dict[str, bytes | str]:
    """Every file (content), symlink ("-> target") and directory ("/") below *root*."""
    out: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = "-> " + os.readlink(p)
            elif p.is_dir():
                out[rel] = "/"
            else:
                out[rel] = p.read_bytes()
    return out


def test_setup_writes_every_file(cfg: GadgetConfig) -> None:
    devices = gadget.setup(cfg)
    g = cfg.path
    fns = g / "functions"
    expected: dict[str, bytes | str] = {
        "ipkvm": "/",
        "ipkvm/idVendor": b"0x1d6b\n",
        "ipkvm/idProduct": b"0x0104\n",
        "ipkvm/bcdDevice": b"0x0100\n",
        "ipkvm/bcdUSB": b"0x0200\n",
        "ipkvm/UDC": b"dummy_udc.0\n",
        "ipkvm/strings": "/",
        "ipkvm/strings/0x409": "/",
        "ipkvm/strings/0x409/manufacturer": b"ipkvm\n",
        "ipkvm/strings/0x409/product": b"ipkvm Composite KVM Device\n",
        "ipkvm/strings/0x409/serialnumber": b"ipkvm0001\n",
        "ipkvm/configs": "/",
        "ipkvm/configs/c.1": "/",
        "ipkvm/configs/c.1/MaxPower": b"250\n",
        "ipkvm/configs/c.1/bmAttributes": b"0xa0\n",
        "ipkvm/configs/c.1/strings": "/",
        "ipkvm/configs/c.1/strings/0x409": "/",
        "ipkvm/configs/c.1/strings/0x409/configuration": b"ipkvm HID\n",
        "ipkvm/functions": "/",
    }
    for fn in (KEYBOARD, MOUSE_ABS, MOUSE_REL):
        d = f"ipkvm/functions/hid.{fn.name}"
        expected[d] = "/"
        expected[f"{d}/protocol"] = f"{fn.protocol}\n".encode()
        expected[f"{d}/subclass"] = f"{fn.subclass}\n".encode()
        expected[f"{d}/report_length"] = f"{fn.report_length}\n".encode()
        expected[f"{d}/report_desc"] = fn.report_desc
        expected[f"ipkvm/configs/c.1/hid.{fn.name}"] = f"-> {fns / f'hid.{fn.name}'}"
    assert tree(cfg.root) == expected
    assert devices == {
        "keyboard": Path("/dev/hidg0"),
        "mouse": Path("/dev/hidg1"),
        "mouse_rel": Path("/dev/hidg2"),
    }
    # the descriptors written are the boot-compatible ones
    assert (fns / "hid.keyboard" / "protocol").read_text() == "1\n"
    assert (fns / "hid.mouse_rel" / "subclass").read_text() == "1\n"


def test_setup_twice_changes_nothing(cfg: GadgetConfig) -> None:
    gadget.setup(cfg)
    before = tree(cfg.root)
    stamps = {p: p.stat().st_mtime_ns for p in cfg.root.rglob("*") if p.is_file()}
    assert gadget.changes_needed(cfg) == []
    gadget.setup(cfg)
    assert tree(cfg.root) == before
    assert {p: p.stat().st_mtime_ns for p in cfg.root.rglob("*") if p.is_file()} == stamps


def test_setup_repairs_a_changed_attribute_and_rebinds(cfg: GadgetConfig) -> None:
    gadget.setup(cfg)
    desc = cfg.path / "functions" / "hid.keyboard" / "report_desc"
    desc.write_bytes(b"\x05\x01")
    assert gadget.changes_needed(cfg)
    gadget.setup(cfg)
    assert desc.read_bytes() == KEYBOARD.report_desc
    assert (cfg.path / "UDC").read_text() == "dummy_udc.0\n"
    assert gadget.status(cfg).functions == ["hid.keyboard", "hid.mouse", "hid.mouse_rel"]
    assert gadget.changes_needed(cfg) == []


def test_teardown_leaves_nothing(cfg: GadgetConfig) -> None:
    cfg_ms = GadgetConfig(root=cfg.root, udc_dir=cfg.udc_dir, mass_storage=MassStorage())
    gadget.setup(cfg_ms)
    assert (cfg.path / "UDC").read_text() == "dummy_udc.0\n"
    gadget.teardown(cfg_ms)
    assert list(cfg.root.iterdir()) == []
    gadget.teardown(cfg_ms)  # nothing there: still fine


def test_kernel_formatting_of_read_back_values_is_not_a_change(cfg: GadgetConfig) -> None:
    """configfs shows values its own way: the inquiry string padded to 28 characters, numbers
    in decimal or hex. None of that is a difference to repair."""
    cfg_ms = GadgetConfig(root=cfg.root, udc_dir=cfg.udc_dir, mass_storage=MassStorage())
    gadget.setup(cfg_ms)
    lun = cfg.path / "functions" / "mass_storage.usb0" / "lun.0"
    (lun / "inquiry_string").write_text(f"{'ipkvm   Virtual Media':<28}\n")
    (cfg.path / "idVendor").write_text("7531\n")  # 0x1d6b in decimal
    (cfg.path / "configs" / "c.1" / "bmAttributes").write_text("160\n")
    assert gadget.changes_needed(cfg_ms) == []
    (lun / "inquiry_string").write_text(f"{'other   Virtual Media':<28}\n")
    assert f"write {lun / 'inquiry_string'}" in gadget.changes_needed(cfg_ms)


def test_probed_attributes_only_when_the_kernel_has_them(cfg: GadgetConfig) -> None:
    gadget.setup(cfg, udc=None)
    fns = cfg.path / "functions"
    assert not list(fns.rglob("no_out_endpoint")) and not list(fns.rglob("wakeup_on_write"))
    # A newer kernel: mkdir created the files (with the kernel's defaults).
    for name in ("keyboard", "mouse", "mouse_rel"):
        (fns / f"hid.{name}" / "no_out_endpoint").write_text("0\n")
        (fns / f"hid.{name}" / "wakeup_on_write").write_text("0\n")
    gadget.setup(cfg, udc=None)
    assert (fns / "hid.keyboard" / "no_out_endpoint").read_text() == "0\n"  # LEDs need OUT
    assert (fns / "hid.mouse" / "no_out_endpoint").read_text() == "1\n"
    assert (fns / "hid.mouse_rel" / "no_out_endpoint").read_text() == "1\n"
    for name in ("keyboard", "mouse", "mouse_rel"):
        assert (fns / f"hid.{name}" / "wakeup_on_write").read_text() == "1\n"


def test_mass_storage_lun(cfg: GadgetConfig) -> None:
    ms = MassStorage(file="/var/lib/ipkvm/images/debian.iso", cdrom=True, ro=False)
    cfg_ms = GadgetConfig(root=cfg.root, udc_dir=cfg.udc_dir, mass_storage=ms)
    gadget.setup(cfg_ms)
    lun = cfg.path / "functions" / "mass_storage.usb0" / "lun.0"
    assert {p.name: p.read_text() for p in lun.iterdir()} == {
        "file": "/var/lib/ipkvm/images/debian.iso\n",
        "cdrom": "1\n",
        "ro": "1\n",  # CD-ROM implies read-only
        "removable": "1\n",
        "nofua": "0\n",
        "inquiry_string": "ipkvm   Virtual Media\n",
    }
    links = cfg.path / "configs" / "c.1" / "mass_storage.usb0"
    assert links.is_symlink()
    assert gadget.status(cfg_ms).functions[-1] == "mass_storage.usb0"
    # Back to "HID only": the LUN goes away, the HID functions stay bound.
    gadget.setup(cfg)
    assert not links.exists() and not lun.exists()
    assert gadget.status(cfg).functions == ["hid.keyboard", "hid.mouse", "hid.mouse_rel"]


def test_bind_unbind_and_status(cfg: GadgetConfig) -> None:
    assert not gadget.status(cfg).exists
    gadget.setup(cfg, udc=None)
    st = gadget.status(cfg)
    assert st.exists and st.udc is None and st.state is None
    assert gadget.bind(cfg) == "dummy_udc.0"
    st = gadget.status(cfg)
    assert (st.udc, st.state) == ("dummy_udc.0", "configured")
    assert st.devices["mouse"] == Path("/dev/hidg1")
    gadget.unbind(cfg)
    assert (cfg.path / "UDC").read_text() == "\n"
    assert gadget.status(cfg).udc is None


def test_device_numbers_from_the_kernel(cfg: GadgetConfig) -> None:
    """Another HID gadget took hidg0: the kernel's ``dev`` attribute says which minor we got."""
    gadget.setup(cfg, udc=None)
    for minor, name in enumerate(("keyboard", "mouse", "mouse_rel"), start=1):
        (cfg.path / "functions" / f"hid.{name}" / "dev").write_text(f"239:{minor}\n")
    assert gadget.hidg_devices(cfg) == {
        "keyboard": Path("/dev/hidg1"),
        "mouse": Path("/dev/hidg2"),
        "mouse_rel": Path("/dev/hidg3"),
    }


def test_no_udc_is_a_clear_error(cfg: GadgetConfig, tmp_path: Path) -> None:
    empty = tmp_path / "no_udc"
    empty.mkdir()
    with pytest.raises(GadgetError, match="no USB device controller"):
        gadget.setup(GadgetConfig(root=cfg.root, udc_dir=empty))
    with pytest.raises(GadgetError, match="configfs not mounted"):
        gadget.setup(GadgetConfig(root=tmp_path / "missing", udc_dir=cfg.udc_dir))


def ipkvm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "appliance", "gadget", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )


def test_cli_setup_status_teardown(cfg: GadgetConfig) -> None:
    common = ["--root", str(cfg.root), "--udc-dir", str(cfg.udc_dir)]
    r = ipkvm("setup", *common, "--mass-storage")
    assert r.returncode == 0, r.stderr
    assert "/dev/hidg0" in r.stdout and "dummy_udc.0" in r.stdout
    assert (cfg.path / "functions" / "hid.keyboard" / "report_desc").read_bytes() == (
        KEYBOARD.report_desc
    )
    assert (cfg.path / "configs" / "c.1" / "mass_storage.usb0").is_symlink()
    r = ipkvm("status", *common)
    assert r.returncode == 0 and "configured" in r.stdout
    r = ipkvm("teardown", *common)
    assert r.returncode == 0, r.stderr
    assert list(cfg.root.iterdir()) == []
    r = ipkvm("status", *common)
    assert r.returncode == 1 and "not set up" in r.stdout


def test_cli_errors_are_one_line(cfg: GadgetConfig, tmp_path: Path) -> None:
    r = ipkvm("setup", "--root", str(tmp_path / "nope"), "--udc-dir", str(cfg.udc_dir))
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and "configfs not mounted" in r.stderr
    r = ipkvm("setup", "--root", str(cfg.root), "--udc-dir", str(tmp_path / "nope"))
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and "no USB device controller" in r.stderr
    assert not cfg.path.exists()  # nothing half-built


def test_cli_named_gadget_and_explicit_udc(cfg: GadgetConfig) -> None:
    r = ipkvm("setup", "--root", str(cfg.root), "--name", "kvm2", "--udc", "other_udc.1")
    assert r.returncode == 0, r.stderr
    assert (cfg.root / "kvm2" / "UDC").read_text() == "other_udc.1\n"
    r = ipkvm("setup", "--root", str(cfg.root), "--name", "kvm3", "--udc", "none")
    assert r.returncode == 0 and not (cfg.root / "kvm3" / "UDC").exists()
