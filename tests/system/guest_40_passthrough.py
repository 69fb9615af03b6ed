"""Local passthrough through the real stack: a keyboard made with uinput in the VM → ipkvm
(uevent, EVIOCGRAB, evdev reads) → /dev/hidg0 → dummy_hcd → usbhid → the host side's keyboard.
The VM's USB host side sees the gadget itself too: ipkvm must not grab its own devices."""

from __future__ import annotations

import errno
import time
from typing import Any

import evdev
from evdev import ecodes
from systest import Api, drain, host_device, key_events, read_until, wait_for

NAME = "systest local keyboard"
KEYS = [ecodes.KEY_A + i for i in range(0, 26)]
KEYS += [
    ecodes.KEY_H, ecodes.KEY_I, ecodes.KEY_ENTER, ecodes.KEY_SPACE, ecodes.KEY_LEFTSHIFT,
    ecodes.KEY_SCROLLLOCK, ecodes.KEY_1, ecodes.KEY_2, ecodes.KEY_Z, ecodes.KEY_ESC,
]  # fmt: skip


def _keyboard(suffix: str) -> evdev.UInput:
    caps = {ecodes.EV_KEY: sorted(set(KEYS))}
    return evdev.UInput(caps, name=f"{NAME} {suffix}", vendor=0x1209, product=0x0001)


def _grabbed(api: Api, name: str) -> dict[str, Any] | None:
    devices: list[dict[str, Any]] = api.state()["passthrough"]["devices"]
    return next((d for d in devices if d["name"] == name), None)


def _tap(ui: evdev.UInput, key: int) -> None:
    for value in (1, 0):
        ui.write(ecodes.EV_KEY, key, value)
        ui.syn()
        time.sleep(0.03)


def test_passthrough_enabled_not_own_devices() -> None:
    state = Api().state()["passthrough"]
    assert state["enabled"] is True, state
    assert state["hotplug_error"] is None, state
    host_device("keyboard")  # the gadget is up on the host side by now
    names = [d["name"] for d in Api().state()["passthrough"]["devices"]]
    assert not any("ipkvm" in n for n in names), names


def test_uinput_keyboard_grabbed_and_typed() -> None:
    api = Api()
    kbd = host_device("keyboard")
    ui = _keyboard("1")
    try:
        dev = wait_for(lambda: _grabbed(api, ui.name), 20, "ipkvm grabbing the uinput keyboard")
        assert dev["kind"] == "keyboard", dev
        assert dev["client"].startswith("local:"), dev
        # Grabbed exclusively: a second grab of the node is refused.
        local = evdev.InputDevice(dev["path"])
        try:
            local.grab()
            raise AssertionError("the node was not grabbed by ipkvm")
        except OSError as exc:
            assert exc.errno == errno.EBUSY, exc
        finally:
            local.close()
        drain(kbd)
        for key in (ecodes.KEY_H, ecodes.KEY_I):
            _tap(ui, key)
        want = [(ecodes.KEY_H, 1), (ecodes.KEY_H, 0), (ecodes.KEY_I, 1), (ecodes.KEY_I, 0)]
        events = read_until(kbd, lambda ev: len(key_events(ev)) >= 4, 30, "h i on the host")
        assert key_events(events)[:4] == want, key_events(events)
    finally:
        ui.close()
    wait_for(lambda: _grabbed(api, ui.name) is None, 20, "ipkvm letting go of the device")


def test_vanish_while_held_releases_on_host() -> None:
    api = Api()
    kbd = host_device("keyboard")
    ui = _keyboard("2")
    try:
        wait_for(lambda: _grabbed(api, ui.name), 20, "ipkvm grabbing the uinput keyboard")
        drain(kbd)
        ui.write(ecodes.EV_KEY, ecodes.KEY_LEFTSHIFT, 1)
        ui.write(ecodes.EV_KEY, ecodes.KEY_Z, 1)
        ui.syn()
        read_until(
            kbd,
            lambda ev: {(ecodes.KEY_LEFTSHIFT, 1), (ecodes.KEY_Z, 1)} <= set(key_events(ev)),
            30,
            "shift+z held on the host",
        )
        held = wait_for(lambda: (_grabbed(api, ui.name) or {}).get("held"), 10, "held keys")
        assert set(held) == {"ShiftLeft", "KeyZ"}, held
    finally:
        ui.close()  # the device vanishes with both keys down
    events = read_until(
        kbd,
        lambda ev: {(ecodes.KEY_LEFTSHIFT, 0), (ecodes.KEY_Z, 0)} <= set(key_events(ev)),
        15,
        "shift and z released on the host after the device vanished",
    )
    assert (ecodes.KEY_LEFTSHIFT, 0) in key_events(events)
    wait_for(lambda: _grabbed(api, ui.name) is None, 20, "ipkvm letting go of the device")
    assert Api().state()["hid"]["keys_held"] == []
