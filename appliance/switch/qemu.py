"""The qemu switch: the QEMU target's guests as the ports of a KVM switch.

Like the demo switch, it answers at once and truthfully (a select takes effect immediately and a
query tells the active port), so the port selector, the API, DuckyScript and the hotkey reach
several guests exactly as they reach the machines behind a rack switch.
"""

from __future__ import annotations

from appliance.switch.driver import SwitchError
from appliance.targets.qemu.rack import QemuRack


class QemuSwitch:
    name = "qemu"
    can_query = True
    settles = False
    min_gap = 0.0

    def __init__(self, rack: QemuRack) -> None:
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
