"""The appliance OS on a network and on a card bigger than the image: DNS servers from DHCP reach
systemd-resolved (and names resolve through them), and /data was grown to its disk at first boot
(ipkvm-growdata) with the state written by first boot intact."""

from __future__ import annotations

import json
import os
import pwd
import socket
import stat
import struct
import subprocess
from pathlib import Path

from systest import unit_property, wait_for

QEMU_DNS = "10.0.2.3"  # what QEMU's user-mode network hands out by DHCP
HOST_DNS = Path("/run/systest/out/host-dns.json")  # written by the harness
MIB = 1048576


def test_dhcp_dns_servers_reach_resolved() -> None:
    resolv = Path("/etc/resolv.conf")
    assert os.path.realpath(resolv) == "/run/systemd/resolve/stub-resolv.conf"
    assert "nameserver 127.0.0.53" in resolv.read_text()
    assert unit_property("systemd-resolved.service", "ActiveState") == "active"
    uplink = Path("/run/systemd/resolve/resolv.conf")  # the servers resolved actually uses
    wait_for(
        lambda: uplink.exists() and f"nameserver {QEMU_DNS}" in uplink.read_text(),
        30,
        f"{QEMU_DNS} (DHCP) in {uplink}",
    )
    dns = subprocess.run(["resolvectl", "dns"], capture_output=True, text=True, timeout=30)
    assert dns.returncode == 0, dns.stderr
    assert QEMU_DNS in dns.stdout, dns.stdout
    # QEMU's DNS forwards to the host's resolver: what the host resolves, the appliance must too
    # (glibc → 127.0.0.53 → resolved → the DHCP-provided server).
    probe = json.loads(HOST_DNS.read_text())
    if probe["addresses"]:
        found = {str(a[4][0]) for a in socket.getaddrinfo(probe["name"], 80)}
        assert found, probe
    else:
        print(f"the host does not resolve {probe['name']}: name lookup not checked")


def _block(path: str) -> Path:
    dev = os.stat(path).st_dev
    return Path(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}").resolve()


def test_data_grown_to_the_disk_once_with_state_intact() -> None:
    part = _block("/data")
    assert (part / "partition").exists(), f"/data is not on a partition: {part}"
    disk_bytes = int((part.parent / "size").read_text()) * 512
    part_bytes = int((part / "size").read_text()) * 512
    assert disk_bytes >= 250 * MIB, f"the harness's data disk is {disk_bytes / MIB:.0f} MiB"
    assert part_bytes >= disk_bytes - 2 * MIB, (part_bytes / MIB, disk_bytes / MIB)
    # the MBR on the disk says the same (the next boot sees the grown partition)
    with open(f"/dev/{part.parent.name}", "rb") as f:
        mbr = f.read(512)
    pno = int((part / "partition").read_text())
    start, size = struct.unpack_from("<II", mbr, 446 + 16 * (pno - 1) + 8)
    assert size * 512 == part_bytes, (size, part_bytes)
    assert start == int((part / "start").read_text())
    with open(f"/dev/{part.parent.name}", "rb") as f:  # the filesystem is where the MBR says
        f.seek(start * 512 + 1024 + 0x38)
        assert f.read(2) == b"\x53\xef", "no ext4 superblock at the partition's start"
    # the ext4 filesystem fills the partition
    info = subprocess.run(
        ["dumpe2fs", "-h", f"/dev/{part.name}"], capture_output=True, text=True, timeout=30
    ).stdout
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    fs_bytes = int(fields["Block count"]) * int(fields["Block size"])
    assert fs_bytes >= part_bytes - MIB, (fs_bytes / MIB, part_bytes / MIB)
    usable = os.statvfs("/data")
    assert usable.f_bavail * usable.f_frsize >= 180 * MIB, usable
    # once: the marker, the unit's result and what it logged
    assert Path("/data/.ipkvm-grown").exists()
    assert unit_property("ipkvm-growdata.service", "Result") == "success"
    journal = subprocess.run(
        ["journalctl", "-b", "-u", "ipkvm-growdata", "--no-pager", "-o", "cat"],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    assert "grown from" in journal, journal
    # state intact: the image's directories keep owner and mode, first boot's files are there
    state = os.stat("/data/state")
    assert pwd.getpwuid(state.st_uid).pw_name == "ipkvm"
    assert stat.S_IMODE(state.st_mode) == 0o700
    assert stat.S_IMODE(os.stat("/data/ssh").st_mode) == 0o700
    # firstboot's admin hash (guest_05 logs in with it): written as auth.json, which the service
    # migrates to users.json on its first start (auth.json kept as auth.json.v1)
    auth = Path("/var/lib/ipkvm/users.json")
    if not auth.exists():
        auth = Path("/var/lib/ipkvm/auth.json")
    assert json.loads(auth.read_text()), auth
    assert pwd.getpwuid(auth.stat().st_uid).pw_name == "ipkvm"
    assert Path("/etc/ipkvm/ipkvm.toml").read_text() == Path("/data/etc/ipkvm.toml").read_text()
