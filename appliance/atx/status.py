"""The power vocabulary shared by every power backend (null, demo, ATX).

It lives here, at the bottom of the ATX subsystem, rather than in ``targets.facets``: the ATX
controller implements the facet, and the facet module (a layer above) re-exports these names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

PowerState = Literal["on", "off", "unknown"]
PowerAction = Literal["on", "off", "off_hard", "reset"]
POWER_ACTIONS: tuple[PowerAction, ...] = get_args(PowerAction)
Led = Literal["power", "hdd"]
LEDS: tuple[Led, ...] = get_args(Led)


class ActionRefused(Exception):
    """The action cannot run now (another is in progress, or the machine is already in the
    requested state): the API answers 409 with this message."""


@dataclass(frozen=True, slots=True)
class PowerStatus:
    """What ``GET /api/power`` and the ``power`` WebSocket event say."""

    state: PowerState
    leds: dict[Led, bool | None]
    """Per LED: lit, dark, or None (not wired / not known)."""
    busy: bool = False
    action: str | None = None
    """The action in progress ("off_hard", "press"), or None."""
    available: bool = True
    """False: nothing to press for this machine now (no wiring, or a KVM switch port without
    one); ``reason`` says why."""
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "leds": dict(self.leds),
            "busy": self.busy,
            "action": self.action,
            "available": self.available,
            "reason": self.reason,
        }
