"""The one small interface every KVM switch driver implements, and the errors it raises.

A driver knows one model's wire protocol and nothing else: pacing, settling, polling, the
offline state and events are the :class:`~appliance.switch.controller.SwitchController`'s job, so
they are written (and tested) once for every model.
"""

from __future__ import annotations

from typing import Protocol


class SwitchError(Exception):
    """A switch command failed; the message says why in words for the console."""


class SwitchOffline(SwitchError):
    """The switch cannot be reached: its serial port is missing, the TCP connection failed, or
    it stopped answering. The controller shows ``offline`` and keeps trying to reconnect."""


class SwitchTimeout(SwitchOffline):
    """A reply did not arrive in time (the API answers 504)."""


class SwitchMismatch(SwitchError):
    """The switch answered, but names another port than the one selected."""


class SwitchBusy(SwitchError):
    """Another switch command is in flight (the API answers 409)."""


class SwitchDriver(Protocol):
    """One model of KVM switch. Ports are 1-based everywhere above the wire."""

    name: str
    can_query: bool
    """The active port can be asked for (so polling notices a front-panel change)."""
    settles: bool
    """A query right after a select may still see the old port (TESmart, ezCoo: ~1 s); the
    controller waits ``switch.settle`` before believing one."""
    min_gap: float
    """Seconds the device needs between two commands (TESmart: 1 s, from its protocol notes)."""

    async def select(self, port: int) -> int | None:
        """Switch to *port*. Returns the port the switch's reply names, or None when its protocol
        does not answer a select (then a query, or nothing, confirms it)."""

    async def query(self) -> int:
        """The active port as the switch reports it (only when ``can_query``)."""

    async def close(self) -> None:
        """Let go of the port or connection (reopened by the next command)."""
