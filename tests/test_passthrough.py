"""Local passthrough: real ``evdev.InputEvent`` records written into a pipe that stands in for the
device node, read by the same reader, hotkey detector and translator a grabbed device uses, into
a real HidController; the uevent parser with the kernel's message bytes; the device filter."""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from evdev import InputEvent, ecodes

from appliance.passthrough import devices
from appliance.passthrough.devices import Identity
from appliance.passthrough.hotkey import HotkeyDetector, parse_hotkey
from appliance.passthrough.keycodes import BUTTON_TO_NAME, KEY_TO_CODE
from appliance.passthrough.manager import Passthrough, Settings
from appliance.passthrough.reader import pack
from appliance.passthrough.session import DeviceSession
from appliance.passthrough.uevent import parse_uevent
from hid.controller import HidController
from hid.keymap import CODE_TO_USAGE, usage_for
from hid.output import MemoryOutput
from hid.reports import BUTTONS, ReportKind

# ------------------------------------------------------------------ the key table


def test_key_table_agrees_with_the_kernel_names() -> None:
    """Spot the table against evdev's own constants (generated from the kernel header)."""
    for letter in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
        assert KEY_TO_CODE[ecodes.ecodes[f"KEY_{letter}"]] == f"Key{letter}"
    for digit in "0123456789":
        assert KEY_TO_CODE[ecodes.ecodes[f"KEY_{digit}"]] == f"Digit{digit}"
        assert KEY_TO_CODE[ecodes.ecodes[f"KEY_KP{digit}"]] == f"Numpad{digit}"
    for n in range(1, 25):
        assert KEY_TO_CODE[ecodes.ecodes[f"KEY_F{n}"]] == f"F{n}"
    named = {
        "KEY_ESC": "Escape", "KEY_LEFTCTRL": "ControlLeft", "KEY_RIGHTALT": "AltRight",
        "KEY_LEFTMETA": "MetaLeft", "KEY_APOSTROPHE": "Quote", "KEY_GRAVE": "Backquote",
        "KEY_102ND": "IntlBackslash", "KEY_KPENTER": "NumpadEnter", "KEY_SYSRQ": "PrintScreen",
        "KEY_SCROLLLOCK": "ScrollLock", "KEY_PAUSE": "Pause", "KEY_COMPOSE": "ContextMenu",
        "KEY_DOT": "Period", "KEY_KPASTERISK": "NumpadMultiply", "KEY_PAGEDOWN": "PageDown",
        "KEY_LEFT": "ArrowLeft", "KEY_DELETE": "Delete", "KEY_RIGHTSHIFT": "ShiftRight",
    }  # fmt: skip
    for kernel, code in named.items():
        assert KEY_TO_CODE[ecodes.ecodes[kernel]] == code, kernel


def test_every_key_and_button_is_known_to_the_controller() -> None:
    for code in KEY_TO_CODE.values():
        assert code in CODE_TO_USAGE
        usage_for(code)
    assert set(BUTTON_TO_NAME.values()) <= set(BUTTONS)
    assert BUTTON_TO_NAME[ecodes.BTN_LEFT] == "left"
    assert BUTTON_TO_NAME[ecodes.BTN_SIDE] == "back"


# ------------------------------------------------------------------ a device on a pipe


def ev(type_: int, code: int, value: int) -> InputEvent:
    return InputEvent(1, 0, type_, code, value)


def key(code: int, value: int) -> list[InputEvent]:
    return [ev(ecodes.EV_KEY, code, value), ev(ecodes.EV_SYN, ecodes.SYN_REPORT, 0)]


@dataclass
class Selects:
    ports: list[int] = field(default_factory=list)

    async def __call__(self, port: int) -> int:
        self.ports.append(port)
        return port


@dataclass
class PipeDevice:
    """A session reading the read end of a pipe; the test writes events into the other end."""

    hid: HidController
    session: DeviceSession
    wfd: int

    def write(self, events: list[InputEvent]) -> None:
        os.write(self.wfd, b"".join(pack(e) for e in events))

    def unplug(self) -> None:
        os.close(self.wfd)
        self.wfd = -1

    def keyboard(self) -> list[bytes]:
        out = self.hid.output
        assert isinstance(out, MemoryOutput)
        return [r.data for r in out.reports if r.kind is ReportKind.KEYBOARD][1:]

    def reports(self, kind: ReportKind) -> list[bytes]:
        out = self.hid.output
        assert isinstance(out, MemoryOutput)
        return [r.data for r in out.reports if r.kind is kind]


@pytest.fixture
def selects() -> Selects:
    return Selects()


@pytest.fixture
async def pipe_device(selects: Selects) -> AsyncIterator[PipeDevice]:
    hid = HidController(MemoryOutput(), retry_interval=0.01, discard_after=0.2)
    await hid.start()
    rfd, wfd = os.pipe()
    session = DeviceSession(
        fd=rfd,
        hid=hid,
        client="local:1",
        hotkey=HotkeyDetector(parse_hotkey("scrolllock scrolllock"), timeout=0.2),
        select=selects,
    )
    session.start()
    device = PipeDevice(hid, session, wfd)
    yield device
    session.stop()
    if device.wfd >= 0:
        os.close(device.wfd)
    os.close(rfd)
    await hid.close()


async def settle(device: PipeDevice) -> None:
    """Let the loop read the pipe and the controller write its reports."""
    for _ in range(5):
        await asyncio.sleep(0.01)
    await device.hid.drain()


def usages(report: bytes) -> set[int]:
    return {b for b in report[2:] if b}


async def test_keys_arrive_as_reports(pipe_device: PipeDevice) -> None:
    pipe_device.write(key(ecodes.KEY_LEFTSHIFT, 1) + key(ecodes.KEY_H, 1) + key(ecodes.KEY_H, 2))
    await settle(pipe_device)
    assert set(pipe_device.hid.keyboard.held) == {0xE1, 0x0B}
    pipe_device.write(key(ecodes.KEY_H, 0) + key(ecodes.KEY_LEFTSHIFT, 0))
    await settle(pipe_device)
    reports = pipe_device.keyboard()
    # shift down, h down (the auto-repeat adds nothing), h up, shift up
    assert [(r[0], usages(r)) for r in reports] == [(2, set()), (2, {0x0B}), (2, set()), (0, set())]


async def test_mouse_motion_buttons_and_wheel(pipe_device: PipeDevice) -> None:
    pipe_device.write(
        [
            ev(ecodes.EV_REL, ecodes.REL_X, 5),
            ev(ecodes.EV_REL, ecodes.REL_Y, -3),
            ev(ecodes.EV_REL, ecodes.REL_X, 2),  # one frame: summed into one report
            ev(ecodes.EV_SYN, ecodes.SYN_REPORT, 0),
            *key(ecodes.BTN_LEFT, 1),
            ev(ecodes.EV_REL, ecodes.REL_WHEEL, -1),
            ev(ecodes.EV_SYN, ecodes.SYN_REPORT, 0),
        ]
    )
    await settle(pipe_device)
    assert pipe_device.hid.mouse.buttons == 1
    rel = pipe_device.reports(ReportKind.MOUSE_REL)
    moves = [
        (int.from_bytes(r[1:2], signed=True), int.from_bytes(r[2:3], signed=True)) for r in rel
    ]
    assert (7, -3) in moves, rel
    pipe_device.write(key(ecodes.BTN_LEFT, 0))
    await settle(pipe_device)
    assert pipe_device.hid.mouse.buttons == 0


async def test_unplug_releases_everything_it_held(pipe_device: PipeDevice) -> None:
    pipe_device.write(key(ecodes.KEY_LEFTCTRL, 1) + key(ecodes.KEY_C, 1) + key(ecodes.BTN_RIGHT, 1))
    await settle(pipe_device)
    assert set(pipe_device.hid.keyboard.held) == {0xE0, 0x06}
    # Another client's key stays down: only this device's are released.
    pipe_device.hid.key("ws:9", "KeyX", True)
    pipe_device.unplug()
    await asyncio.wait_for(pipe_device.session.ended.wait(), 2)
    await settle(pipe_device)
    assert set(pipe_device.hid.keyboard.held) == {0x1B}
    assert pipe_device.hid.mouse.buttons == 0
    assert pipe_device.session.held == []


async def test_enodev_ends_the_session_cleanly(
    pipe_device: PipeDevice, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipe_device.write(key(ecodes.KEY_A, 1))
    await settle(pipe_device)
    assert set(pipe_device.hid.keyboard.held) == {0x04}

    def gone(fd: int, n: int) -> bytes:
        raise OSError(errno.ENODEV, os.strerror(errno.ENODEV))

    monkeypatch.setattr("appliance.passthrough.reader.os.read", gone)
    pipe_device.write(key(ecodes.KEY_B, 1))  # makes the fd readable; the read fails
    await asyncio.wait_for(pipe_device.session.ended.wait(), 2)
    monkeypatch.undo()
    await settle(pipe_device)
    assert set(pipe_device.hid.keyboard.held) == set()


async def test_syn_dropped_releases(pipe_device: PipeDevice) -> None:
    pipe_device.write([*key(ecodes.KEY_A, 1), ev(ecodes.EV_SYN, ecodes.SYN_DROPPED, 0)])
    await settle(pipe_device)
    assert set(pipe_device.hid.keyboard.held) == set()
    assert pipe_device.session.held == []


# ------------------------------------------------------------------ the hotkey


def tap(code: int) -> list[InputEvent]:
    return key(code, 1) + key(code, 0)


async def test_hotkey_selects_the_port_and_is_not_forwarded(
    pipe_device: PipeDevice, selects: Selects
) -> None:
    pipe_device.write(tap(ecodes.KEY_SCROLLLOCK) + tap(ecodes.KEY_SCROLLLOCK) + tap(ecodes.KEY_3))
    await settle(pipe_device)
    assert selects.ports == [3]
    assert pipe_device.keyboard() == []  # nothing of it reached the target
    pipe_device.write(tap(ecodes.KEY_3))  # after the hotkey, a digit is a digit again
    await settle(pipe_device)
    assert [usages(r) for r in pipe_device.keyboard()] == [{0x20}, set()]


async def test_keypad_zero_is_port_ten(pipe_device: PipeDevice, selects: Selects) -> None:
    pipe_device.write(tap(ecodes.KEY_SCROLLLOCK) + tap(ecodes.KEY_SCROLLLOCK) + tap(ecodes.KEY_KP0))
    await settle(pipe_device)
    assert selects.ports == [10]


async def test_broken_sequence_is_replayed(pipe_device: PipeDevice, selects: Selects) -> None:
    pipe_device.write(tap(ecodes.KEY_SCROLLLOCK) + tap(ecodes.KEY_A))
    await settle(pipe_device)
    assert selects.ports == []
    # ScrollLock tapped (late), then A pressed and released
    assert [usages(r) for r in pipe_device.keyboard()] == [{0x47}, set(), {0x04}, set()]


async def test_lapsed_sequence_is_replayed_by_itself(
    pipe_device: PipeDevice, selects: Selects
) -> None:
    pipe_device.write(tap(ecodes.KEY_SCROLLLOCK))
    await settle(pipe_device)
    assert pipe_device.keyboard() == []
    await asyncio.sleep(0.3)  # hotkey timeout 0.2 s
    await pipe_device.hid.drain()
    assert [usages(r) for r in pipe_device.keyboard()] == [{0x47}, set()]
    assert selects.ports == []


def test_chord_step_needs_its_modifiers_held() -> None:
    det = HotkeyDetector(parse_hotkey("ctrl+alt"), timeout=1)
    held = frozenset({"ControlLeft"})
    assert det.key("ControlLeft", True, 0, held).forward
    step = det.key("AltLeft", True, 0, held | {"AltLeft"})
    assert not step.forward
    assert det.key("Digit2", True, 0.5, held | {"AltLeft", "Digit2"}).port == 2
    assert not det.key("Digit2", False, 0.6, held | {"AltLeft"}).forward  # its release too
    assert not det.key("AltLeft", False, 0.7, held).forward
    # Alt alone (no Ctrl held) is typing
    assert det.key("AltLeft", True, 1, frozenset({"AltLeft"})).forward


def test_hotkey_must_not_end_in_a_digit() -> None:
    with pytest.raises(ValueError, match="digit"):
        parse_hotkey("ctrl+1")


# ------------------------------------------------------------------ uevents

ADD_EVENT4 = (
    b"add@/devices/virtual/input/input7/event4\0ACTION=add\0"
    b"DEVPATH=/devices/virtual/input/input7/event4\0SUBSYSTEM=input\0MAJOR=13\0MINOR=68\0"
    b"DEVNAME=input/event4\0SEQNUM=2345\0"
)
ADD_INPUT7 = (
    b"add@/devices/virtual/input/input7\0ACTION=add\0DEVPATH=/devices/virtual/input/input7\0"
    b'SUBSYSTEM=input\0PRODUCT=6/1209/1/0\0NAME="systest local keyboard"\0PROP=0\0EV=3\0'
    b"KEY=1000000000007 ff9f207ac14057ff febeffdfffefffff fffffffffffffffe\0MODALIAS=input:b0006\0"
    b"SEQNUM=2343\0"
)
REMOVE_EVENT4 = (
    b"remove@/devices/virtual/input/input7/event4\0ACTION=remove\0"
    b"DEVPATH=/devices/virtual/input/input7/event4\0SUBSYSTEM=input\0MAJOR=13\0MINOR=68\0"
    b"DEVNAME=input/event4\0SEQNUM=2350\0"
)
ADD_MOUSE0 = (
    b"add@/devices/virtual/input/input7/mouse0\0ACTION=add\0"
    b"DEVPATH=/devices/virtual/input/input7/mouse0\0SUBSYSTEM=input\0MAJOR=13\0MINOR=32\0"
    b"DEVNAME=input/mouse0\0SEQNUM=2344\0"
)


def test_uevent_add_of_an_evdev_node() -> None:
    event = parse_uevent(ADD_EVENT4)
    assert event is not None
    assert (event.action, event.subsystem, event.devnode) == ("add", "input", "/dev/input/event4")
    assert event.is_evdev
    assert event.properties["SEQNUM"] == "2345"


def test_uevent_parents_and_legacy_nodes_are_not_evdev() -> None:
    parent = parse_uevent(ADD_INPUT7)
    assert parent is not None and not parent.is_evdev and parent.devnode is None
    assert parent.properties["NAME"] == '"systest local keyboard"'
    mouse = parse_uevent(ADD_MOUSE0)
    assert mouse is not None and not mouse.is_evdev
    removed = parse_uevent(REMOVE_EVENT4)
    assert removed is not None and removed.action == "remove" and removed.is_evdev


@pytest.mark.parametrize(
    "data",
    [
        b"libudev\0\xfe\xed\xca\xfe\x28\x00\x00\x00",  # udev's re-broadcast, binary header
        b"",
        b"no at sign\0ACTION=add\0",
        b"add@/devices/x\0ACTION=remove\0",  # header and ACTION disagree
    ],
)
def test_uevent_refuses_what_is_not_a_kernel_message(data: bytes) -> None:
    assert parse_uevent(data) is None


# ------------------------------------------------------------------ which devices

KEYBOARD_CAPS = {ecodes.EV_KEY: list(range(1, 120))}
MOUSE_CAPS = {
    ecodes.EV_KEY: [ecodes.BTN_LEFT, ecodes.BTN_RIGHT],
    ecodes.EV_REL: [ecodes.REL_X, ecodes.REL_Y, ecodes.REL_WHEEL],
}


def test_kinds() -> None:
    assert devices.kind_of(KEYBOARD_CAPS) == "keyboard"
    assert devices.kind_of(MOUSE_CAPS) == "mouse"
    both = {**MOUSE_CAPS, ecodes.EV_KEY: [*range(1, 120), ecodes.BTN_LEFT]}
    assert devices.kind_of(both) == "keyboard+mouse"
    assert devices.kind_of({ecodes.EV_KEY: [ecodes.KEY_POWER]}) is None  # the power button
    tablet = {ecodes.EV_KEY: [ecodes.BTN_LEFT], ecodes.EV_ABS: [0, 1]}
    assert devices.kind_of(tablet) is None


def test_filters_and_own_devices() -> None:
    kbd = Identity("/dev/input/event3", "Logitech K120", 0x046D, 0xC31C,
                   ("/dev/input/by-id/usb-Logitech_USB_Keyboard-event-kbd",))  # fmt: skip
    assert devices.matches(kbd, ())
    assert devices.matches(kbd, ("*K120*",))
    assert devices.matches(kbd, ("/dev/input/by-id/usb-Logitech*",))
    assert not devices.matches(kbd, ("*Mouse*", "/dev/input/event9"))
    own = Identity("/dev/input/event5", "ipkvm ipkvm Composite KVM Device", 0x1D6B, 0x0104)
    assert devices.is_own(own, [(0x1D6B, 0x0104)])
    assert devices.is_own(Identity("/dev/input/event6", "x", 0x1D6B, 0x0104), [(0x1D6B, 0x0104)])
    assert not devices.is_own(kbd, [(0x1D6B, 0x0104)])


# ------------------------------------------------------------------ the manager


@dataclass
class FakeNode:
    """An input device node as the manager sees it through evdev, read from a pipe."""

    name: str
    caps: dict[int, list[int]]
    vendor: int = 0x046D
    product: int = 0xC31C
    fd: int = -1
    wfd: int = -1
    grabbed: bool = False
    closed: bool = False

    def __post_init__(self) -> None:
        self.fd, self.wfd = os.pipe()

    @property
    def info(self) -> Any:
        return SimpleNamespace(vendor=self.vendor, product=self.product)

    def capabilities(self) -> dict[int, list[int]]:
        return self.caps

    def grab(self) -> None:
        self.grabbed = True

    def ungrab(self) -> None:
        self.grabbed = False

    def close(self) -> None:
        if not self.closed:
            os.close(self.fd)
            if self.wfd >= 0:
                os.close(self.wfd)
        self.closed = True


@pytest.fixture
def nodes() -> Iterator[dict[str, FakeNode]]:
    table: dict[str, FakeNode] = {}
    yield table
    for node in table.values():
        node.close()


async def test_manager_follows_uevents(nodes: dict[str, FakeNode]) -> None:
    hid = HidController(MemoryOutput(), retry_interval=0.01, discard_after=0.2)
    await hid.start()
    nodes["/dev/input/event4"] = FakeNode("Logitech K120", KEYBOARD_CAPS)
    nodes["/dev/input/event5"] = FakeNode("ipkvm ipkvm Composite KVM Device", KEYBOARD_CAPS,
                                          vendor=0x1D6B, product=0x0104)  # fmt: skip
    changes: list[int] = []
    clients = iter(range(1, 100))
    manager = Passthrough(
        settings=Settings(),
        hid=hid,
        new_client=lambda kind: f"{kind}:{next(clients)}",
        select=None,
        on_change=lambda: changes.append(1),
        own_ids=[(0x1D6B, 0x0104)],
        open_device=lambda path: nodes[path],
    )
    add5 = ADD_EVENT4.replace(b"event4", b"event5")
    for data in (ADD_EVENT4, add5, ADD_MOUSE0, ADD_INPUT7):
        event = parse_uevent(data)
        assert event is not None
        manager._uevent(event)
    await asyncio.sleep(0.05)
    state = manager.state()
    assert [d["path"] for d in state["devices"]] == ["/dev/input/event4"]
    assert state["devices"][0]["client"] == "local:1"
    assert state["hotkey"] is None  # no switch: nothing to switch
    assert nodes["/dev/input/event4"].grabbed and not nodes["/dev/input/event5"].grabbed
    assert nodes["/dev/input/event5"].closed

    node = nodes["/dev/input/event4"]
    os.write(node.wfd, b"".join(pack(e) for e in key(ecodes.KEY_LEFTSHIFT, 1)))
    await asyncio.sleep(0.05)
    assert set(hid.keyboard.held) == {0xE1}
    # The node vanishes: the read side ends, and the kernel's remove follows.
    os.close(node.wfd)
    node.wfd = -1
    await asyncio.sleep(0.05)
    assert manager.state()["devices"] == []
    assert set(hid.keyboard.held) == set()
    assert node.closed
    removed = parse_uevent(REMOVE_EVENT4)
    assert removed is not None
    manager._uevent(removed)  # already gone: nothing happens
    await manager.close()
    await hid.close()


async def test_manager_refuses_a_bad_hotkey() -> None:
    hid = HidController(MemoryOutput())
    with pytest.raises(ValueError, match=r"passthrough\.hotkey"):
        Passthrough(Settings(hotkey="scrolllock nosuchkey"), hid, str, None, lambda: None)


async def test_appliance_state_names_passthrough() -> None:
    from appliance.config import build_config
    from appliance.runtime import build_appliance

    off = build_appliance(build_config({"target": {"kind": "demo"}}))
    assert off.state()["passthrough"] == {"enabled": False, "devices": []}
    on = build_appliance(
        build_config({"target": {"kind": "demo"}, "passthrough": {"enabled": True}})
    )
    assert on.passthrough is not None
    assert on.state()["passthrough"]["enabled"] is True


async def test_hotkey_drives_the_appliance_switch() -> None:
    from appliance.config import build_config
    from appliance.runtime import build_appliance

    config = build_config(
        {"target": {"kind": "demo"}, "switch": {"driver": "demo"}, "passthrough": {"enabled": True}}
    )
    appliance = build_appliance(config)
    assert appliance.passthrough is not None and appliance.switch is not None
    assert appliance.passthrough.select == appliance.switch.select
    assert appliance.state()["passthrough"]["hotkey"] == "scrolllock scrolllock"
