"""CH9329 serial HID backend: pure framing, then the real controller + backend against a
simulated chip on a pty pair (bytes on the wire, as the chip would see them)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from hid.ch9329 import (
    Ch9329Output,
    Frame,
    FrameParser,
    build_frame,
    encode_report,
    parse_info,
    scale_abs,
)
from hid.controller import HidController, Pacing
from hid.reports import Report, ReportKind, abs_mouse_report, keyboard_report, rel_mouse_report
from hid.text import LSHIFT, Stroke
from tests.ch9329_sim import AbsMove, Ch9329Sim, RelMove

H = bytes.fromhex


def kbd(mods: int, *keys: int) -> bytes:
    return bytes([mods, 0, *keys, *([0] * (6 - len(keys)))])


# =========================================================================== pure functions
def test_build_frame_known_bytes() -> None:
    assert build_frame(0, 0x01) == H("57 AB 00 01 00 03")
    assert build_frame(0, 0x02, kbd(0, 0x04)) == H("57 AB 00 02 08 00 00 04 00 00 00 00 00 10")
    # From the vendor's forum: relative move, left button, no motion.
    assert build_frame(0, 0x05, H("01 01 00 00 00")) == H("57 AB 00 05 05 01 01 00 00 00 0E")
    assert build_frame(0x01, 0x01) == H("57 AB 01 01 00 04")
    with pytest.raises(ValueError):
        build_frame(0, 0x02, bytes(65))


def test_parser_byte_by_byte_garbage_and_several_frames() -> None:
    ok = H("57 AB 00 82 01 00 85")
    err = H("57 AB 00 C5 01 E4 AC")  # a real error reply: checksum mismatch on command 0x05
    parser = FrameParser()
    frames: list[Frame] = []
    for byte in H("00 FF 57 13 AB 57") + ok + err:
        frames.extend(parser.feed(bytes([byte])))
    assert frames == [Frame(0, 0x82, b"\x00"), Frame(0, 0xC5, b"\xe4")]
    assert parser.skipped == 6
    assert list(parser.feed(ok + ok)) == [Frame(0, 0x82, b"\x00")] * 2


def test_parser_bad_checksum_and_impossible_length_resync() -> None:
    parser = FrameParser()
    bad = H("57 AB 00 82 01 00 86")
    good = H("57 AB 00 81 08 30 01 02 00 00 00 00 00") + bytes(
        [sum(H("57 AB 00 81 08 30 01 02")) & 0xFF]
    )
    frames = list(parser.feed(bad + good))
    assert frames == [Frame(0, 0x82, b"\x00", checksum_ok=False), Frame(0, 0x81, good[5:-1])]
    assert parser.bad_checksums == 1
    # A header-like pair followed by an impossible length is noise, not a frame to wait for.
    assert list(parser.feed(H("57 AB 00 82 F0") + H("57 AB 00 82 01 00 85"))) == [
        Frame(0, 0x82, b"\x00")
    ]


def test_parser_frame_split_inside_header() -> None:
    parser = FrameParser()
    assert list(parser.feed(H("57"))) == []
    assert list(parser.feed(H("AB 00 82 01"))) == []
    assert list(parser.feed(H("00 85"))) == [Frame(0, 0x82, b"\x00")]
    assert parser.skipped == 0


def test_abs_scaling_exact() -> None:
    assert [scale_abs(v) for v in (0, 1, 4, 5, 16383, 16384, 32766, 32767)] == [
        0,
        0,
        0,
        1,
        2047,
        2048,
        4095,
        4095,
    ]
    assert all(round(v * 4095 / 32767) == scale_abs(v) for v in range(0, 32768, 7))
    cmd, data = encode_report(abs_mouse_report(0x01, 32767, 0, wheel=-1, pan=5))
    assert (cmd, data) == (0x04, H("02 01 FF 0F 00 00 FF"))  # pan dropped: 7 bytes only


def test_relative_two_complement_not_255_plus_v() -> None:
    assert encode_report(rel_mouse_report(0, -1, -127, wheel=-2)) == (0x05, H("01 00 FF 81 FE"))
    assert encode_report(rel_mouse_report(0x02, 127, 1, pan=-3)) == (0x05, H("01 02 7F 01 00"))
    # Back/forward buttons do not exist on the chip's mouse.
    assert encode_report(rel_mouse_report(0x1F, 0, 0))[1][1] == 0x07


def test_keyboard_and_info() -> None:
    assert encode_report(keyboard_report(0x02, [0x04])) == (0x02, kbd(0x02, 0x04))
    info = parse_info(H("30 01 02 00 00 00 00 00"))
    assert (info.version, info.usb_enumerated, info.leds) == (0x30, True, 0x02)
    assert parse_info(H("30 00 00 00 00 00 00 00")).usb_enumerated is False


# =========================================================================== on a pty
@pytest.fixture
async def sim() -> AsyncIterator[Ch9329Sim]:
    s = Ch9329Sim().start()
    yield s
    s.close()
    assert s.violations == []


@contextlib.asynccontextmanager
async def running(
    port: str,
    *,
    sim: Ch9329Sim,
    keepalive: float = 0.0,
    reply_timeout: float = 0.3,
    discard_after: float = 30.0,
    baseline: bool = True,
) -> AsyncIterator[tuple[HidController, Ch9329Output]]:
    out = Ch9329Output(port, 115200, reply_timeout=reply_timeout, keepalive=keepalive)
    ctl = HidController(out, retry_interval=0.01, discard_after=discard_after)
    await ctl.start()
    # Every start tells the target nothing is held: get-info, an empty keyboard report and a
    # centred pointer. Tests look at what comes after (baseline=False: a chip that does not answer
    # at start, where those best-effort reports are dropped).
    if baseline:
        await ctl.drain()
        assert [cmd for cmd, _ in sim.frames] == [0x01, 0x02, 0x04]
        assert sim.keyboard == [kbd(0)]
        sim.frames.clear()
        sim.keyboard.clear()
        sim.mouse_abs.clear()
    try:
        yield ctl, out
    finally:
        await ctl.close()


async def until(ctl: HidController, predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    """Wait (bounded) until *predicate* holds, re-checked whenever the controller reports a
    change (online, leds, keys)."""
    changed = asyncio.Event()
    unsubscribe = ctl.subscribe(lambda _what: changed.set())
    try:
        async with asyncio.timeout(timeout):
            while not predicate():
                changed.clear()
                await changed.wait()
    finally:
        unsubscribe()


def online_events(ctl: HidController) -> list[bool | None]:
    seen: list[bool | None] = []
    ctl.subscribe(lambda what: seen.append(ctl.online) if what == "online" else None)
    return seen


async def test_typing_arrives_in_order(sim: Ch9329Sim) -> None:
    async with running(sim.path, sim=sim) as (ctl, out):
        ctl.key("u", "ShiftLeft", True)
        ctl.key("u", "KeyA", True)
        ctl.key("u", "KeyA", False)
        ctl.key("u", "ShiftLeft", False)
        ctl.key("u", "KeyB", True)
        ctl.key("u", "KeyB", False)
        await ctl.drain()
        assert sim.keyboard == [kbd(2), kbd(2, 4), kbd(2), kbd(0), kbd(0, 5), kbd(0)]
        assert ctl.online is True
        assert out.usb_enumerated is True
        # After start-up (get-info first, see running()), the reports and nothing else.
        assert [cmd for cmd, _ in sim.frames] == [0x02] * 6


class TinyLayout:
    name = "tiny"
    description = "enough of US for a test"

    def strokes(self, char: str) -> tuple[Stroke, ...] | None:
        if char.isalpha():
            usage = 0x04 + ord(char.lower()) - ord("a")
            return (Stroke(usage, LSHIFT if char.isupper() else 0),)
        return {"!": (Stroke(0x1E, LSHIFT),), " ": (Stroke(0x2C),)}.get(char)


async def test_type_text_through_the_chip(sim: Ch9329Sim) -> None:
    async with running(sim.path, sim=sim) as (ctl, _):
        result = await ctl.type_text("Hi!", TinyLayout(), Pacing.fast())
        await ctl.drain()
        assert result.plan.untypable == []
        assert sim.keyboard == [
            *(kbd(2), kbd(2, 0x0B), kbd(2), kbd(0)),  # H: Shift down, h, h up, Shift up
            *(kbd(0, 0x0C), kbd(0)),  # i
            *(kbd(2), kbd(2, 0x1E), kbd(2), kbd(0)),  # !
            kbd(0),  # typing always ends with what clients really hold: nothing
        ]


async def test_absolute_mouse_scaled_to_chip_range(sim: Ch9329Sim) -> None:
    points = [(0, 0), (32767, 32767), (16384, 16384), (32767, 0), (0, 32767), (16383, 8192)]
    async with running(sim.path, sim=sim) as (ctl, _):
        for x, y in points:
            ctl.mouse_abs(x, y)
            await ctl.drain()  # one at a time: queued absolute moves may be coalesced
        ctl.mouse_button("u", "left", True)
        ctl.mouse_wheel(-2, dx=3)  # the pan part cannot reach the target through this chip
        await ctl.drain()
    assert sim.mouse_abs[: len(points)] == [
        AbsMove(0, 0, 0, 0),
        AbsMove(0, 4095, 4095, 0),
        AbsMove(0, 2048, 2048, 0),
        AbsMove(0, 4095, 0, 0),
        AbsMove(0, 0, 4095, 0),
        AbsMove(0, 2047, 1024, 0),
    ]
    assert sim.mouse_abs[len(points) : len(points) + 2] == [
        AbsMove(1, 2047, 1024, 0),
        AbsMove(1, 2047, 1024, -2),
    ]


async def test_relative_mouse_negative_and_large_moves(sim: Ch9329Sim) -> None:
    async with running(sim.path, sim=sim) as (ctl, _):
        ctl.set_mouse_mode("relative")
        ctl.mouse_rel(-1, -127)
        ctl.mouse_rel(-300, 200)
        ctl.mouse_wheel(-1)
        await ctl.drain()
    raw = [data for cmd, data in sim.frames if cmd == 0x05]
    assert raw[0] == H("01 00 FF 81 00")
    assert sim.mouse_rel[1:4] == [
        RelMove(0, -127, 127, 0),
        RelMove(0, -127, 73, 0),
        RelMove(0, -46, 0, 0),
    ]
    assert sum(m.dx for m in sim.mouse_rel[1:4]) == -300
    assert sum(m.dy for m in sim.mouse_rel[1:4]) == 200
    assert raw[4] == H("01 00 00 00 FF")


async def test_keepalive_reads_leds_back(sim: Ch9329Sim) -> None:
    async with running(sim.path, sim=sim, keepalive=0.05) as (ctl, out):
        changes: list[bool] = []
        ctl.subscribe(lambda what: changes.append(ctl.leds.caps_lock) if what == "leds" else None)
        sim.leds = 0x02
        await sim.wait_for(lambda: bool(changes))
        assert ctl.leds.caps_lock and not ctl.leds.num_lock
        sim.leds = 0x05
        await until(ctl, lambda: ctl.leds.value == 0x05)
        assert ctl.leds.as_dict() == {"num": True, "caps": False, "scroll": True}
        assert sim.keyboard == []  # keep-alive is get-info only: nothing typed on the target
        assert {cmd for cmd, _ in sim.frames} == {0x01}
        assert out.info is not None and out.info.version == 0x30


async def test_resync_after_garbage(sim: Ch9329Sim) -> None:
    garbage = H("00 FF 57 13 AB 57")
    async with running(sim.path, sim=sim) as (ctl, out):
        ctl.key("u", "KeyA", True)
        await ctl.drain()
        sim.garbage_before_reply = garbage
        ctl.key("u", "KeyA", False)
        await ctl.drain()
        sim.send_raw(H("12 34"))  # noise between exchanges is dropped too
        ctl.key("u", "KeyC", True)
        await ctl.drain()
        assert sim.keyboard == [kbd(0, 4), kbd(0), kbd(0, 6)]  # nothing resent
        assert out.skipped_bytes == len(garbage) + 2
        assert out.stats.retries == 0 and out.stats.timeouts == 0
        assert ctl.online is True


async def test_bad_checksum_reply_is_retried_once(sim: Ch9329Sim) -> None:
    async with running(sim.path, sim=sim) as (ctl, out):
        ctl.key("u", "KeyA", True)
        await ctl.drain()
        sim.corrupt_replies = 1
        ctl.key("u", "KeyA", False)
        ctl.key("u", "KeyB", True)
        await ctl.drain()
        # The release went out twice (its first reply was unreadable), nothing was lost.
        assert sim.keyboard == [kbd(0, 4), kbd(0), kbd(0), kbd(0, 5)]
        assert out.bad_checksums == 1 and out.stats.retries == 1
        assert ctl.online is True
        # Two damaged replies in a row: the report is not given up, only delayed.
        seen = online_events(ctl)
        sim.corrupt_replies = 2
        ctl.key("u", "KeyB", False)
        await ctl.drain()
        assert seen == [False, True]
        assert sim.keyboard[-1] == kbd(0)


async def test_error_replies(sim: Ch9329Sim) -> None:
    async with running(sim.path, sim=sim) as (ctl, out):
        sim.error_status = 0xE4  # the chip saw our frame damaged: resent at once
        ctl.key("u", "KeyA", True)
        await ctl.drain()
        assert sim.keyboard == [kbd(0, 4)] and ctl.online is True
        seen = online_events(ctl)
        errors: list[str | None] = []
        ctl.subscribe(lambda what: errors.append(ctl.last_error) if what == "online" else None)
        sim.error_status = 0xE5  # refused: surfaces as an error, the controller retries
        ctl.key("u", "KeyA", False)
        await ctl.drain()
        assert seen == [False, True]
        assert errors[0] is not None and "parameter error" in errors[0]
        assert sim.keyboard == [kbd(0, 4), kbd(0)]
        assert out.stats.error_replies == 2


async def test_silent_chip_goes_offline_then_recovers_in_order(sim: Ch9329Sim) -> None:
    async with running(sim.path, sim=sim) as (ctl, out):
        ctl.key("u", "KeyA", True)
        await ctl.drain()
        seen = online_events(ctl)
        sim.silent = True
        ctl.key("u", "KeyA", False)
        ctl.key("u", "KeyB", True)
        ctl.key("u", "KeyB", False)
        await until(ctl, lambda: ctl.online is False)
        assert "no reply" in (ctl.last_error or "")
        assert sim.keyboard == [kbd(0, 4)]
        await sim.wait_for(lambda: len(sim.ignored) >= 2)  # it keeps trying
        sim.silent = False
        await ctl.drain()
        assert sim.keyboard == [kbd(0, 4), kbd(0), kbd(0, 5), kbd(0)]
        assert seen == [False, True]
        assert out.stats.timeouts >= 1


async def test_loop_not_blocked_while_chip_is_silent(sim: Ch9329Sim) -> None:
    sim.silent = True
    lags: list[float] = []

    async def ticker() -> None:
        while True:
            t0 = time.monotonic()
            await asyncio.sleep(0.005)
            lags.append(time.monotonic() - t0 - 0.005)

    async with running(sim.path, sim=sim, baseline=False) as (ctl, _):
        tick = asyncio.create_task(ticker())
        ctl.key("u", "KeyA", True)
        await until(ctl, lambda: ctl.online is False)
        await sim.wait_for(lambda: len(sim.ignored) >= 3)
        tick.cancel()
        # Waiting for the chip (0.3 s per attempt) never holds the loop: a blocking read would
        # show up here as a lag of a whole reply timeout.
        assert len(lags) > 20 and max(lags) < 0.15
        sim.silent = False
        await ctl.drain()
        assert sim.keyboard == [kbd(0, 4)]  # the start-up release was dropped: chip not answering


async def test_target_usb_not_enumerated(sim: Ch9329Sim) -> None:
    sim.usb_enumerated = False
    async with running(sim.path, sim=sim, baseline=False) as (ctl, out):
        ctl.key("u", "KeyA", True)
        await until(ctl, lambda: ctl.online is False)
        assert "enumerated" in (ctl.last_error or "")
        await sim.wait_for(lambda: sim.info_requests >= 3)  # polled while waiting
        assert sim.keyboard == [] and out.usb_enumerated is False
        sim.usb_enumerated = True
        await ctl.drain()
        assert sim.keyboard == [kbd(0, 4)]  # the start-up release was dropped: chip not answering
        assert ctl.online is True


async def test_target_switched_off_mid_paste_holds_the_rest(sim: Ch9329Sim) -> None:
    text = "abcdefghijklmnopqrst"
    async with running(sim.path, sim=sim, keepalive=0.05) as (ctl, out):
        typing = asyncio.create_task(ctl.type_text(text, TinyLayout()))
        await sim.wait_for(lambda: len(sim.keyboard) >= 4)
        sim.usb_enumerated = False  # target powered off; the chip still acknowledges reports
        await until(ctl, lambda: ctl.online is False)  # found by get-info within ~keepalive
        held_at = len(sim.keyboard)
        asked = sim.info_requests
        await sim.wait_for(lambda: sim.info_requests >= asked + 3)
        assert len(sim.keyboard) == held_at < 2 * len(text)  # nothing sent while it is off
        sim.usb_enumerated = True
        await typing
        await ctl.drain()
        expected = [r for c in text for r in (kbd(0, 4 + ord(c) - ord("a")), kbd(0))]
        assert sim.keyboard == [*expected, kbd(0)]  # complete, in order, nothing twice
        assert out.usb_enumerated is True


async def test_malformed_report_is_dropped_not_stalling_the_queue(sim: Ch9329Sim) -> None:
    async with running(sim.path, sim=sim) as (ctl, out):
        await out.write(Report(ReportKind.KEYBOARD, b"\x00\x00"))
        ctl.key("u", "KeyA", True)
        await ctl.drain()
        assert sim.keyboard == [kbd(0, 4)]
        assert out.stats.unsupported == 1 and ctl.online is True


async def test_port_vanishes_and_comes_back(sim: Ch9329Sim, tmp_path: Path) -> None:
    link = tmp_path / "ttyCH9329"
    link.symlink_to(sim.path)
    second: Ch9329Sim | None = None
    try:
        async with running(str(link), sim=sim) as (ctl, out):
            ctl.key("u", "KeyA", True)
            await ctl.drain()
            assert sim.keyboard == [kbd(0, 4)]
            sim.close()  # adapter unplugged: the pty is gone and so is its by-id link
            link.unlink()
            ctl.key("u", "KeyA", False)
            ctl.key("u", "KeyB", True)
            await until(ctl, lambda: ctl.online is False)
            assert not out.connected
            assert (ctl.last_error or "").startswith("CH9329 serial port")
            second = Ch9329Sim().start()
            link.symlink_to(second.path)  # plugged back in, new tty behind the same name
            await ctl.drain()
            assert second.keyboard == [kbd(0), kbd(0, 5)]
            assert ctl.online is True and out.connected
            assert out.stats.opens == 2 and out.stats.port_lost == 1
    finally:
        if second is not None:
            second.close()
            assert second.violations == []


async def test_keepalive_reconnects_without_input(sim: Ch9329Sim, tmp_path: Path) -> None:
    link = tmp_path / "ttyUSB9"
    link.symlink_to(sim.path)
    second: Ch9329Sim | None = None
    try:
        async with running(str(link), sim=sim, keepalive=0.05) as (ctl, out):
            await sim.wait_for(lambda: sim.info_requests >= 1)
            sim.close()
            link.unlink()
            second = Ch9329Sim().start()
            second.leds = 0x01
            link.symlink_to(second.path)
            await until(ctl, lambda: ctl.leds.num_lock)  # found again by the keep-alive alone
            assert out.connected and out.stats.opens == 2 and out.stats.port_lost == 1
            assert second.keyboard == []
    finally:
        if second is not None:
            second.close()
            assert second.violations == []
