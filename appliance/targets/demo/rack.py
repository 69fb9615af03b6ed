"""DemoRack: several demo machines behind a simulated KVM switch, one of them "active".

Why one object that looks like one machine: the demo's video source, HID output and power button
(:class:`~.video.DemoSource`, :class:`~.hid.DemoOutput`, :class:`~appliance.targets.demo.DemoPower`)
each talk to "the machine". Handing them the rack instead, which forwards every call to the
active machine, makes switching change what the video shows and which machine the HID reports
reach, with no switch-awareness in any of them — as a real KVM switch is invisible to the
capture card and the USB gadget. Each machine keeps its own menus, text, LEDs and power.

The ``demo`` switch driver (:mod:`appliance.switch.demo`) moves :attr:`active`; :meth:`press_button`
is the front panel (a change the appliance learns only by polling).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from appliance.targets.demo.machine import DemoMachine
from capture.frame import Image
from hid.reports import Report

LedCallback = Callable[[int], None]
T = TypeVar("T")


class DemoRack:
    """N demo machines and the index of the one on the console port. Use from one event loop."""

    def __init__(self, machines: Sequence[DemoMachine]) -> None:
        if not machines:
            raise ValueError("a demo rack needs at least one machine")
        self.machines = list(machines)
        self._active = 0
        self._led_callbacks: list[LedCallback] = []
        self._activity_callbacks: list[Callable[[], None]] = []
        self._select_callbacks: list[Callable[[], None]] = []
        self.switches = 0  # how often the active machine changed (tests, statistics)
        for machine in self.machines:
            machine.on_leds(self._machine_leds(machine))
            machine.on_activity(self._machine_activity(machine))

    # ------------------------------------------------------------------ the switch
    @property
    def active(self) -> int:
        """The 0-based index of the machine on the console port."""
        return self._active

    @property
    def machine(self) -> DemoMachine:
        return self.machines[self._active]

    def select(self, index: int) -> None:
        """Put machine *index* (0-based) on the console port; its LEDs become the keyboard's."""
        if not 0 <= index < len(self.machines):
            raise ValueError(f"no machine {index} in a rack of {len(self.machines)}")
        if index == self._active:
            return
        self._active = index
        self.switches += 1
        self._announce_leds(self.machine.leds)
        for callback in list(self._select_callbacks):
            callback()

    def on_select(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call *callback()* after another machine came onto the console port (the power LED then
        shows that machine's power)."""
        return _subscribe(self._select_callbacks, callback)

    def press_button(self, port: int) -> None:
        """The switch's front-panel button for *port* (1-based): no command, no notice."""
        self.select(port - 1)

    # ------------------------------------------------------------------ as one machine
    @property
    def width(self) -> int:
        return self.machine.width

    @property
    def height(self) -> int:
        return self.machine.height

    @property
    def power(self) -> bool:
        return self.machine.power

    def set_power(self, on: bool) -> None:
        self.machine.set_power(on)

    @property
    def leds(self) -> int:
        return self.machine.leds

    def on_leds(self, callback: LedCallback) -> Callable[[], None]:
        return _subscribe(self._led_callbacks, callback)

    def on_activity(self, callback: Callable[[], None]) -> Callable[[], None]:
        """The active machine's work (its HDD LED): inactive machines are not on the console."""
        return _subscribe(self._activity_callbacks, callback)

    def feed(self, report: Report) -> bool:
        return self.machine.feed(report)

    def cached_frame(self) -> Image | None:
        return self.machine.cached_frame()

    def render(self) -> Image:
        return self.machine.render()

    # ------------------------------------------------------------------ internals
    def _machine_leds(self, machine: DemoMachine) -> LedCallback:
        def changed(leds: int) -> None:
            if machine is self.machine:  # an inactive machine's LEDs are not on the console
                self._announce_leds(leds)

        return changed

    def _machine_activity(self, machine: DemoMachine) -> Callable[[], None]:
        def worked() -> None:
            if machine is self.machine:
                for callback in list(self._activity_callbacks):
                    callback()

        return worked

    def _announce_leds(self, leds: int) -> None:
        for callback in list(self._led_callbacks):
            callback(leds)


def _subscribe(callbacks: list[T], callback: T) -> Callable[[], None]:
    callbacks.append(callback)

    def unsubscribe() -> None:
        if callback in callbacks:
            callbacks.remove(callback)

    return unsubscribe
