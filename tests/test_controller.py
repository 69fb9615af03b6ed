"""HidController: ordering, coalescing, ownership and the offline guarantee, on MemoryOutput."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from hid.controller import Device, HidController, Pacing, TypingAborted, device_of
from hid.keymap import UnknownKey
from hid.output import MemoryOutput, TargetOffline
from hid.reports import Report, ReportKind
from hid.text import Layout
from tests.conftest import hid_until


def kbd(mods: int, *keys: int) -> bytes:
    return bytes([mods, 0, *keys, *([0] * (6 - len(keys)))])


@pytest.fixture
async def ctl() -> AsyncIterator[HidController]:
    out = MemoryOutput()
    c = HidController(out, retry_interval=0.01, discard_after=0.2)
    await c.start()
    yield c
    await c.close()


def kbd_reports(c: HidController) -> list[bytes]:
    """Keyboard reports after the all-released report every start sends."""
    out = c.output
    assert isinstance(out, MemoryOutput)
    return [r.data for r in out.reports if r.kind is ReportKind.KEYBOARD][1:]


async def test_start_tells_the_target_nothing_is_held() -> None:
    out = MemoryOutput()
    c = HidController(out)
    await c.start()
    await c.drain()
    assert [r.data for r in out.reports] == [kbd(0), bytes([0, 0xFF, 0x3F, 0xFF, 0x3F, 0, 0])]
    await c.close()


async def test_press_release_in_order(ctl: HidController) -> None:
    ctl.key("a", "ShiftLeft", True)
    ctl.key("a", "KeyA", True)
    ctl.key("a", "KeyA", False)
    ctl.key("a", "ShiftLeft", False)
    await ctl.drain()
    assert kbd_reports(ctl) == [kbd(2), kbd(2, 0x04), kbd(2), kbd(0)]


async def test_seventh_key_reports_error_rollover(ctl: HidController) -> None:
    for code in ["KeyA", "KeyB", "KeyC", "KeyD", "KeyE", "KeyF", "KeyG"]:
        ctl.key("a", code, True)
    ctl.key("a", "KeyG", False)
    await ctl.drain()
    reports = kbd_reports(ctl)
    assert reports[5] == kbd(0, 4, 5, 6, 7, 8, 9)
    assert reports[6] == kbd(0, 1, 1, 1, 1, 1, 1)
    assert reports[7] == kbd(0, 4, 5, 6, 7, 8, 9)


async def test_client_going_away_releases_only_its_keys(ctl: HidController) -> None:
    ctl.key("A", "KeyA", True)
    ctl.key("A", "ControlLeft", True)
    ctl.key("B", "KeyB", True)
    ctl.key("B", "ControlLeft", True)  # both hold Ctrl: it stays down for B
    ctl.release_client("A")
    await ctl.drain()
    assert kbd_reports(ctl)[-1] == kbd(1, 0x05)


async def test_unknown_key_sends_nothing(ctl: HidController) -> None:
    with pytest.raises(UnknownKey, match="NoSuchKey"):
        ctl.key("a", "NoSuchKey", True)
    await ctl.drain()
    assert kbd_reports(ctl) == []


async def test_relative_move_split_without_wrapping(ctl: HidController) -> None:
    ctl.set_mouse_mode("relative")
    ctl.mouse_rel(300, -200)
    await ctl.drain()
    out = ctl.output
    assert isinstance(out, MemoryOutput)
    moves = [r.data for r in out.reports if r.kind is ReportKind.MOUSE_REL]
    signed = [
        (
            int.from_bytes(d[1:2], "little", signed=True),
            int.from_bytes(d[2:3], "little", signed=True),
        )
        for d in moves
    ]
    assert sum(x for x, _ in signed) == 300
    assert sum(y for _, y in signed) == -200
    assert all(-127 <= x <= 127 and -127 <= y <= 127 for x, y in signed)


class SlowOutput(MemoryOutput):
    """Delivers only when the test lets it, so reports pile up in the queue."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def write(self, report: Report) -> None:
        await self.gate.wait()
        await super().write(report)


async def test_only_absolute_moves_coalesce() -> None:
    out = SlowOutput()
    c = HidController(out)
    await c.start()
    c.key("a", "KeyA", True)  # the writer blocks delivering this one
    for x in range(100):
        c.mouse_abs(x * 100, 50)
    c.key("a", "KeyA", False)
    c.mouse_abs(1, 2)
    out.gate.set()
    await c.drain()
    kinds = [r.kind for r in out.reports[2:]]
    assert kinds == [
        ReportKind.KEYBOARD,
        ReportKind.MOUSE_ABS,
        ReportKind.KEYBOARD,
        ReportKind.MOUSE_ABS,
    ]
    assert out.reports[3].data[1:5] == (9900).to_bytes(2, "little") + (50).to_bytes(2, "little")
    await c.close()


class FlakyOutput(MemoryOutput):
    def __init__(self, fail: int) -> None:
        super().__init__()
        self.fail = fail

    async def write(self, report: Report) -> None:
        if self.fail:
            self.fail -= 1
            raise TargetOffline("not yet")
        await super().write(report)


async def test_offline_briefly_keeps_order() -> None:
    out = FlakyOutput(fail=5)
    c = HidController(out, retry_interval=0.001, discard_after=10)
    await c.start()
    for code in ["KeyH", "KeyI"]:
        c.key("a", code, True)
        c.key("a", code, False)
    await c.drain()
    # The start-up "nothing held" reports are best effort: dropped while the target is away.
    assert [r.data for r in out.reports] == [kbd(0, 0x0B), kbd(0), kbd(0, 0x0C), kbd(0)]
    assert c.online is True
    await c.close()


async def test_offline_long_discards_but_ends_all_released() -> None:
    out = DeviceOutput()
    out.down = {Device.KEYBOARD, Device.MOUSE}  # the whole target is away
    c = HidController(out, retry_interval=0.01, discard_after=0.05)
    states: list[str] = []
    c.subscribe(states.append)
    await c.start()
    c.key("a", "KeyX", True)
    c.key("a", "ShiftLeft", True)
    await c.drain()  # returns once the queued input was discarded
    assert c.online is False and c.discarded == 2
    assert c.keyboard.held == {}
    out.down.clear()
    c.mouse_abs(5, 5)
    # What the keyboard sees once back: nothing held, and none of the dropped keys. (The mouse
    # move may come first: a device that is offline does not hold the other one back.)
    await out.wait_for(lambda: len(out.reports) == 2, timeout=1.0)
    assert out.of(Device.KEYBOARD) == [kbd(0)]
    assert out.of(Device.MOUSE) == [bytes([0, 5, 0, 5, 0, 0, 0])]
    assert "online" in states
    await c.close()


async def test_backend_can_report_offline_between_writes(ctl: HidController) -> None:
    seen: list[str] = []
    ctl.subscribe(seen.append)
    ctl.output._set_online(False, "keep-alive: target USB not enumerated")
    assert ctl.online is False
    assert ctl.last_error == "keep-alive: target USB not enumerated"
    ctl.output._set_online(True)
    assert ctl.online is True and ctl.last_error is None
    assert seen == ["online", "online"]


async def test_typing_with_caps_lock_on_still_types_the_right_case() -> None:
    from hid.host import HostKeyboard
    from hid.layouts import get_layout

    out = MemoryOutput()
    c = HidController(out)
    await c.start()
    out._set_leds(0x02)  # the target reports Caps Lock on
    host = HostKeyboard("us", leds=0x02)
    await c.type_text("Hello World", get_layout("us"), Pacing.fast())
    for report in out.reports:
        if report.kind is ReportKind.KEYBOARD:
            host.feed(report.data)
    assert host.text == "Hello World"
    assert host.leds & 0x02  # and Caps Lock is back on afterwards
    await c.close()


class NoMouseOutput(MemoryOutput):
    """A target whose mouse function is missing (keyboard-only gadget, wrong path)."""

    async def write(self, report: Report) -> None:
        if report.kind is not ReportKind.KEYBOARD:
            raise TargetOffline("no mouse device")
        await super().write(report)


async def test_start_up_release_never_blocks_input_behind_a_missing_device() -> None:
    out = NoMouseOutput()
    c = HidController(out, retry_interval=0.01)
    await c.start()
    c.key("a", "KeyA", True)
    c.key("a", "KeyA", False)
    await c.drain()
    assert [r.data for r in out.reports] == [kbd(0), kbd(0, 0x04), kbd(0)]
    assert c.online is True
    await c.close(timeout=0.05)


# --------------------------------------------------------------------------- per-device queues
class DeviceOutput(MemoryOutput):
    """Keyboard and mouse can be taken offline separately (a wrong mouse path, an endpoint that
    errors for one function only); tests await what arrives instead of sleeping."""

    def __init__(self) -> None:
        super().__init__()
        self.down: set[Device] = set()
        self._arrived = asyncio.Event()

    async def write(self, report: Report) -> None:
        device = device_of(report.kind)
        if device in self.down:
            raise TargetOffline(f"{device.value} endpoint not answering")
        await super().write(report)
        self._arrived.set()

    def of(self, device: Device) -> list[bytes]:
        return [r.data for r in self.reports if device_of(r.kind) is device]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self._arrived.clear()
                await self._arrived.wait()


def tap(c: HidController, *codes: str) -> list[bytes]:
    """Press and release each key; the keyboard reports that must result."""
    expected: list[bytes] = []
    for code in codes:
        c.key("t", code, True)
        c.key("t", code, False)
        expected += [kbd(0, 0x04 + ord(code[-1]) - ord("A")), kbd(0)]
    return expected


async def test_keys_arrive_at_once_while_the_mouse_is_offline() -> None:
    from hid.host import HostKeyboard
    from hid.layouts import get_layout

    out = DeviceOutput()
    out.down = {Device.MOUSE}
    # The discard window is far longer than the keys may take: they must not wait for it.
    c = HidController(out, retry_interval=0.01, discard_after=3.0)
    await c.start()
    c.mouse_button("web", "left", True)
    c.mouse_abs(100, 200)  # same buttons: replaces the press report (the press moves with it)
    c.mouse_button("web", "left", False)
    c.key("t", "ShiftLeft", True)  # held across everything below: the keyboard's own state
    c.key("t", "ShiftLeft", False)
    expected = [kbd(0), kbd(2), kbd(0), *tap(c, "KeyH", "KeyI")]
    await out.wait_for(lambda: out.of(Device.KEYBOARD) == expected, timeout=1.0)
    assert c.devices[Device.MOUSE].queued == 2 and c.devices[Device.MOUSE].discarded == 0
    assert c.online is True  # the target takes keys: typing and scripts are not refused
    assert "mouse endpoint" in (c.last_error or "")
    assert c.devices[Device.MOUSE].online is False

    # A paste completes (its delivery waits are on the keyboard only).
    async with asyncio.timeout(1.0):
        await c.type_text("Hi!", get_layout("us"), Pacing.fast())
    host = HostKeyboard("us")
    for report in out.of(Device.KEYBOARD):
        host.feed(report)
    assert host.text == "hiHi!"
    assert out.of(Device.MOUSE) == []  # not even the start-up report: that was best effort
    await c.close(timeout=0.05)


async def test_offline_mouse_discards_on_its_own_and_ends_with_no_buttons() -> None:
    out = DeviceOutput()
    out.down = {Device.MOUSE}
    c = HidController(out, retry_interval=0.01, discard_after=0.2)
    await c.start()
    c.key("t", "ControlLeft", True)
    c.mouse_button("web", "left", True)
    c.mouse_abs(100, 200)
    c.mouse_button("web", "right", True)
    await out.wait_for(lambda: out.of(Device.KEYBOARD) == [kbd(0), kbd(1)], timeout=1.0)
    async with asyncio.timeout(2):
        await c.drain(Device.MOUSE)  # returns when the mouse's input is given up
    assert c.devices[Device.MOUSE].discarded == 2 and c.discarded == 2
    assert c.mouse.buttons == 0
    # The keyboard was not touched: Ctrl is still held, nothing of it discarded.
    assert c.keyboard.modifiers == 1 and c.devices[Device.KEYBOARD].discarded == 0
    out.down.clear()  # the mouse comes back
    await out.wait_for(lambda: len(out.of(Device.MOUSE)) == 1, timeout=1.0)
    await c.drain()
    # It sees only "no buttons" (at the last position), never the dropped presses.
    assert out.of(Device.MOUSE) == [bytes([0, 100, 0, 200, 0, 0, 0])]
    assert c.devices[Device.MOUSE].online is True and c.last_error is None
    await c.close()


async def test_offline_keyboard_does_not_hold_the_mouse_and_discards_on_its_own() -> None:
    out = DeviceOutput()
    out.down = {Device.KEYBOARD}
    c = HidController(out, retry_interval=0.01, discard_after=0.2)
    states: list[str] = []
    c.subscribe(states.append)
    await c.start()
    c.key("t", "ShiftLeft", True)
    c.key("t", "KeyA", True)
    typing = asyncio.create_task(c.type_text("x", get_us_layout(), Pacing.fast()))
    c.set_mouse_mode("relative")
    c.mouse_button("web", "left", True)
    c.mouse_rel(3, -4)
    expected = [bytes([0, 0xFF, 0x3F, 0xFF, 0x3F, 0, 0]), bytes([1, 0, 0, 0, 0]), H5(1, 3, -4)]
    await out.wait_for(lambda: out.of(Device.MOUSE) == expected, timeout=1.0)
    assert c.devices[Device.KEYBOARD].queued >= 2 and c.devices[Device.KEYBOARD].discarded == 0
    assert c.online is False and "keyboard endpoint" in (c.last_error or "")
    # The keyboard gives up after its window: the paste stops, keys are released.
    with pytest.raises(TypingAborted):
        async with asyncio.timeout(2):
            await typing
    assert c.keyboard.held == {} and "keys" in states
    # The mouse's held button is its own business: still held, nothing of it discarded.
    assert c.mouse.buttons == 1 and c.devices[Device.MOUSE].discarded == 0
    # Mouse input is not held up by the keyboard's pending release either (drain included).
    c.mouse_button("web", "left", False)
    async with asyncio.timeout(1):
        await c.drain()
    assert out.of(Device.MOUSE) == [*expected, bytes(5)] and out.of(Device.KEYBOARD) == []
    out.down.clear()
    await out.wait_for(lambda: bool(out.of(Device.KEYBOARD)), timeout=1.0)
    async with asyncio.timeout(1):
        await c.drain()
    # Nothing held (the release that ends the discard, and the one the aborted paste sends on
    # its way out), none of the dropped keys.
    assert set(out.of(Device.KEYBOARD)) == {kbd(0)}
    assert out.of(Device.MOUSE) == [*expected, bytes(5)]
    assert c.online is True
    await c.close()


class HangingMouseOutput(DeviceOutput):
    """The mouse endpoint takes a report and never completes (a host that stopped polling it)."""

    def __init__(self) -> None:
        super().__init__()
        self.hang = asyncio.Event()
        self.hanging = asyncio.Event()

    async def write(self, report: Report) -> None:
        if device_of(report.kind) is Device.MOUSE and not self.hang.is_set():
            self.hanging.set()
            await asyncio.Event().wait()  # until the controller's write timeout
        await super().write(report)


async def test_keys_overtake_a_mouse_write_that_hangs() -> None:
    out = HangingMouseOutput()
    out.hang.set()
    c = HidController(out, retry_interval=0.01, write_timeout=30, overtake_after=0.05)
    await c.start()
    await c.drain()
    out.hang.clear()
    c.mouse_button("web", "left", True)  # queued first: its write hangs
    async with asyncio.timeout(1):
        await out.hanging.wait()
    expected = tap(c, "KeyO", "KeyK")
    # Not after the 30 s write timeout: once the mouse's write is overdue, keys go past it.
    await out.wait_for(lambda: out.of(Device.KEYBOARD)[1:] == expected, timeout=1.0)
    assert c.devices[Device.MOUSE].queued == 1 and c.online is True
    await c.close(timeout=0.05)


def get_us_layout() -> Layout:
    from hid.layouts import get_layout

    return get_layout("us")


def H5(buttons: int, dx: int, dy: int) -> bytes:
    return bytes([buttons, dx & 0xFF, dy & 0xFF, 0, 0])


class YieldingOutput(DeviceOutput):
    """Each write takes a few loop turns (the keyboard more than the mouse), and the mouse is
    offline for its first few attempts: independent writers would scramble the order."""

    def __init__(self, mouse_failures: int) -> None:
        super().__init__()
        self.mouse_failures = mouse_failures

    async def write(self, report: Report) -> None:
        device = device_of(report.kind)
        for _ in range(3 if device is Device.KEYBOARD else 1):
            await asyncio.sleep(0)  # a yield, not a wait for time
        if device is Device.MOUSE and self.mouse_failures:
            self.mouse_failures -= 1
            raise TargetOffline("mouse not yet")
        await super().write(report)


def interleave(c: HidController, rounds: int) -> list[tuple[Device, bytes]]:
    """Key presses, button presses and relative moves interleaved; what each must produce."""
    c.set_mouse_mode("relative")
    sent: list[tuple[Device, bytes]] = []
    for i in range(rounds):
        code = f"Key{chr(ord('A') + i % 26)}"
        usage = 0x04 + i % 26
        c.key("t", code, True)
        sent.append((Device.KEYBOARD, kbd(0, usage)))
        c.mouse_button("t", "left", True)
        sent.append((Device.MOUSE, bytes([1, 0, 0, 0, 0])))
        c.mouse_rel(i % 5 + 1, -1)
        sent.append((Device.MOUSE, H5(1, i % 5 + 1, -1)))
        c.key("t", code, False)
        sent.append((Device.KEYBOARD, kbd(0)))
        c.mouse_button("t", "left", False)
        sent.append((Device.MOUSE, bytes(5)))
    return sent


async def test_order_kept_per_device_when_one_device_is_overtaken() -> None:
    out = YieldingOutput(mouse_failures=4)
    c = HidController(out, retry_interval=0.01, discard_after=30)
    await c.start()
    await c.drain()
    start = len(out.reports)
    sent = interleave(c, 40)
    async with asyncio.timeout(5):
        await c.drain()
    got = [(device_of(r.kind), r.data) for r in out.reports[start:]]
    for device in Device:
        assert [d for dev, d in got if dev is device] == [d for dev, d in sent if dev is device]
    assert got != sent  # the keyboard really went ahead of the failing mouse
    assert c.discarded == 0 and c.devices[Device.MOUSE].online is True
    await c.close()


async def test_order_kept_across_devices_while_both_take_reports() -> None:
    """Ctrl+click stays Ctrl, click: while no device is offline, reports leave in call order."""
    out = YieldingOutput(mouse_failures=0)
    c = HidController(out, retry_interval=0.01)
    await c.start()
    await c.drain()
    start = len(out.reports)
    sent = interleave(c, 40)
    async with asyncio.timeout(5):
        await c.drain()
    assert [(device_of(r.kind), r.data) for r in out.reports[start:]] == sent
    await c.close()


# --------------------------------------------------------------------------- real backends
async def test_otg_wrong_mouse_path_does_not_stall_the_keyboard(tmp_path: Path) -> None:
    """OtgOutput on FIFOs: the keyboard's exists, the mice point nowhere (a config typo)."""
    from hid.otg import OtgOutput
    from tests.test_otg import FifoHost, key_events

    os.mkfifo(tmp_path / "hidg0")
    keyboard = FifoHost(tmp_path / "hidg0")
    out = OtgOutput(tmp_path / "hidg0", tmp_path / "hidg1", tmp_path / "hidg2")
    c = HidController(out, retry_interval=0.01, discard_after=1.0)
    try:
        await c.start()
        await keyboard.wait_reports(1)  # start-up: nothing held
        c.mouse_button("web", "left", True)
        c.mouse_abs(1000, 2000)
        c.mouse_button("web", "right", True)
        c.key("web", "KeyA", True)
        c.key("web", "KeyA", False)
        await keyboard.wait_reports(3, timeout=0.8)  # well inside the mouse's discard window
        assert key_events(keyboard.reports[1:]) == [(0x04, True), (0x04, False)]
        assert c.devices[Device.MOUSE].discarded == 0 and c.devices[Device.MOUSE].queued == 2
        assert c.online is True and "hidg1" in (c.last_error or "")
        async with asyncio.timeout(3):
            await c.drain(Device.MOUSE)  # the mouse gives its input up on its own
        assert c.devices[Device.MOUSE].discarded == 2 and c.mouse.buttons == 0
        os.mkfifo(tmp_path / "hidg1")  # the path is fixed
        mouse = FifoHost(tmp_path / "hidg1", 7)
        assert await mouse.wait_reports(1) == [bytes([0, 0xE8, 0x03, 0xD0, 0x07, 0, 0])]
        mouse.close()
    finally:
        await c.close(timeout=0.2)
        keyboard.close()


async def test_ch9329_link_down_is_offline_for_both_devices() -> None:
    """One serial link carries both devices: when the chip stops answering, keyboard and mouse
    are both offline, each gives up its own input, and each ends with nothing held."""
    from hid.ch9329 import Ch9329Output
    from tests.ch9329_sim import Ch9329Sim, RelMove

    sim = Ch9329Sim().start()
    # The reply timeout leaves room for a loaded machine: a reply that comes late makes the
    # controller retry a report the chip already took (harmless for a release, but noisy).
    out = Ch9329Output(sim.path, 115200, reply_timeout=0.2, keepalive=0)
    c = HidController(out, retry_interval=0.01, discard_after=0.5)
    try:
        await c.start()
        await c.drain()
        sim.keyboard.clear()
        sim.mouse_abs.clear()
        c.set_mouse_mode("relative")
        sim.silent = True
        c.key("web", "ShiftLeft", True)
        c.mouse_button("web", "left", True)
        c.mouse_rel(10, 10)
        async with asyncio.timeout(3):
            await c.drain()  # both devices discard
        assert c.online is False and c.devices[Device.MOUSE].online is False
        assert c.devices[Device.KEYBOARD].discarded == 1 and c.devices[Device.MOUSE].discarded == 2
        assert sim.keyboard == [] and sim.mouse_rel == []
        sim.silent = False
        # The chip records a frame before it replies: wait for the controller to see the
        # replies (both devices online again), not only for the chip to have the frames.
        await hid_until(
            c,
            lambda: c.online is True and c.devices[Device.MOUSE].online is True,
            "both devices back online",
        )
        async with asyncio.timeout(3):
            await c.drain()
        assert sim.keyboard and all(r == kbd(0) for r in sim.keyboard)
        assert sim.mouse_rel and all(m == RelMove(0, 0, 0, 0) for m in sim.mouse_rel)
    finally:
        await c.close(timeout=0.2)
        sim.close()
    assert sim.violations == []
