"""Fault matrix, rows 5 and 6 (docs/reliability.md): a full disk and a read-only state directory
while sessions and tokens are written; the wall clock jumping back and forward.

The state directory is a real tmpfs mounted over the test's state dir (``size=`` for a full disk,
``remount,ro`` for read-only): the tests run as root, and root ignores ``chmod 0500``, so a mode
change would test nothing. Where ``mount`` is not permitted the tests skip and say why.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from appliance.auth import AuthStore, LoginThrottle
from tests.conftest import start_server
from tests.faultkit import Stopwatch, record

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def tmpfs(path: Path, size: str = "256k") -> Iterator[None]:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def remount(path: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(path)], check=True)


def fill(path: Path) -> Path:
    """Take every free byte of the filesystem at *path*."""
    filler = path / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with contextlib.suppress(OSError):
            while os.write(fd, b"\0" * 4096):
                pass
    finally:
        os.close(fd)
    return filler


async def login(url: str, password: str) -> tuple[int, str, aiohttp.ClientSession]:
    session = aiohttp.ClientSession(base_url=url, cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with session.post(
        "/api/auth/login", json={"user": "admin", "password": password}
    ) as resp:
        return resp.status, await resp.text(), session


async def state_with_cookie(session: aiohttp.ClientSession) -> int:
    async with session.get("/api/state") as resp:
        return resp.status


async def test_disk_full_and_read_only_state_dir(tmp_path: Path) -> None:
    """Login keeps working (the session lives in memory until a write succeeds), the files on
    disk stay whole (no truncated JSON, no temp files left), and the service keeps answering."""
    state = tmp_path / "state"
    with tmpfs(state):
        srv, runner = await start_server(tmp_path)
        sessions: list[aiohttp.ClientSession] = []
        try:
            status, text, s = await login(srv.url, srv.password)
            sessions.append(s)
            assert status == 200, text
            on_disk = (state / "sessions.json").read_bytes()

            # --- disk full
            filler = fill(state)
            clock = Stopwatch()
            status, text, s = await login(srv.url, srv.password)
            sessions.append(s)
            record("5 disk full: login answered", clock.elapsed)
            assert status == 200, text
            assert await state_with_cookie(s) == 200
            assert (state / "sessions.json").read_bytes() == on_disk  # untouched, still valid
            with pytest.raises(OSError) as err:
                AuthStore(state).create_token("ci")
            assert err.value.errno == 28  # ENOSPC: a clear error for `ipkvm token create`
            assert json.loads((state / "users.json").read_text())["users"][0]["name"] == "admin"
            filler.unlink()

            # --- read-only
            remount(state, "ro")
            clock.reset()
            status, text, s = await login(srv.url, srv.password)
            sessions.append(s)
            record("5 read-only: login answered", clock.elapsed)
            assert status == 200, text
            assert await state_with_cookie(s) == 200
            assert [await state_with_cookie(old) for old in sessions] == [200] * len(sessions)
            with pytest.raises(OSError) as err:
                AuthStore(state).create_token("ci")
            assert err.value.errno == 30  # EROFS

            # --- writable again: the next login persists what was kept in memory
            remount(state, "rw")
            status, text, s = await login(srv.url, srv.password)
            sessions.append(s)
            assert status == 200, text
            stored = json.loads((state / "sessions.json").read_text())["sessions"]
            assert len(stored) == len(sessions)
            assert not [p.name for p in state.iterdir() if p.name.endswith(".tmp")]
        finally:
            for s in sessions:
                await s.close()
            await runner.cleanup()


# =========================================================================== row 6: clock jumps
class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_sessions_survive_a_clock_jump_back_and_expire_on_a_jump_forward(tmp_path: Path) -> None:
    """Session expiry is wall time on purpose (it must survive a reboot): a jump back of more
    than 5 minutes refuses the session until the clock is right again (kept, not deleted); a
    jump past the expiry ends it."""
    wall = Clock(1_700_000_000.0)
    store = AuthStore(tmp_path, session_ttl=3600, clock=wall)
    store.ensure_admin()
    sid = store.create_session("admin")
    wall.now -= 86_400  # an RTC-less board before NTP
    assert store.check_session(sid) is None
    wall.now += 86_400 + 60
    assert store.check_session(sid) == "admin"
    wall.now += 3600
    assert store.check_session(sid) is None


def test_password_cache_is_not_stretched_by_a_clock_jump_back(tmp_path: Path) -> None:
    """The one-minute cache of a verified password measures an interval: a wall clock set back a
    day must not keep it valid for a day (it used the wall clock before this fix)."""
    wall, mono = Clock(1_700_000_000.0), Clock(1000.0)
    store = AuthStore(tmp_path, clock=wall, monotonic=mono)
    password = store.ensure_admin()
    assert password is not None
    assert store.verify_password("admin", password)
    assert store.verify_cached("admin", password)
    wall.now -= 86_400
    mono.now += 61
    assert not store.verify_cached("admin", password)


def test_interval_code_uses_monotonic_clocks() -> None:
    """Throttle, pacing and the HID path measure intervals on monotonic clocks; ``time.time()``
    appears only where a wall-clock *timestamp* is the point (listed here, each with why)."""
    assert LoginThrottle().clock is time.monotonic
    assert AuthStore.__init__.__kwdefaults__["monotonic"] is time.monotonic
    allowed = {
        "appliance/auth.py": "AuthStore clock: session expiry is persisted across reboots",
        "appliance/audit.py": "audit entries are stamped with the wall-clock time",
        "appliance/api/control.py": "'since' of presence and control, shown to users",
        "appliance/jobs.py": "job started/finished timestamps shown to clients",
        "capture/h264.py": "capture_wall: compared with the browser's Date.now()",
        "capture/stamp.py": "frame stamp: wall milliseconds, compared across machines",
    }
    found: dict[str, int] = {}
    for top in ("appliance", "hid", "capture"):
        for path in (ROOT / top).rglob("*.py"):
            text = path.read_text()
            hits = len(re.findall(r"\btime\.time(?:_ns)?\b", text)) + len(
                re.findall(r"datetime\.now\(", text)
            )
            if hits:
                found[str(path.relative_to(ROOT))] = hits
    unexpected = sorted(set(found) - set(allowed) - {"appliance/tls.py"})  # cert validity dates
    assert not unexpected, f"wall clock used in {unexpected}: intervals need time.monotonic()"
