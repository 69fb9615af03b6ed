"""The demo switch: the demo target's rack of simulated machines, switched in-process.

It answers like a well-behaved networked switch (selects take effect at once, queries tell the
truth), so the console, the API and scripts can be tried on it; the rack's front-panel button
(:meth:`~appliance.targets.demo.rack.DemoRack.press_button`) changes the port behind the
appliance's back, which polling notices.
"""

from __future__ import annotations

from appliance.switch.inprocess import InProcessSwitch
from appliance.targets.demo.rack import DemoRack


class DemoSwitch(InProcessSwitch):
    name = "demo"

    def __init__(self, rack: DemoRack) -> None:
        super().__init__(rack)
        self.machines = rack.machines

    def port_renamed(self, port: int, name: str) -> None:
        """The console renamed a port: the machine's screen shows the new name."""
        self.machines[port - 1].set_name(name)
