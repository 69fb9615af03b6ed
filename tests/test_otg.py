"""OtgOutput behind a real HidController, with FIFOs (and a pty pair) standing in for /dev/hidgN.

A "host" reads the FIFO like the USB host polls the gadget, decodes the bytes back into key
events, and can stop reading (the host not polling: EAGAIN), go away (EPIPE/ENXIO) or write LED
reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import pty
import termios
import tty
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hid.controller import HidController
from hid.otg import OtgOutput

LETTERS = [f"Key{chr(ord('A') + i)}" for i in range(26)]


class FifoHost:
    """The host side of one FIFO: reads reports of *size* bytes with the event loop."""

    def __init__(self, path: Path, size: int = 8) -> None:
        self.path = path
        self.size = size
        self.reports: list[bytes] = []
        self._buf = b""
        self._waiters: list[tuple[int, asyncio.Event]] = []
        # O_RDWR keeps the FIFO open without EOF while the device side reopens; closing this fd
        # is "the host went away".
        self.fd: int | None = os.open(path, os.O_RDWR | os.O_NONBLOCK)
        self.loop = asyncio.get_running_loop()
        self.resume()

    def pause(self) -> None:
        """Stop polling: the FIFO fills up and the device side gets EAGAIN."""
        if self.fd is not None:
            self.loop.remove_reader(self.fd)

    def resume(self) -> None:
        if self.fd is not None:
            self.loop.add_reader(self.fd, self.drain)

    def pending_bytes(self) -> int:
        assert self.fd is not None
        n = bytearray(4)
        fcntl.ioctl(self.fd, termios.FIONREAD, n)
        return int.from_bytes(n, "little")

    def drain(self) -> None:
        assert self.fd is not None
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            self._buf += chunk
        whole = len(self._buf) - len(self._buf) % self.size
        for i in range(0, whole, self.size):
            self.reports.append(self._buf[i : i + self.size])
        self._buf = self._buf[whole:]
        for count, event in self._waiters:
            if len(self.reports) >= count:
                event.set()

    async def wait_reports(self, count: int, timeout: float = 5.0) -> list[bytes]:
        event = asyncio.Event()
        self._waiters.append((count, event))
        self.drain()
        async with asyncio.timeout(timeout):
            await event.wait()
        return self.reports

    def close(self) -> None:
        if self.fd is not None:
            self.loop.remove_reader(self.fd)
            os.close(self.fd)
            self.fd = None


def key_events(reports: list[bytes]) -> list[tuple[int, bool]]:
    """Decode boot keyboard reports into (usage, down) events, as a host's HID driver would."""
    events: list[tuple[int, bool]] = []
    mods, keys = 0, set[int]()
    for r in reports:
        assert len(r) == 8 and r[1] == 0
        new_keys = {k for k in r[2:] if k}
        for bit in range(8):
            if (r[0] ^ mods) & (1 << bit):
                events.append((0xE0 + bit, bool(r[0] & (1 << bit))))
        events += [(k, False) for k in sorted(keys - new_keys)]
        events += [(k, True) for k in r[2:] if k and k not in keys]
        mods, keys = r[0], new_keys
    return events


def usage(code: str) -> int:
    return 0x04 + LETTERS.index(code)


@dataclass
class Rig:
    ctl: HidController
    out: OtgOutput
    paths: dict[str, Path]
    states: list[str]
    hosts: dict[str, FifoHost]

    def host(self, name: str) -> FifoHost:
        """The host side of device *name*: the one that saw start-up (reports cleared), or a new
        one once that was closed."""
        host = self.hosts[name]
        if host.fd is None:
            host = self.hosts[name] = FifoHost(self.paths[name], host.size)
        host.reports.clear()
        return host

    async def wait_state(self, check: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait for a controller notification after which *check* holds."""
        changed = asyncio.Event()
        unsubscribe = self.ctl.subscribe(lambda _what: changed.set())
        try:
            async with asyncio.timeout(timeout):
                while not check():
                    await changed.wait()
                    changed.clear()
        finally:
            unsubscribe()


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    paths = {name: tmp_path / name for name in ("hidg0", "hidg1", "hidg2", "leds")}
    for p in paths.values():
        os.mkfifo(p)
    out = OtgOutput(paths["hidg0"], paths["hidg1"], paths["hidg2"], led_path=paths["leds"])
    ctl = HidController(out, retry_interval=0.01, discard_after=30)
    states: list[str] = []
    # Every start tells the target nothing is held (one report per device); let a host take
    # those, so each test sees only its own reports on FIFOs it opens itself.
    hosts = {
        "hidg0": FifoHost(paths["hidg0"]),
        "hidg1": FifoHost(paths["hidg1"], 7),
        "hidg2": FifoHost(paths["hidg2"], 5),
    }
    await ctl.start()
    await ctl.drain()
    assert hosts["hidg0"].reports == [bytes(8)]
    ctl.subscribe(states.append)
    yield Rig(ctl, out, paths, states, hosts)
    for host in hosts.values():
        host.close()
    await ctl.close(timeout=0.2)


async def test_reports_arrive_as_written(rig: Rig) -> None:
    host = rig.host("hidg0")
    rig.ctl.key("web", "ShiftLeft", True)
    rig.ctl.key("web", "KeyH", True)
    rig.ctl.key("web", "KeyH", False)
    rig.ctl.key("web", "ShiftLeft", False)
    reports = await host.wait_reports(4)
    assert reports == [
        bytes([2, 0, 0, 0, 0, 0, 0, 0]),
        bytes([2, 0, 0x0B, 0, 0, 0, 0, 0]),
        bytes([2, 0, 0, 0, 0, 0, 0, 0]),
        bytes(8),
    ]
    assert rig.ctl.online is True
    info = rig.out.as_dict()
    assert info["devices"] == {
        "keyboard": {"path": str(rig.paths["hidg0"]), "open": True},
        "mouse_abs": {"path": str(rig.paths["hidg1"]), "open": True},
        "mouse_rel": {"path": str(rig.paths["hidg2"]), "open": True},
    }
    # Two start-up reports (keyboard and the active mouse: nothing held), then the four above.
    assert info["stats"] == {"writes": 6, "eagain": 0, "offline": 0, "opens": 3}
    host.close()


async def test_mice_go_to_their_own_devices(rig: Rig) -> None:
    mouse = rig.host("hidg1")
    rel = rig.host("hidg2")
    rig.ctl.mouse_abs(1000, 2000)
    assert await mouse.wait_reports(1) == [bytes([0, 0xE8, 0x03, 0xD0, 0x07, 0, 0])]
    rig.ctl.set_mouse_mode("relative")
    rig.ctl.mouse_rel(5, -3)
    rig.ctl.mouse_button("web", "left", True)
    assert await rel.wait_reports(2) == [bytes([0, 5, 0xFD, 0, 0]), bytes([1, 0, 0, 0, 0])]
    mouse.close()
    rel.close()


async def test_order_kept_through_bursts_of_eagain(rig: Rig) -> None:
    """The host stops polling until the pipe (64 KiB = 8192 reports) is full, then reads it all,
    again and again: every report arrives once, in order."""
    host = rig.host("hidg0")
    assert host.fd is not None
    capacity = fcntl.fcntl(host.fd, fcntl.F_GETPIPE_SZ)
    stalled = asyncio.Event()
    rig.out.on_stall(lambda _path: stalled.set())
    host.pause()
    pairs = 10_000
    expected: list[tuple[int, bool]] = []
    for i in range(pairs):
        code = LETTERS[i % 26]
        rig.ctl.key("web", code, True)
        rig.ctl.key("web", code, False)
        expected += [(usage(code), True), (usage(code), False)]
    bursts = 0
    while (2 * pairs - len(host.reports)) * 8 > capacity:
        stalled.clear()  # the pipe was just emptied: the writer has not run since
        async with asyncio.timeout(5):
            await stalled.wait()  # the writer hit a full pipe and is waiting on it
        assert host.pending_bytes() == capacity  # full, no torn report
        bursts += 1
        host.drain()
    host.resume()
    await host.wait_reports(2 * pairs)
    assert bursts >= 2  # the writer really was held up by a full pipe, more than once
    assert rig.out.stats.eagain >= 2
    assert len(host.reports) == 2 * pairs
    assert key_events(host.reports) == expected
    assert rig.ctl.online is True and rig.ctl.discarded == 0
    host.close()


async def test_offline_when_host_goes_away_then_recovers_in_order(rig: Rig) -> None:
    host = rig.host("hidg0")
    rig.ctl.key("web", "KeyA", True)
    rig.ctl.key("web", "KeyA", False)
    await host.wait_reports(2)
    host.close()  # host gone (EPIPE) ...
    os.unlink(rig.paths["hidg0"])  # ... and the device node too (ENOENT on reopen)
    for code in ("KeyB", "KeyC"):
        rig.ctl.key("web", code, True)
        rig.ctl.key("web", code, False)
    await rig.wait_state(lambda: rig.ctl.online is False)
    assert rig.ctl.last_error is not None and "hidg0" in rig.ctl.last_error
    assert rig.ctl.queued == 4  # nothing lost while offline
    os.mkfifo(rig.paths["hidg0"])
    host = rig.host("hidg0")
    await host.wait_reports(4)
    await rig.wait_state(lambda: rig.ctl.online is True)
    assert key_events(host.reports) == [
        (usage("KeyB"), True),
        (usage("KeyB"), False),
        (usage("KeyC"), True),
        (usage("KeyC"), False),
    ]
    assert rig.out.stats.opens >= 2
    host.close()


async def test_no_stuck_key_when_a_client_disconnects_mid_press(rig: Rig) -> None:
    host = rig.host("hidg0")
    host.pause()  # the host is slow: the presses are still queued when the client leaves
    rig.ctl.key("alice", "ControlLeft", True)
    rig.ctl.key("alice", "KeyZ", True)
    rig.ctl.key("bob", "KeyQ", True)
    rig.ctl.release_client("alice")
    host.resume()
    await host.wait_reports(4)
    assert host.reports[-1] == bytes([0, 0, 0x14, 0, 0, 0, 0, 0])  # only bob's Q remains
    rig.ctl.release_client("bob")
    await host.wait_reports(5)
    assert host.reports[-1] == bytes(8)
    events = key_events(host.reports)
    assert [e for e in events if not e[1]] == [(0xE0, False), (0x1D, False), (0x14, False)]
    host.close()


async def test_leds_from_the_host(rig: Rig) -> None:
    fd = os.open(rig.paths["leds"], os.O_WRONLY | os.O_NONBLOCK)
    try:
        os.write(fd, b"\x02")  # Caps Lock on
        await rig.wait_state(lambda: rig.ctl.leds.caps_lock)
        assert rig.ctl.leds.as_dict() == {"num": False, "caps": True, "scroll": False}
        os.write(fd, b"\x03\x05")  # two reports queued: the newest wins
        await rig.wait_state(lambda: rig.ctl.leds.value == 0x05)
        assert rig.ctl.leds.as_dict() == {"num": True, "caps": False, "scroll": True}
        assert "leds" in rig.states
    finally:
        os.close(fd)


async def test_missing_devices_mean_offline_not_a_crash(tmp_path: Path) -> None:
    out = OtgOutput(tmp_path / "hidg0", tmp_path / "hidg1", tmp_path / "hidg2")
    ctl = HidController(out, retry_interval=0.01, discard_after=0.05)
    await ctl.start()
    ctl.key("web", "KeyA", True)
    ctl.mouse_abs(5, 5)
    async with asyncio.timeout(5):
        await ctl.drain()  # returns once the input was given up as undeliverable
    assert ctl.online is False
    assert ctl.last_error is not None and "no such device" in ctl.last_error
    assert ctl.discarded >= 2
    await ctl.close(timeout=0.05)


async def test_fifo_without_reader_is_offline(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "hidg0")
    out = OtgOutput(tmp_path / "hidg0", tmp_path / "hidg1", tmp_path / "hidg2")
    ctl = HidController(out, retry_interval=0.01, discard_after=30)
    await ctl.start()
    ctl.key("web", "KeyA", True)
    changed = asyncio.Event()
    ctl.subscribe(lambda what: changed.set() if what == "online" else None)
    async with asyncio.timeout(5):
        await changed.wait()
    assert ctl.online is False and "hidg0" in (ctl.last_error or "")
    await ctl.close(timeout=0.05)


@pytest.fixture
def pty_pair() -> Iterator[tuple[int, str]]:
    master, slave = pty.openpty()
    tty.setraw(slave)
    yield master, os.ttyname(slave)
    for fd in (master, slave):
        with contextlib.suppress(OSError):
            os.close(fd)


async def test_duplex_device_reports_out_and_leds_in_on_one_fd(
    tmp_path: Path, pty_pair: tuple[int, str]
) -> None:
    """Like a real hidg, a character device carries reports out and LED reports back."""
    master, slave_path = pty_pair
    out = OtgOutput(slave_path, tmp_path / "hidg1", tmp_path / "hidg2")
    ctl = HidController(out, retry_interval=0.01, discard_after=30)
    await ctl.start()
    ctl.key("web", "KeyX", True)
    ctl.key("web", "KeyX", False)
    await ctl.drain()
    got = b""
    loop = asyncio.get_running_loop()
    readable = asyncio.Event()
    loop.add_reader(master, readable.set)
    try:
        async with asyncio.timeout(5):
            while len(got) < 24:
                await readable.wait()
                readable.clear()
                got += os.read(master, 64)
    finally:
        loop.remove_reader(master)
    # Start-up's "nothing held", then X pressed and released.
    assert got == bytes(8) + bytes([0, 0, 0x1B, 0, 0, 0, 0, 0]) + bytes(8)
    os.write(master, b"\x01")  # the host turns Num Lock on
    leds = asyncio.Event()
    ctl.subscribe(lambda what: leds.set() if what == "leds" else None)
    async with asyncio.timeout(5):
        await leds.wait()
    assert ctl.leds.num_lock and not ctl.leds.caps_lock
    await ctl.close(timeout=0.2)


async def test_host_not_polling_goes_offline_then_resumes_in_order(tmp_path: Path) -> None:
    """A host that stops reading (suspended) makes the target offline after write_timeout; once
    it reads again, everything queued arrives, in order, once."""
    os.mkfifo(tmp_path / "hidg0")
    host = FifoHost(tmp_path / "hidg0")
    host.pause()
    out = OtgOutput(tmp_path / "hidg0", tmp_path / "hidg1", tmp_path / "hidg2", write_timeout=0.05)
    ctl = HidController(out, retry_interval=0.01, discard_after=30)
    online: list[bool | None] = []
    changed = asyncio.Event()

    def seen(what: str) -> None:
        if what == "online":
            online.append(ctl.online)
            changed.set()

    ctl.subscribe(seen)
    await ctl.start()
    pairs = 5000  # 10000 reports: more than the 8192 a full pipe holds
    for i in range(pairs):
        ctl.key("web", LETTERS[i % 26], True)
        ctl.key("web", LETTERS[i % 26], False)
    async with asyncio.timeout(5):
        while False not in online:
            changed.clear()
            await changed.wait()
    assert "has not read a report" in (ctl.last_error or "")
    host.resume()
    await host.wait_reports(2 * pairs + 1)
    assert online[-1] is True and ctl.discarded == 0
    assert host.reports[0] == bytes(8)  # start-up: nothing held
    del host.reports[0]
    assert len(host.reports) == 2 * pairs
    expected = []
    for i in range(pairs):
        expected += [(usage(LETTERS[i % 26]), True), (usage(LETTERS[i % 26]), False)]
    assert key_events(host.reports) == expected
    await ctl.close(timeout=0.2)
    host.close()


async def test_duplex_device_gone_is_offline(tmp_path: Path, pty_pair: tuple[int, str]) -> None:
    master, slave_path = pty_pair
    out = OtgOutput(slave_path, tmp_path / "hidg1", tmp_path / "hidg2")
    ctl = HidController(out, retry_interval=0.01, discard_after=30)
    await ctl.start()
    ctl.key("web", "KeyX", True)
    await ctl.drain()
    assert ctl.online is True
    os.close(master)  # the "host" side of the device disappears: EIO on the slave
    changed = asyncio.Event()
    ctl.subscribe(lambda what: changed.set() if what == "online" else None)
    ctl.key("web", "KeyX", False)
    async with asyncio.timeout(5):
        await changed.wait()
    assert ctl.online is False and ctl.queued == 1
    await ctl.close(timeout=0.05)


async def test_usb_host_state_reported_between_writes(tmp_path: Path) -> None:
    """The UDC's state file says when a host enumerates us or goes away, with no key pressed."""
    state = tmp_path / "udc" / "state"
    state.parent.mkdir()
    state.write_text("not attached\n")
    os.mkfifo(tmp_path / "hidg0")
    out = OtgOutput(
        tmp_path / "hidg0",
        tmp_path / "hidg1",
        tmp_path / "hidg2",
        udc_state=state,
        state_interval=0.01,
    )
    ctl = HidController(out, retry_interval=0.01, discard_after=30)
    changes: list[tuple[bool | None, str | None]] = []
    changed = asyncio.Event()

    def seen(what: str) -> None:
        if what == "online":
            changes.append((ctl.online, ctl.last_error))
            changed.set()

    ctl.subscribe(seen)
    await ctl.start()
    async with asyncio.timeout(5):
        await changed.wait()
    assert changes == [(False, "USB host: not attached")]
    changed.clear()
    state.write_text("configured\n")
    async with asyncio.timeout(5):
        await changed.wait()
    assert changes[-1] == (True, None)
    changed.clear()
    changes.clear()
    state.write_text("suspended\n")  # a write would wake the host: still online
    state.write_text("not attached\n")
    async with asyncio.timeout(5):
        await changed.wait()
    assert changes == [(False, "USB host: not attached")]
    assert out.udc_state == "not attached"
    await ctl.close(timeout=0.05)


async def test_udc_state_auto_only_for_real_hidg(tmp_path: Path) -> None:
    (tmp_path / "udc" / "dummy_udc.0").mkdir(parents=True)
    os.mkfifo(tmp_path / "hidg0")
    out = OtgOutput(
        tmp_path / "hidg0", tmp_path / "hidg1", tmp_path / "hidg2", udc_dir=tmp_path / "udc"
    )
    await out.open()
    assert out.udc_state_path is None  # a FIFO is not a gadget: nothing to watch
    await out.close()
