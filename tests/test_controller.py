"""HidController: ordering, coalescing, ownership and the offline guarantee, on MemoryOutput."""

from __future__ import annotations

import asyncio

import pytest

from hid.controller import HidController, Pacing
from hid.keymap import UnknownKey
from hid.output import MemoryOutput, TargetOffline
from hid.reports import Report, ReportKind


def kbd(mods: int, *keys: int) -> bytes:
    return bytes([mods, 0, *keys, *([0] * (6 - len(keys)))])


@pytest.fixture
async def ctl() -> HidController:
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
    out = MemoryOutput()
    out.offline = True
    c = HidController(out, retry_interval=0.01, discard_after=0.05)
    states: list[str] = []
    c.subscribe(states.append)
    await c.start()
    c.key("a", "KeyX", True)
    c.key("a", "ShiftLeft", True)
    await c.drain()  # returns once the queued input was discarded
    assert c.online is False and c.discarded == 2
    assert c.keyboard.held == {}
    out.offline = False
    c.mouse_abs(5, 5)
    await c.drain()
    assert out.reports[0].data == kbd(0)  # first thing the target sees: nothing held
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
