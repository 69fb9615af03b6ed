"""Fault matrix, input rows 1-3 (docs/reliability.md): the target powered off mid-paste, an OTG
hidg that stops taking reports (EAGAIN, ESHUTDOWN, EPIPE), a CH9329 adapter unplugged mid-command.

Each test measures how long the appliance takes to say so and to recover, and checks that
nothing stays held on the target: the first thing a returning target receives is "all released",
never a stale key press.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import hid.otg
from hid.ch9329 import Ch9329Output
from hid.controller import Device, HidController
from hid.otg import OtgOutput
from tests.ch9329_sim import Ch9329Sim
from tests.conftest import Server, hid_until
from tests.faultkit import Stopwatch, events_until, record

F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ (Linux); not exported by every Python
KBD_RELEASED = bytes(8)
DISCARD_AFTER = 0.3  # injected; the product default is HidController(discard_after=5.0)


# =========================================================================== row 1: power off
async def test_target_powered_off_mid_paste(server: Server) -> None:
    """The paste job ends "failed" with the character it reached (no hang), nothing is held, and
    typing works again as soon as the target is back."""
    appliance: Any = server.appliance
    hid = appliance.hid
    hid._discard_after = DISCARD_AFTER  # the product uses 5 s; the mechanism is the same
    async with aiohttp.ClientSession(base_url=server.url, headers=server.basic()) as s:
        async with s.post(
            "/api/hid/type", json={"text": "a" * 2000, "pacing_ms": 1, "wait": False}
        ) as resp:
            assert resp.status == 202
            job = appliance.jobs.get((await resp.json())["job"])
        await events_until(appliance, lambda: job.completed >= 20, "the paste to get going")

        clock = Stopwatch()
        async with s.post("/api/demo/power", json={"on": False}) as resp:
            assert resp.status == 200
        await events_until(appliance, lambda: not job.running, "the paste job to end", 3)
        record("1 paste ends after power off", clock.elapsed)
        assert job.status == "failed"
        assert (job.error or "").startswith("target offline: typing stopped at character")
        assert 20 <= job.error_info["typed"] < 2000

        async with s.get("/api/state") as resp:
            state = (await resp.json())["hid"]
        assert state["online"] is False
        assert state["error"] == "demo target is powered off"
        assert state["keys_held"] == []
        assert appliance.jobs.running() == []
        # A new paste is refused at once with the reason, instead of queueing for nobody.
        async with s.post("/api/hid/type", json={"text": "x"}) as resp:
            assert resp.status == 503
            assert "target offline: demo target is powered off" in (await resp.json())["error"]

        clock.reset()
        async with s.post("/api/demo/power", json={"on": True}) as resp:
            assert resp.status == 200
        await hid_until(hid, lambda: hid.online is True, "the keyboard to come back")
        record("1 typing back after power on", clock.elapsed)
        assert hid.devices[Device.KEYBOARD].queued == 0
        async with s.post("/api/hid/type", json={"text": "ok", "pacing_ms": 1}) as resp:
            assert resp.status == 200, await resp.text()
            assert (await resp.json())["chars"] == 2


# =========================================================================== row 2: OTG hidg
@contextlib.contextmanager
def fifo_host(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Three FIFOs standing in for hidg0..2 with a "host" reading end open on each (not read
    until the test says so). The keyboard pipe is shrunk to one page so it fills quickly."""
    paths = [tmp_path / name for name in ("hidg0", "hidg1", "hidg2")]
    readers = []
    for path in paths:
        os.mkfifo(path)
        readers.append(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
    fcntl.fcntl(readers[0], F_SETPIPE_SZ, 4096)
    try:
        yield {"paths": paths, "readers": readers}
    finally:
        for fd in readers:
            with contextlib.suppress(OSError):
                os.close(fd)


def read_all(fd: int) -> bytes:
    data = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return data
        if not chunk:
            return data
        data += chunk


@contextlib.asynccontextmanager
async def otg_controller(paths: list[Path]) -> AsyncIterator[tuple[HidController, OtgOutput]]:
    out = OtgOutput(*paths, write_timeout=0.1, udc_state=None)
    ctl = HidController(out, retry_interval=0.02, discard_after=DISCARD_AFTER)
    await ctl.start()
    await ctl.drain()
    try:
        yield ctl, out
    finally:
        await ctl.close(timeout=0.2)


async def test_hidg_eagain_for_seconds_goes_offline_discards_and_recovers(tmp_path: Path) -> None:
    """The host stops polling (every write EAGAIN): offline after ``write_timeout``, queued input
    replaced by "all released" after ``discard_after``, and only that release is delivered when
    the host polls again."""
    with fifo_host(tmp_path) as host:
        kbd = host["readers"][0]
        async with otg_controller(host["paths"]) as (ctl, out):
            read_all(kbd)
            # Fill the pipe from a second writer: from now on our writes get EAGAIN.
            filler = os.open(host["paths"][0], os.O_WRONLY | os.O_NONBLOCK)
            junk = 0
            with contextlib.suppress(BlockingIOError):
                while True:
                    junk += os.write(filler, b"\xee" * 8)
            os.close(filler)
            clock = Stopwatch()
            ctl.key("user", "ShiftLeft", True)
            ctl.key("user", "KeyA", True)
            await hid_until(ctl, lambda: ctl.online is False, "offline", 2)
            record("2 EAGAIN: offline shown", clock.elapsed)
            assert "host has not read a report for 0.1 s" in (ctl.last_error or "")
            assert out.stats.eagain > 0
            await hid_until(ctl, lambda: not ctl.keyboard.held, "all released", 2)
            record("2 EAGAIN: queued input discarded", clock.elapsed)
            assert ctl.devices[Device.KEYBOARD].discarded >= 2

            clock.reset()
            assert read_all(kbd) == b"\xee" * junk  # the host polls again
            await hid_until(ctl, lambda: ctl.online is True, "online again", 2)
            record("2 EAGAIN: back online", clock.elapsed)
            await ctl.drain()
            assert read_all(kbd) == KBD_RELEASED  # only "all released": no stale Shift+A


class _OsWithErrno:
    """``os`` as ``hid.otg`` sees it, with ``write`` failing with *errno* while ``failing``."""

    def __init__(self, err: int) -> None:
        self.err = err
        self.failing = False

    def write(self, fd: int, data: bytes) -> int:
        if self.failing:
            raise OSError(self.err, os.strerror(self.err))
        return os.write(fd, data)

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)


async def test_hidg_eshutdown_is_offline_keeps_the_fd_and_recovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ESHUTDOWN (no USB host) cannot be produced without a UDC, so the errno is injected at the
    ``os.write`` hid.otg calls, on a real FIFO: what is tested is hid.otg's mapping (offline, fd
    kept because the node is unchanged) and the controller's reaction, not the kernel."""
    fake = _OsWithErrno(errno.ESHUTDOWN)
    monkeypatch.setattr(hid.otg, "os", fake)
    with fifo_host(tmp_path) as host:
        kbd = host["readers"][0]
        async with otg_controller(host["paths"]) as (ctl, out):
            read_all(kbd)
            opens = out.stats.opens
            fake.failing = True
            clock = Stopwatch()
            ctl.key("user", "ControlLeft", True)
            await hid_until(ctl, lambda: ctl.online is False, "offline", 2)
            record("2 ESHUTDOWN: offline shown", clock.elapsed)
            assert "Cannot send after transport endpoint shutdown" in (ctl.last_error or "")
            await hid_until(ctl, lambda: not ctl.keyboard.held, "all released", 2)
            record("2 ESHUTDOWN: queued input discarded", clock.elapsed)
            clock.reset()
            fake.failing = False  # the host configures the gadget again
            await hid_until(ctl, lambda: ctl.online is True, "online again", 2)
            record("2 ESHUTDOWN: back online", clock.elapsed)
            await ctl.drain()
            assert read_all(kbd) == KBD_RELEASED
            assert out.stats.opens == opens, "ESHUTDOWN must keep the hidg fd, not reopen it"


async def test_hidg_reader_gone_epipe_then_back(tmp_path: Path) -> None:
    """The reading side closes (EPIPE, then ENXIO on reopen: a device gone), then comes back."""
    with fifo_host(tmp_path) as host:
        path = host["paths"][0]
        async with otg_controller(host["paths"]) as (ctl, out):
            os.close(host["readers"][0])
            clock = Stopwatch()
            ctl.key("user", "AltLeft", True)
            await hid_until(ctl, lambda: ctl.online is False, "offline", 2)
            record("2 EPIPE: offline shown", clock.elapsed)
            assert str(path) in (ctl.last_error or "")
            await hid_until(ctl, lambda: not ctl.keyboard.held, "all released", 2)
            clock.reset()
            host["readers"][0] = reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            await hid_until(ctl, lambda: ctl.online is True, "online again", 2)
            record("2 EPIPE: back online", clock.elapsed)
            await ctl.drain()
            assert read_all(reader) == KBD_RELEASED
            assert out.stats.opens >= 2


# =========================================================================== row 3: CH9329
def kbd_bytes(mods: int, *keys: int) -> bytes:
    return bytes([mods, 0, *keys, *([0] * (6 - len(keys)))])


async def test_ch9329_unplugged_mid_command_and_replugged(tmp_path: Path) -> None:
    """The USB-serial adapter goes away while a command waits for its reply; a new tty appears
    behind the same (by-id style) symlink. Offline with the port named, then online again on the
    keep-alive alone — and the chip's first keyboard report is the release."""
    first = Ch9329Sim().start()
    second: Ch9329Sim | None = None
    link = tmp_path / "ttyCH9329"
    link.symlink_to(first.path)
    out = Ch9329Output(str(link), 115200, reply_timeout=0.1, keepalive=0.05)
    ctl = HidController(out, retry_interval=0.02, discard_after=DISCARD_AFTER)
    await ctl.start()
    try:
        await ctl.drain()
        ctl.key("user", "ShiftLeft", True)
        await ctl.drain()
        assert first.keyboard[-1] == kbd_bytes(0x02)
        first.silent = True  # the next command is read but not answered...
        ctl.key("user", "KeyA", True)
        await first.wait_for(lambda: any(cmd == 0x02 for cmd, _ in first.ignored))
        clock = Stopwatch()
        first.close()  # ...and the adapter is pulled while it waits
        link.unlink()
        await hid_until(ctl, lambda: ctl.online is False, "offline", 2)
        record("3 CH9329 unplugged: offline shown", clock.elapsed)
        assert not out.connected
        assert str(link) in (ctl.last_error or "")
        await hid_until(ctl, lambda: not ctl.keyboard.held, "all released", 2)

        second = Ch9329Sim().start()
        clock.reset()
        link.symlink_to(second.path)  # re-plugged: a new pty behind the same name
        await hid_until(ctl, lambda: ctl.online is True, "online again", 3)
        record("3 CH9329 re-plugged: back online", clock.elapsed)
        await ctl.drain()
        assert second.keyboard == [kbd_bytes(0)], "the first report after a replug: released"
        assert out.stats.port_lost >= 1 and out.stats.opens >= 2
    finally:
        await ctl.close(timeout=0.2)
        first.close()
        if second is not None:
            second.close()
            assert second.violations == []
