"""AuthStore, LoginThrottle and the certificate, on real files in temp dirs."""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import os
import re
import stat
import time
from pathlib import Path

import pytest
from cryptography import x509

from appliance.auth import AuthError, AuthStore, LoginThrottle, resolve_state_dir
from appliance.tls import ensure_certificate


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_first_start_generates_password_once(tmp_path: Path) -> None:
    state = tmp_path / "state"
    store = AuthStore(state)
    password = store.ensure_admin()
    assert password is not None
    assert re.fullmatch(r"([a-km-np-z2-9]{4}-){3}[a-km-np-z2-9]{4}", password)
    assert store.ensure_admin() is None
    assert AuthStore(state).ensure_admin() is None  # a restart does not make a new one
    assert mode(state) == 0o700
    users_file = state / "users.json"
    assert mode(users_file) == 0o600
    raw = users_file.read_text()
    assert password not in raw and password.replace("-", "") not in raw
    data = json.loads(raw)
    assert data["version"] == 2 and len(data["users"]) == 1
    record = data["users"][0]
    assert record["name"] == "admin" and record["role"] == "admin"
    assert set(record["scrypt"]) == {"salt", "n", "r", "p", "hash"}
    assert (record["scrypt"]["n"], record["scrypt"]["r"], record["scrypt"]["p"]) == (2**14, 8, 1)
    assert store.verify_password("admin", password)
    assert not store.verify_password("admin", password + "x")
    assert not store.verify_password("root", password)
    assert AuthStore(state).verify_password("admin", password)


def test_existing_state_dir_is_tightened(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    os.chmod(state, 0o755)
    AuthStore(state)
    assert mode(state) == 0o700


def test_set_password_rules(tmp_path: Path) -> None:
    store = AuthStore(tmp_path)
    assert not store.verify_password("admin", "anything-at-all")  # no password yet: nothing works
    with pytest.raises(AuthError, match="empty"):
        store.set_password("")
    with pytest.raises(AuthError, match="at least 8"):
        store.set_password("1234567")
    store.set_password("correct horse")
    assert store.verify_password("admin", "correct horse")
    assert store.ensure_admin() is None


async def test_async_verify_does_not_block_the_loop(tmp_path: Path) -> None:
    store = AuthStore(tmp_path)
    store.set_password("s3cret-pass")
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.002)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    started = time.perf_counter()
    assert not await store.verify_password_async("admin", "wrong-pass")
    took = time.perf_counter() - started
    done.set()
    await task
    assert took > 0.01  # scrypt really ran
    assert len(gaps) >= 3  # the loop kept turning while it did
    assert await store.verify_password_async("admin", "s3cret-pass")


def test_tokens_store_only_digests_and_cross_instance(tmp_path: Path) -> None:
    server = AuthStore(tmp_path)
    cli = AuthStore(tmp_path)  # another process would be another instance on the same dir
    token_id, token = cli.create_token("ci")
    assert token.startswith("ipk_") and len(token) > 40
    assert server.verify_token(token) == "ci"  # seen at once
    assert mode(tmp_path / "tokens.json") == 0o600
    assert token not in (tmp_path / "tokens.json").read_text()
    with pytest.raises(AuthError, match="exists already"):
        cli.create_token("ci")
    with pytest.raises(AuthError, match="token name"):
        cli.create_token("has space")
    t2, other = cli.create_token("backup")
    assert [(t.id, t.name) for t in server.list_tokens()] == [(token_id, "ci"), (t2, "backup")]
    assert cli.revoke_token("ci") is not None
    assert server.verify_token(token) is None  # revoked at once
    assert server.verify_token(other) == "backup"
    info = cli.revoke_token(server.list_tokens()[0].id)
    assert info is not None and info.name == "backup"
    assert server.verify_token(other) is None
    assert cli.revoke_token("nothing") is None
    assert server.verify_token("ipk_not-a-token") is None
    assert server.verify_token("") is None


def test_sessions_expire_and_end_on_password_change(tmp_path: Path) -> None:
    clock = FakeClock()
    store = AuthStore(tmp_path, session_ttl=60, clock=clock)
    store.set_password("first-password")
    sid = store.create_session("admin")
    assert store.check_session(sid) == "admin"
    clock.advance(59)
    assert store.check_session(sid) == "admin"
    clock.advance(2)
    assert store.check_session(sid) is None
    sid = store.create_session("admin")
    store.delete_session(sid)
    assert store.check_session(sid) is None
    sid = store.create_session("admin")
    AuthStore(tmp_path).set_password("second-password")  # e.g. `ipkvm passwd`
    assert store.check_session(sid) is None
    assert store.check_session("forged") is None and store.check_session(None) is None


def test_sessions_file_holds_only_digests_and_is_shared_across_instances(tmp_path: Path) -> None:
    clock = FakeClock()
    store = AuthStore(tmp_path, session_ttl=60, clock=clock)
    store.set_password("first-password")
    sid = store.create_session("admin")
    path = tmp_path / "sessions.json"
    assert mode(path) == 0o600
    text = path.read_text()
    assert sid not in text
    data = json.loads(text)
    assert data["version"] == 1
    [record] = data["sessions"]
    assert record["sha256"] == hashlib.sha256(sid.encode()).hexdigest()
    assert (record["user"], record["created"], record["expires"]) == ("admin", 1000.0, 1060.0)
    # a restarted server is another instance on the same directory
    assert AuthStore(tmp_path, clock=clock).check_session(sid) == "admin"
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left no temp file behind


def test_expired_sessions_are_pruned_on_the_next_write(tmp_path: Path) -> None:
    clock = FakeClock()
    store = AuthStore(tmp_path, session_ttl=60, clock=clock)
    store.set_password("first-password")
    old = store.create_session("admin")
    clock.advance(61)
    assert store.check_session(old) is None
    new = store.create_session("admin")
    digests = [
        r["sha256"] for r in json.loads((tmp_path / "sessions.json").read_text())["sessions"]
    ]
    assert digests == [hashlib.sha256(new.encode()).hexdigest()]


def test_checking_a_session_never_writes(tmp_path: Path) -> None:
    clock = FakeClock()
    store = AuthStore(tmp_path, session_ttl=60, clock=clock)
    store.set_password("first-password")
    sid = store.create_session("admin")
    before = (tmp_path / "sessions.json").stat()
    for _ in range(50):
        assert store.check_session(sid) == "admin"
    clock.advance(120)
    assert store.check_session(sid) is None
    store.delete_session("never-issued")  # a stranger's logout costs no write either
    after = (tmp_path / "sessions.json").stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_password_change_wipes_the_file_and_a_restored_file_stays_dead(tmp_path: Path) -> None:
    store = AuthStore(tmp_path)
    store.set_password("first-password")
    sid = store.create_session("admin")
    backup = (tmp_path / "sessions.json").read_bytes()
    AuthStore(tmp_path).set_password("second-password")  # `ipkvm passwd` while stopped
    assert json.loads((tmp_path / "sessions.json").read_text())["sessions"] == []
    (tmp_path / "sessions.json").write_bytes(backup)  # restored from an old backup
    assert AuthStore(tmp_path).check_session(sid) is None
    (tmp_path / "users.json").unlink()  # no password at all: no session is valid
    assert AuthStore(tmp_path).check_session(sid) is None


def test_session_from_the_future_is_refused_until_the_clock_is_right(tmp_path: Path) -> None:
    clock = FakeClock()
    clock.now = 1_800_000_000.0
    store = AuthStore(tmp_path, session_ttl=3600, clock=clock)
    store.set_password("first-password")
    sid = store.create_session("admin")
    clock.now = 86_400.0  # rebooted without RTC, before NTP
    assert store.check_session(sid) is None
    store.create_session("admin")  # another login meanwhile must not prune it
    clock.now = 1_800_000_060.0  # NTP set the time
    assert store.check_session(sid) == "admin"


def test_corrupt_sessions_file_is_logged_and_replaced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = AuthStore(tmp_path)
    store.set_password("first-password")
    (tmp_path / "sessions.json").write_text('{"version": 1, "sessions": [')
    fresh = AuthStore(tmp_path)
    with caplog.at_level("WARNING", logger="appliance.sessions"):
        assert fresh.check_session("whatever") is None
        assert fresh.check_session("whatever") is None
    assert len([r for r in caplog.records if "unreadable sessions file" in r.message]) == 1
    sid = fresh.create_session("admin")
    assert json.loads((tmp_path / "sessions.json").read_text())["version"] == 1
    assert AuthStore(tmp_path).check_session(sid) == "admin"


def test_sessions_stay_in_memory_when_the_file_cannot_be_written(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = AuthStore(tmp_path)
    store.set_password("first-password")
    (tmp_path / "sessions.json").mkdir()  # neither readable as a file nor replaceable
    with caplog.at_level("WARNING", logger="appliance.sessions"):
        sid = store.create_session("admin")
    assert store.check_session(sid) == "admin"
    assert any("kept in memory only" in r.message for r in caplog.records)
    store.delete_session(sid)
    assert store.check_session(sid) is None


def test_session_count_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import appliance.auth

    monkeypatch.setattr(appliance.auth, "_MAX_SESSIONS", 3)
    clock = FakeClock()
    store = AuthStore(tmp_path, clock=clock)
    store.set_password("first-password")
    sids = []
    for _ in range(4):
        sids.append(store.create_session("admin"))
        clock.advance(1)
    assert [store.check_session(s) for s in sids] == [None, "admin", "admin", "admin"]
    assert len(json.loads((tmp_path / "sessions.json").read_text())["sessions"]) == 3


def test_throttle_backoff_reset_and_bounds() -> None:
    clock = FakeClock()
    t = LoginThrottle(clock=clock, max_entries=3)
    a = "192.0.2.7"
    for _ in range(3):
        assert t.check(a) == 0
        t.failure(a)
    waits = []
    for _ in range(5):
        wait = t.check(a)
        waits.append(wait)
        clock.advance(wait)
        assert t.check(a) == 0
        t.failure(a)
    assert waits == [1, 2, 4, 8, 16]
    assert t.check("192.0.2.8") == 0  # per client
    t.success(a)
    assert t.check(a) == 0
    # capped
    for _ in range(30):
        t.failure(a)
    assert t.check(a) == 300
    # IPv6 clients count per /64
    for _ in range(4):
        t.failure("2001:db8:1:2::10")
    assert t.check("2001:db8:1:2:ffff::1") > 0
    assert t.check("2001:db8:1:3::10") == 0
    # bounded memory: the oldest entries go
    for i in range(10):
        t.failure(f"198.51.100.{i}")
    assert len(t._entries) == 3
    # attempts in flight count as failures
    b = "203.0.113.1"
    for _ in range(3):
        t.begin(b)
    assert t.check(b) == 1
    t.success(b)
    t.success(b)
    t.success(b)
    assert t.check(b) == 0


def test_resolve_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[server]\nstate_dir = "{tmp_path / "fromconfig"}"\n')
    monkeypatch.delenv("IPKVM_STATE_DIR", raising=False)
    assert resolve_state_dir(tmp_path / "x", config) == tmp_path / "x"
    assert resolve_state_dir(None, config) == tmp_path / "fromconfig"
    monkeypatch.setenv("IPKVM_STATE_DIR", str(tmp_path / "env"))
    assert resolve_state_dir(None, config) == tmp_path / "env"


def test_certificate_generated_once_with_sans(tmp_path: Path) -> None:
    cert, key = tmp_path / "tls" / "cert.pem", tmp_path / "tls" / "key.pem"
    ensure_certificate(cert, key, ["kvm.example.net", "192.168.7.2"])
    assert mode(key) == 0o600
    parsed = x509.load_pem_x509_certificate(cert.read_bytes())
    san = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"kvm.example.net", "localhost"}
    assert set(san.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("192.168.7.2"),
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    }
    days = (parsed.not_valid_after_utc - parsed.not_valid_before_utc).days
    assert 3600 < days < 3700
    assert parsed.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
    before = (cert.read_bytes(), key.read_bytes())
    ensure_certificate(cert, key, ["other.name"])
    assert (cert.read_bytes(), key.read_bytes()) == before


def _read_until(fd: int, marker: bytes | None, timeout: float = 30.0) -> bytes:
    """Read a pty master until ``marker`` shows up (None: until the child closes it)."""
    import select

    seen = b""
    deadline = time.monotonic() + timeout
    while marker is None or marker not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"timed out waiting for {marker!r}; got {seen!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 1024)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
    return seen


@pytest.mark.parametrize("repeat", ["tty-password-1", "something-else"])
def test_passwd_prompts_twice_on_a_terminal(tmp_path: Path, repeat: str) -> None:
    import pty
    import subprocess
    import sys

    store = AuthStore(tmp_path)
    store.set_password("old-password")
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "appliance", "passwd", "--state-dir", str(tmp_path)],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,  # no controlling terminal: getpass uses stdin, a pty
        cwd=Path(__file__).resolve().parent.parent,
    )
    os.close(slave)
    try:
        _read_until(master, b"New admin password:")
        os.write(master, b"tty-password-1\n")
        _read_until(master, b"Repeat:")
        os.write(master, repeat.encode() + b"\n")
        rest = _read_until(master, None)
        assert proc.wait(timeout=30) == (0 if repeat == "tty-password-1" else 1)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert b"tty-password-1" not in rest  # never echoed
    if repeat == "tty-password-1":
        assert store.verify_password("admin", "tty-password-1")
        assert not store.verify_password("admin", "old-password")
    else:
        assert b"do not match" in rest
        assert store.verify_password("admin", "old-password")
