"""The demo target: a whole machine simulated inside the process (screen, BIOS menus, a USB host
that decodes the HID reports, power), so every path of the appliance runs with no hardware.

- :mod:`.machine` — the machine's state and input decoding; :mod:`.menu` its menus and
  :mod:`.screen` their drawing;
- :mod:`.video` — its screen as a video source; :mod:`.hid` — the HID output that feeds it;
- :class:`DemoPower` — its power button.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from appliance.targets import Target, hid_output, video_source
from appliance.targets.facets import PowerAction, PowerState

if TYPE_CHECKING:
    from appliance.config import Config
    from appliance.targets.demo.machine import DemoMachine


class DemoPower:
    """The demo machine's power: off/off_hard cut it, on restores it, reset cycles it."""

    available = True

    def __init__(self, machine: DemoMachine) -> None:
        self.machine = machine

    @property
    def state(self) -> PowerState:
        return "on" if self.machine.power else "off"

    async def act(self, action: PowerAction) -> None:
        if action == "reset":
            self.machine.set_power(False)
            self.machine.set_power(True)
        else:
            self.machine.set_power(action == "on")


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
        power=DemoPower(machine),
        machine=machine,
    )
