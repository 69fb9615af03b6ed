"""The qemu switch: the QEMU target's guests as the ports of a KVM switch.

Like the demo switch, it answers at once and truthfully (a select takes effect immediately and a
query tells the active port), so the port selector, the API, DuckyScript and the hotkey reach
several guests exactly as they reach the machines behind a rack switch.
"""

from __future__ import annotations

from appliance.switch.inprocess import InProcessSwitch


class QemuSwitch(InProcessSwitch):
    name = "qemu"
