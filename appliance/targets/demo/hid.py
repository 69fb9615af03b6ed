"""DemoOutput: the HID backend for the demo target (a machine simulated inside the process).

It hands each report to the machine exactly as /dev/hidg0 would hand it to a USB host, so the
controller, the typing engine and every API above them are exercised for real. A powered-off
machine refuses reports (TargetOffline), like a host with no USB power; LED changes flow back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from hid.output import HidOutput, TargetOffline
from hid.reports import Report


class DemoTarget(Protocol):
    """What DemoOutput needs from a simulated machine (:class:`.machine.DemoMachine`)."""

    @property
    def power(self) -> bool: ...

    @property
    def leds(self) -> int: ...

    def feed(self, report: Report) -> bool: ...

    def on_leds(self, callback: Callable[[int], None]) -> Callable[[], None]: ...


class DemoOutput(HidOutput):
    name = "demo"

    def __init__(self, machine: DemoTarget) -> None:
        super().__init__()
        self.machine = machine
        self._unsubscribe: Callable[[], None] | None = None

    async def open(self) -> None:
        if self._unsubscribe is None:
            self._unsubscribe = self.machine.on_leds(self._set_leds)
        self._set_leds(self.machine.leds)

    async def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    async def write(self, report: Report) -> None:
        if not self.machine.power:
            raise TargetOffline("demo target is powered off")
        self.machine.feed(report)
