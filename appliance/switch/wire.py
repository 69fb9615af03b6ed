"""What a serial/TCP switch model is on the wire: its commands, its replies, its manners.

Each model module (:mod:`.tesmart`, :mod:`.ezcoo`, :mod:`.xh`, :mod:`.extron`, :mod:`.pway`)
defines one :class:`WireProtocol`; :class:`~appliance.switch.wired.WiredSwitch` drives any of them
over a :mod:`~appliance.switch.link`. The bytes and timings come from /work/shared/PROTOCOLS.md
("External KVM switches"); docs/switch.md repeats them per model.
"""

from __future__ import annotations

from typing import Protocol

from appliance.switch.parse import ReplyScanner


class WireProtocol(Protocol):
    name: str
    baud: int
    """The factory serial speed (``switch.baud = 0`` uses it)."""
    min_gap: float
    can_query: bool
    settles: bool
    select_answers: bool
    """The switch answers a select with the port it switched to (Extron, PWAY)."""
    repeat: int
    """How many times each command is sent (ezCoo firmware drops single commands)."""
    listen_only: bool
    """The active port is learnt from heartbeats the switch sends by itself (XH-HK4401)."""

    def select(self, port: int) -> bytes: ...

    def query(self) -> bytes: ...

    def scanner(self) -> ReplyScanner: ...
