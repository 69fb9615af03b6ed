"""The demo switch: the demo target's rack of simulated machines, switched in-process.

It answers like a well-behaved networked switch (selects take effect at once, queries tell the
truth), so the console, the API and scripts can be tried on it; the rack's front-panel button
(:meth:`~appliance.targets.demo.rack.DemoRack.press_button`) changes the port behind the
appliance's back, which polling notices.
"""

from __future__ import annotations

from appliance.switch.driver import SwitchError
from appliance.targets.demo.rack import DemoRack


class DemoSwitch:
    name = "demo"
    can_query = True
    settles = False
    min_gap = 0.0

    def __init__(self, rack: DemoRack) -> None:
        self.rack = rack

    async def select(self, port: int) -> int | None:
        try:
            self.rack.select(port - 1)
        except ValueError as exc:
            raise SwitchError(str(exc)) from None
        return port

    async def query(self) -> int:
        return self.rack.active + 1

    async def close(self) -> None:
        return None

    def port_renamed(self, port: int, name: str) -> None:
        """The console renamed a port: the machine's screen shows the new name."""
        self.rack.machines[port - 1].set_name(name)
