"""The demo target driven through the real HID path: HidController → DemoOutput → report bytes
→ DemoMachine (decoding them like a host) → pixels on its screen."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import cv2
import numpy as np
import pytest

from appliance.targets.demo.hid import DemoOutput
from appliance.targets.demo.machine import DemoMachine, abs_for_pixel
from appliance.targets.demo.screen import Rect
from appliance.targets.demo.video import DemoSource
from capture.frame import Image
from capture.hub import FrameHub
from capture.stamp import decode_stamp, stamp_age_ms, stamp_clock_ms
from hid.controller import HidController, Pacing
from hid.layouts import get_layout
from hid.reports import Report, ReportKind, abs_mouse_report, keyboard_report

WHITE = np.array([255, 255, 255], np.uint8)


@pytest.fixture
async def demo() -> AsyncIterator[tuple[DemoMachine, HidController]]:
    machine = DemoMachine()
    controller = HidController(DemoOutput(machine), retry_interval=0.01, discard_after=2.0)
    await controller.start()
    yield machine, controller
    await controller.close()


async def tap(controller: HidController, *codes: str) -> None:
    for code in codes:
        controller.key("test", code, True)
        controller.key("test", code, False)
    await controller.drain()


def diff_box(a: Image, b: Image) -> Rect | None:
    """Bounding box (x, y, w, h) of the pixels that differ, or None."""
    ys, xs = np.nonzero(np.any(a != b, axis=2))
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


def inside(box: Rect, outer: Rect) -> bool:
    x, y, w, h = box
    ox, oy, ow, oh = outer
    return ox <= x and oy <= y and x + w <= ox + ow and y + h <= oy + oh


def centre(rect: Rect) -> tuple[int, int]:
    x, y, w, h = rect
    return x + w // 2, y + h // 2


# --------------------------------------------------------------------------- keyboard
async def test_typed_text_appears_in_the_field_and_on_screen(
    demo: tuple[DemoMachine, HidController],
) -> None:
    machine, controller = demo
    before = machine.render().copy()
    await controller.type_text("Hello, World! 42", get_layout("us"), Pacing.fast())
    state = machine.state()
    assert state["text"] == "Hello, World! 42"
    assert state["editing"] is True
    after = machine.render()
    box = diff_box(before, after)
    assert box is not None, "typing must change the picture"
    assert inside(box, machine.field_rect("Main", "Asset Tag")), box
    # The field shows light text on black while editing: plenty of text pixels now.
    x, y, w, h = machine.field_rect("Main", "Asset Tag")
    assert (after[y : y + h, x : x + w].max(axis=2) > 200).sum() > 200


async def test_target_layout_decodes_like_a_host() -> None:
    machine = DemoMachine(layout="de")
    controller = HidController(DemoOutput(machine), retry_interval=0.01)
    await controller.start()
    try:
        result = await controller.type_text("Grüße, André @ 10€ ^", get_layout("de"), Pacing.fast())
    finally:
        await controller.close()
    assert result.plan.untypable == []
    assert machine.state()["text"] == "Grüße, André @ 10€ ^"


async def test_backspace_and_enter_edit_the_field(
    demo: tuple[DemoMachine, HidController],
) -> None:
    machine, controller = demo
    await controller.type_text("abcd", get_layout("us"), Pacing.fast())
    await tap(controller, "Backspace", "Backspace")
    assert machine.state()["text"] == "ab"
    await tap(controller, "Enter")
    assert machine.state()["editing"] is False
    # Enter again starts editing; Escape ends it; the text is kept.
    await tap(controller, "Enter")
    assert machine.state()["editing"] is True
    await tap(controller, "Escape")
    assert machine.state()["editing"] is False
    assert machine.state()["text"] == "ab"


async def test_arrow_keys_move_selection_and_tabs(
    demo: tuple[DemoMachine, HidController],
) -> None:
    machine, controller = demo
    assert machine.state()["selection"] == {
        "tab": "Main",
        "tab_index": 0,
        "item": "Asset Tag",
        "index": 3,
    }
    await tap(controller, "ArrowDown")
    assert machine.state()["selection"]["item"] == "System Language"  # type: ignore[index]
    await tap(controller, "ArrowUp", "ArrowUp")  # info lines above cannot be selected
    assert machine.state()["selection"]["item"] == "Asset Tag"  # type: ignore[index]
    await tap(controller, "ArrowRight")
    assert machine.state()["tab"] == "Advanced"
    assert machine.state()["selection"]["item"] == "Virtualization (VT-x)"  # type: ignore[index]
    await tap(controller, "ArrowDown", "ArrowDown", "Enter")  # SATA Mode: AHCI → RAID
    settings = machine.state()["settings"]
    assert settings["Advanced/SATA Mode"] == "RAID"  # type: ignore[index]
    await tap(controller, "ArrowLeft", "ArrowLeft")  # wraps from Main to Exit
    assert machine.state()["tab"] == "Exit"


async def test_selection_change_moves_the_highlight_on_screen(
    demo: tuple[DemoMachine, HidController],
) -> None:
    machine, controller = demo
    before = machine.render().copy()
    await tap(controller, "ArrowDown")
    after = machine.render()
    for name in ("Asset Tag", "System Language"):
        x, y, _, h = machine.item_rect("Main", name)
        region = (slice(y, y + h), slice(x, x + 5))  # the bar's left end, away from text
        assert not np.array_equal(before[region], after[region]), name


async def test_caps_lock_led_flows_back_to_the_controller(
    demo: tuple[DemoMachine, HidController],
) -> None:
    machine, controller = demo
    heard: list[str] = []
    controller.subscribe(heard.append)
    off = machine.render().copy()
    await tap(controller, "CapsLock")
    assert controller.leds.caps_lock and not controller.leds.num_lock
    assert "leds" in heard
    assert machine.state()["leds"] == 0x02
    # The host applies Caps Lock to a plain key press, as a real one would.
    await tap(controller, "KeyA")
    assert machine.state()["text"] == "A"
    # Typed text keeps its case (the controller works around the lock) and the lock stays on.
    await controller.type_text("bc", get_layout("us"), Pacing.fast())
    assert machine.state()["text"] == "Abc"
    assert controller.leds.caps_lock
    x, y, w, h = machine.led_rect(1)
    assert not np.array_equal(off[y : y + h, x : x + w], machine.render()[y : y + h, x : x + w])
    await tap(controller, "CapsLock", "NumLock")
    assert controller.leds.value == 0x01


def test_malformed_reports_are_ignored_like_a_host_would() -> None:
    machine = DemoMachine()
    assert machine.feed(Report(ReportKind.KEYBOARD, b"\x00\x00\x04")) is True
    assert machine.feed(Report(ReportKind.MOUSE_ABS, b"\x00")) is True
    assert machine.malformed == 2
    assert machine.state()["text"] == ""
    assert machine.state()["pointer"] == {"x": 640, "y": 360}


# --------------------------------------------------------------------------- mouse
async def test_absolute_mouse_moves_the_pointer_to_the_pixel(
    demo: tuple[DemoMachine, HidController],
) -> None:
    machine, controller = demo
    before = machine.render().copy()
    x, y = 300, 500
    controller.mouse_abs(abs_for_pixel(x, machine.width), abs_for_pixel(y, machine.height))
    await controller.drain()
    assert machine.state()["pointer"] == {"x": x, "y": y}
    after = machine.render()
    # Just below-right of the tip the arrow is white, where the background was blue.
    assert np.array_equal(after[y + 4, x + 1], WHITE)
    assert not np.array_equal(before[y + 4, x + 1], WHITE)
    box = diff_box(before, after)
    assert box is not None
    # Corners of the range reach the screen corners.
    controller.mouse_abs(32767, 32767)
    await controller.drain()
    assert machine.state()["pointer"] == {"x": 1279, "y": 719}


async def test_relative_mouse_moves_by_deltas_and_clamps(
    demo: tuple[DemoMachine, HidController],
) -> None:
    machine, controller = demo
    controller.set_mouse_mode("relative")
    await controller.drain()
    start = machine.state()["pointer"]
    assert isinstance(start, dict)
    controller.mouse_rel(-100, 50)
    await controller.drain()
    assert machine.state()["pointer"] == {"x": start["x"] - 100, "y": start["y"] + 50}
    controller.mouse_rel(-5000, -5000)
    await controller.drain()
    assert machine.state()["pointer"] == {"x": 0, "y": 0}


async def test_click_selects_the_item_or_tab_under_the_pointer(
    demo: tuple[DemoMachine, HidController],
) -> None:
    machine, controller = demo

    async def click_at(point: tuple[int, int]) -> None:
        controller.mouse_abs(
            abs_for_pixel(point[0], machine.width), abs_for_pixel(point[1], machine.height)
        )
        controller.mouse_button("test", "left", True)
        controller.mouse_button("test", "left", False)
        await controller.drain()

    await click_at(centre(machine.item_rect("Main", "Quiet Boot")))
    assert machine.state()["selection"]["item"] == "Quiet Boot"  # type: ignore[index]
    await click_at(centre(machine.item_rect("Main", "BIOS Vendor")))  # info: not selectable
    assert machine.state()["selection"]["item"] == "Quiet Boot"  # type: ignore[index]
    await click_at(centre(machine.tab_rect("Boot")))
    assert machine.state()["tab"] == "Boot"


# --------------------------------------------------------------------------- power
async def test_power_off_takes_the_controller_offline_and_back(
    demo: tuple[DemoMachine, HidController],
) -> None:
    machine, controller = demo
    await tap(controller, "CapsLock")
    assert controller.leds.caps_lock
    changed = asyncio.Event()
    controller.subscribe(lambda what: changed.set() if what == "online" else None)
    machine.set_power(False)
    assert machine.state()["power"] == "off"
    assert not controller.leds.caps_lock, "a host that is off has no LEDs lit"
    assert not machine.render().any(), "a powered-off machine shows black"
    controller.key("test", "KeyA", True)
    controller.key("test", "KeyA", False)
    async with asyncio.timeout(2):
        await changed.wait()
    assert controller.online is False
    changed.clear()
    machine.set_power(True)
    async with asyncio.timeout(2):
        await changed.wait()
        await controller.drain()
    assert controller.online is True
    assert machine.state()["text"] == "a", "reports queued while off arrive once it is on"


# --------------------------------------------------------------------------- video
def status(hub: FrameHub) -> str:
    return hub.signal.status


async def test_demo_source_publishes_and_reports_power() -> None:
    machine = DemoMachine()
    hub = FrameHub()
    source = DemoSource(machine, fps=100)
    await source.start(hub)
    try:
        async with asyncio.timeout(5):
            first = await hub.next_frame(0)
            second = await hub.next_frame(first.seq)
            assert status(hub) == "ok"
            assert second.content_seq == first.content_seq, "a static screen is unchanged"
            assert first.image.shape == (720, 1280, 3)
            output = DemoOutput(machine)
            await output.open()
            await output.write(keyboard_report(0, [0x04]))
            changed = await hub.next_frame(second.seq, changed_only=True)
            assert changed.content_seq > second.content_seq
            machine.set_power(False)
            dark = await hub.next_frame(changed.seq, changed_only=True)
            assert not dark.image.any()
            assert status(hub) == "target_off"
    finally:
        await source.close()


def test_render_is_cached_until_something_changes() -> None:
    machine = DemoMachine(1920, 1080)
    first = machine.render()
    assert first.shape == (1080, 1920, 3)
    assert machine.render() is first
    assert machine.cached_frame() is first
    machine.feed(abs_mouse_report(0, 100, 100))
    assert machine.cached_frame() is None
    moved = machine.render()
    assert moved is not first and not np.array_equal(moved, first)
    with pytest.raises(ValueError):
        DemoMachine(800, 600)


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080)])
def test_stamp_round_trip_survives_jpeg_q50(size: tuple[int, int]) -> None:
    machine = DemoMachine(*size, stamp=True)
    assert decode_stamp(DemoMachine(*size).render()) is None, "no stamp, no reading"
    frames = [machine.render() for _ in range(3)]
    now = stamp_clock_ms()
    for number, image in enumerate(frames, start=1):
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 50])
        assert ok
        decoded = cv2.imdecode(data, cv2.IMREAD_COLOR)
        assert decoded is not None
        stamp = decode_stamp(decoded)
        assert stamp is not None
        counter, ms = stamp
        assert counter == number
        assert 0 <= stamp_age_ms(ms, now) < 1000
    # A viewer scaled to half size still reads it.
    half = cv2.resize(frames[0], (size[0] // 2, size[1] // 2), interpolation=cv2.INTER_AREA)
    assert decode_stamp(half) == decode_stamp(frames[0])
    # Frames differ every time (the stamp changes) though the screen did not.
    assert not np.array_equal(frames[0], frames[1])
