"""The demo target: a whole machine simulated inside the process (screen, BIOS menus, a USB host
that decodes the HID reports, power), so every path of the appliance runs with no hardware.

- :mod:`.machine` — the machine's state and input decoding; :mod:`.menu` its menus and
  :mod:`.screen` their drawing;
- :mod:`.video` — its screen as a video source; :mod:`.hid` — the HID output that feeds it;
- :class:`DemoPower` — its ATX power and reset buttons and LEDs (a simulated motherboard).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from appliance.atx.control import AtxPower
from appliance.atx.sim import SimLines
from appliance.atx.wiring import wiring_from_config
from appliance.targets import Target, hid_output, video_source

if TYPE_CHECKING:
    from appliance.config import Config
    from appliance.targets.demo.machine import DemoMachine


class DemoPower(AtxPower):
    """The demo machine's power: the ATX controller over a simulated motherboard.

    The same code as real ATX wiring (press times from ``[atx]``, "on" only when the power LED is
    off, one action at a time, debounced LEDs), so the demo teaches what the appliance will do.
    The power LED follows the machine's power; the HDD LED pulses with every report it accepts.
    """

    def __init__(self, machine: DemoMachine, config: Config) -> None:
        wiring = wiring_from_config(config.atx)
        self.machine = machine
        self.sim = SimLines(machine)
        super().__init__(self.sim, wiring.times, debounce=wiring.debounce)
        self._unsubscribe: Callable[[], None] | None = None

    async def start(self) -> None:
        await super().start()
        if self._unsubscribe is None:
            self._unsubscribe = self.machine.on_activity(self.sim.activity)

    async def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        await super().close()


@dataclass
class DemoTarget(Target):
    """A target whose machine is simulated: tests and the demo routes can look inside it."""

    machine: DemoMachine | None = None


def make_machine(config: Config) -> DemoMachine:
    from appliance.targets.demo.machine import DemoMachine

    d = config.demo
    return DemoMachine(width=d.width, height=d.height, layout=d.layout, stamp=d.stamp)


def build(config: Config) -> DemoTarget:
    """The simulated machine with its own screen and HID host (or the configured real ones)."""
    machine = make_machine(config)
    get = cache(lambda: machine)
    return DemoTarget(
        kind="demo",
        video=video_source(config, get),
        hid=hid_output(config, get),
        power=DemoPower(machine, config),
        machine=machine,
    )
