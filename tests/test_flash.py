"""image/flash and the first-boot script on real FAT images made with mkfs.vfat/mtools.

The disk image mimics the rpi-arm64 layout (MBR, FAT boot partition at 4 MiB, a Linux partition
after it); the checks read the files back with mtools the way the appliance's boot would, and run
systemd/firstboot against directories standing in for /boot/firmware and /data.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FLASH = REPO / "image" / "flash"
FIRSTBOOT = REPO / "systemd" / "firstboot"
MIB = 1024 * 1024

pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("mkfs.vfat", "mcopy", "mtype", "sfdisk")),
    reason="needs dosfstools, mtools and fdisk (apt-get install dosfstools mtools fdisk)",
)


def flash(*args: str | Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(FLASH), *map(str, args)],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
    )


def make_disk(path: Path) -> None:
    """MBR disk: FAT16 boot partition (16 MiB at 4 MiB) + a Linux partition with a marker."""
    fat = path.with_suffix(".fat")
    subprocess.run(
        ["mkfs.vfat", "-C", "-n", "IPKVM-BOOT", str(fat), str(16 * 1024)],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        ["mcopy", "-i", str(fat), "-", "::/config.txt"], input=b"arm_64bit=1\n", check=True
    )
    with open(path, "wb") as f:
        f.truncate(24 * MIB)
    subprocess.run(
        ["sfdisk", "-q", str(path)],
        check=True,
        text=True,
        input="label: dos\nstart=4MiB, size=16MiB, type=c, bootable\nsize=3MiB, type=83\n",
    )
    with open(path, "r+b") as f:
        f.seek(4 * MIB)
        f.write(fat.read_bytes())
        f.seek(20 * MIB)
        f.write(b"ROOTFS-MARKER")
    fat.unlink()


def mtype(image: Path, name: str, offset: int = 4 * MIB) -> str | None:
    proc = subprocess.run(
        ["mtype", "-i", f"{image}@@{offset}", f"::/{name}"],
        capture_output=True,
        text=True,
        env=dict(os.environ, MTOOLS_SKIP_CHECK="1"),
    )
    return proc.stdout if proc.returncode == 0 else None


def check_hash(spec: str, password: str) -> bool:
    kind, n, r, p, salt, digest = spec.split("$")
    assert kind == "scrypt"
    got = hashlib.scrypt(
        password.encode(),
        salt=base64.b64decode(salt),
        n=int(n),
        r=int(r),
        p=int(p),
        maxmem=64 * MIB,
        dklen=32,
    )
    return got == base64.b64decode(digest)


def test_write_copies_image_and_injects_settings(tmp_path: Path) -> None:
    src = tmp_path / "ipkvm.img"
    make_disk(src)
    config = tmp_path / "unit.toml"
    config.write_text('[server]\nlisten = "0.0.0.0:443"\n')
    pwfile = tmp_path / "pw"
    pwfile.write_text("correct horse battery\n")
    key = tmp_path / "id.pub"
    key.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE tech@laptop\n")
    dst = tmp_path / "sd.img"
    proc = flash(
        "write",
        src,
        dst,
        "--config",
        config,
        "--hostname",
        "kvm-rack12",
        "--static",
        "192.0.2.10/24",
        "--gateway",
        "192.0.2.1",
        "--dns",
        "192.0.2.53",
        "--password-file",
        pwfile,
        "--ssh-key",
        key,
    )
    assert proc.returncode == 0, proc.stderr
    assert "ipkvm.toml, firstboot.toml written" in proc.stdout
    assert mtype(dst, "ipkvm.toml") == config.read_text()
    assert mtype(dst, "config.txt") == "arm_64bit=1\n"  # the rest of the partition is untouched
    first = tomllib.loads(mtype(dst, "firstboot.toml") or "")
    assert first["hostname"] == "kvm-rack12"
    assert first["network"] == {
        "mode": "static",
        "address": "192.0.2.10/24",
        "gateway": "192.0.2.1",
        "dns": ["192.0.2.53"],
    }
    assert first["ssh"] is True
    assert first["ssh_authorized_keys"] == [key.read_text().strip()]
    assert check_hash(first["admin_password_hash"], "correct horse battery")
    assert not check_hash(first["admin_password_hash"], "correct horse batterx")
    assert "correct horse" not in (mtype(dst, "firstboot.toml") or "")
    data = dst.read_bytes()
    assert len(data) == src.stat().st_size
    assert data[20 * MIB : 20 * MIB + 13] == b"ROOTFS-MARKER"
    assert mtype(src, "firstboot.toml") is None  # the source image stays generic


def test_inject_into_bare_fat_and_hash_password(tmp_path: Path) -> None:
    fat = tmp_path / "boot.img"
    subprocess.run(
        ["mkfs.vfat", "-C", "-n", "IPKVM-BOOT", str(fat), "8192"], check=True, capture_output=True
    )
    spec = flash("hash-password", stdin="s3cret-pass\n").stdout.strip()
    assert check_hash(spec, "s3cret-pass")
    proc = flash("inject", fat, "--hostname", "a1", "--dhcp", "--password-hash", spec, "--no-ssh")
    assert proc.returncode == 0, proc.stderr
    first = tomllib.loads(mtype(fat, "firstboot.toml", 0) or "")
    assert first == {
        "hostname": "a1",
        "admin_password_hash": spec,
        "ssh": False,
        "network": {"mode": "dhcp"},
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--hostname", "bad_name!"], "invalid hostname"),
        (["--static", "192.0.2.300/24"], "192.0.2.300"),
        (["--static", "192.0.2.10"], "ADDR/PREFIX"),
        (["--password-hash", "plain"], "hash-password"),
    ],
)
def test_bad_settings_write_nothing(tmp_path: Path, args: list[str], message: str) -> None:
    disk = tmp_path / "d.img"
    make_disk(disk)
    proc = flash("inject", disk, *args)
    assert proc.returncode == 1
    assert message in proc.stderr
    assert mtype(disk, "firstboot.toml") is None


def test_not_an_image(tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.write_bytes(b"\1" * 4096)
    proc = flash("inject", junk, "--hostname", "x")
    assert proc.returncode == 1
    assert "no FAT boot partition" in proc.stderr


def run_firstboot(boot: Path, data: Path, run: Path) -> subprocess.CompletedProcess[str]:
    default = boot.parent / "default.toml"
    default.write_text('[target]\nkind = "hardware"\n')
    env = dict(
        os.environ,
        IPKVM_BOOT=str(boot),
        IPKVM_DATA=str(data),
        IPKVM_RUN=str(run),
        IPKVM_SET_HOSTNAME="0",
        IPKVM_DEFAULT_CONFIG=str(default),
    )
    return subprocess.run(
        [sys.executable, str(FIRSTBOOT)], capture_output=True, text=True, env=env, timeout=60
    )


def test_firstboot_applies_and_removes_secrets(tmp_path: Path) -> None:
    boot, data, run = tmp_path / "boot", tmp_path / "data", tmp_path / "run"
    boot.mkdir()
    config = '[server]\nlisten = "0.0.0.0:443"\n'
    (boot / "ipkvm.toml").write_text(config)
    spec = flash("hash-password", stdin="s3cret-pass\n").stdout.strip()
    (boot / "firstboot.toml").write_text(
        f'hostname = "kvm7"\nadmin_password_hash = "{spec}"\nssh = true\n'
        'ssh_authorized_keys = ["ssh-ed25519 AAAA tech"]\n'
        '[network]\nmode = "static"\naddress = "192.0.2.7/24"\ngateway = "192.0.2.1"\n'
        'dns = ["192.0.2.53"]\n'
    )
    proc = run_firstboot(boot, data, run)
    assert proc.returncode == 0, proc.stderr
    assert not (boot / "firstboot.toml").exists()
    assert (boot / "ipkvm.toml").read_text() == config  # not secret: stays for later edits
    assert (data / "etc/ipkvm.toml").read_text() == config
    assert (data / "etc/hostname").read_text() == "kvm7\n"
    auth = json.loads((data / "state/auth.json").read_text())
    assert (data / "state/auth.json").stat().st_mode & 0o777 == 0o600
    sc = auth["scrypt"]
    assert auth["user"] == "admin"
    assert check_hash(
        f"scrypt${sc['n']}${sc['r']}${sc['p']}${sc['salt']}${sc['hash']}", "s3cret-pass"
    )
    assert (data / "ssh/enabled").exists()
    assert (data / "ssh/authorized_keys").read_text() == "ssh-ed25519 AAAA tech\n"
    network = (run / "systemd/network/10-ipkvm.network").read_text()
    assert "Address=192.0.2.7/24" in network and "Gateway=192.0.2.1" in network
    assert (run / "ipkvm/resolv.conf").read_text() == "nameserver 192.0.2.53\n"
    # a second boot keeps everything (no firstboot.toml any more) and regenerates /run
    shutil.rmtree(run)
    proc = run_firstboot(boot, data, run)
    assert proc.returncode == 0, proc.stderr
    assert (data / "state/auth.json").read_text() == json.dumps(auth, indent=2) + "\n"
    assert "Address=192.0.2.7/24" in (run / "systemd/network/10-ipkvm.network").read_text()


def test_firstboot_defaults_without_boot_files(tmp_path: Path) -> None:
    boot, data, run = tmp_path / "boot", tmp_path / "data", tmp_path / "run"
    boot.mkdir()
    proc = run_firstboot(boot, data, run)
    assert proc.returncode == 0, proc.stderr
    assert (data / "etc/ipkvm.toml").read_text() == '[target]\nkind = "hardware"\n'
    assert not (data / "state/auth.json").exists()  # ipkvm serve generates the password
    assert "DHCP=yes" in (run / "systemd/network/10-ipkvm.network").read_text()
