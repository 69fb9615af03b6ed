"""A switch whose ports are machines inside the appliance (the demo rack, the QEMU guests).

Why one class: both answer at once and truthfully (a select takes effect immediately, a query
tells the active port), so the port selector, the API, DuckyScript and the hotkey reach them
exactly as they reach a rack switch; only the rack behind differs.
"""

from __future__ import annotations

from typing import Protocol

from appliance.switch.driver import SwitchError


class Rack(Protocol):
    """Machines numbered from 0, one of them on the console."""

    @property
    def active(self) -> int: ...

    def select(self, index: int) -> None:
        """Put machine ``index`` on the console (ValueError when there is none)."""


class InProcessSwitch:
    name = "in-process"
    can_query = True
    settles = False
    min_gap = 0.0

    def __init__(self, rack: Rack) -> None:
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
