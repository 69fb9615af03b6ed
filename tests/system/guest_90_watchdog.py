"""A stalled service (SIGSTOP) is restarted by the systemd watchdog, and a key held at that moment
is released on the host side. Runs last: it restarts ipkvm."""

from __future__ import annotations

import os
import signal

import evdev
from evdev import ecodes
from systest import (
    Api,
    drain,
    host_device,
    key_events,
    read_until,
    timeout,
    unit_property,
    wait_for,
)


def held(kbd: evdev.InputDevice, code: int) -> bool:
    """The host's view of the key (EVIOCGKEY): the held key auto-repeats meanwhile, and reading
    every repeat event would only race the kernel's small evdev buffer."""
    drain(kbd)
    return code in kbd.active_keys()


@timeout(240)
def test_watchdog_restarts_stalled_service_and_keys_are_released() -> None:
    api = Api()
    kbd = host_device("keyboard")
    drain(kbd)
    api.post("/api/hid/key", {"code": "KeyA", "down": True})
    wait_for(lambda: held(kbd, ecodes.KEY_A), 30, "KEY_A down on the host")
    pid = int(unit_property("ipkvm.service", "MainPID"))
    restarts = int(unit_property("ipkvm.service", "NRestarts") or 0)
    os.kill(pid, signal.SIGSTOP)
    # WatchdogSec=20 in the unit; the abort, ExecStopPost (all released) and a new start follow.
    wait_for(lambda: not held(kbd, ecodes.KEY_A), 120, "KEY_A released on the host")
    wait_for(
        lambda: (
            unit_property("ipkvm.service", "ActiveState") == "active"
            and int(unit_property("ipkvm.service", "MainPID") or 0) not in (0, pid)
        ),
        180,
        "ipkvm.service restarted and active",
    )
    assert int(unit_property("ipkvm.service", "NRestarts")) == restarts + 1
    # the new process serves the API and the host gets keys again
    wait_for(lambda: Api().state()["hid"]["online"], 60, "hid online after the restart")
    drain(kbd)
    Api().post("/api/hid/keys", {"keys": "b"})
    read_until(kbd, lambda ev: (ecodes.KEY_B, 0) in key_events(ev), 30, "KEY_B after the restart")
