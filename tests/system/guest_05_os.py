"""The appliance OS around ipkvm: first boot applied the technician's settings, the root is
read-only, the service runs hardened as its own user."""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

from systest import Api, unit_property

# what tests/system/harness.py injected with image/flash
HOSTNAME = "systest-kvm"
ADMIN_PASSWORD = "systest-admin-pw"


def test_firstboot_applied_and_secrets_removed() -> None:
    assert socket.gethostname() == HOSTNAME
    assert not Path("/boot/firmware/firstboot.toml").exists()
    assert (
        Path("/boot/firmware/ipkvm.toml").read_text() == Path("/etc/ipkvm/ipkvm.toml").read_text()
    )
    status, body, _ = Api(token="").request(
        "POST", "/api/auth/login", {"user": "admin", "password": ADMIN_PASSWORD}
    )
    assert status == 200, (status, body[:200])
    status, _, _ = Api(token="").request(
        "POST", "/api/auth/login", {"user": "admin", "password": ADMIN_PASSWORD + "x"}
    )
    assert status in (401, 403), status


def test_root_read_only_state_writable() -> None:
    try:
        Path("/usr/systest-probe").write_text("x")
    except OSError as exc:
        assert exc.errno == errno.EROFS, exc
    else:
        raise AssertionError("the root filesystem is writable")
    probe = Path("/var/lib/ipkvm/.systest-probe")
    probe.write_text("x")
    probe.unlink()


def test_service_runs_as_ipkvm_with_watchdog_and_ssh_off() -> None:
    pid = int(unit_property("ipkvm.service", "MainPID"))
    status = Path(f"/proc/{pid}/status").read_text()
    uid = next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:"))
    import pwd

    assert pwd.getpwuid(int(uid)).pw_name == "ipkvm"
    cap_eff = next(line.split()[1] for line in status.splitlines() if line.startswith("CapEff:"))
    assert int(cap_eff, 16) in (0, 1 << 10), cap_eff  # nothing, or CAP_NET_BIND_SERVICE only
    assert unit_property("ipkvm.service", "WatchdogUSec") not in ("0", "infinity", "")
    assert unit_property("ssh.service", "ActiveState") != "active"
    assert not os.path.exists("/data/ssh/enabled")


def test_state_files_stay_the_services_and_logins_are_audited() -> None:
    """The runner created its token as root (``ipkvm token create``, audited): every file in the
    state directory must still belong to the service, which appends the logins above."""
    import json
    import pwd

    state = Path("/var/lib/ipkvm")
    uid = pwd.getpwnam("ipkvm").pw_uid
    foreign = [p.name for p in state.iterdir() if p.is_file() and p.stat().st_uid != uid]
    assert not foreign, f"not the service's: {foreign}"
    entries = [json.loads(line) for line in (state / "audit.jsonl").read_text().splitlines()]
    events = [(e["event"], e.get("user"), e["outcome"]) for e in entries]
    assert ("token.create", "cli", "ok") in events, events
    assert ("login", "admin", "ok") in events and ("login", "admin", "failed") in events, events
