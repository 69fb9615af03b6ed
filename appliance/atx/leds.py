"""LED state from timestamped edge events: the power LED debounced, the HDD LED stretched.

Pure logic over (level, timestamp) sequences, with no clock of its own: the controller feeds it
edges and asks it to :meth:`LedFilter.settle` at a time, so a test replays a recorded edge
sequence through exactly the code the GPIO backend uses.

Why two rules: the power LED is a level (on/off) whose contacts and wiring bounce, so a level
counts once it has held for the debounce time (PROTOCOLS.md: ~100 ms). The HDD LED is activity:
it flickers faster than any debounce, so debouncing it would hide exactly what it shows. It is
shown lit while the line is active and for ``debounce`` after its last edge (a pulse stretcher),
so a burst of disk activity reads as "busy" instead of vanishing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from appliance.atx.status import LEDS, Led
from appliance.atx.wiring import LedEdge


@dataclass
class _Line:
    raw: bool
    shown: bool
    last_edge_ns: int | None = None
    """The newest edge not yet settled (power) or the newest edge at all (hdd)."""


@dataclass
class LedFilter:
    debounce_ns: int
    _lines: dict[Led, _Line] = field(default_factory=dict)

    def start(self, levels: Mapping[Led, bool]) -> None:
        """The wired LEDs and their levels when the lines were claimed (taken as settled)."""
        self._lines = {led: _Line(raw=v, shown=v) for led, v in levels.items()}

    def feed(self, edges: Iterable[LedEdge]) -> None:
        for edge in edges:
            line = self._lines.get(edge.led)
            if line is None:
                continue  # an LED that is not wired cannot report edges
            line.raw = edge.active
            line.last_edge_ns = edge.timestamp_ns

    def settle(self, now_ns: int) -> bool:
        """Apply the rules at ``now_ns``; True when a shown level changed."""
        changed = False
        for led, line in self._lines.items():
            shown = line.shown
            if line.last_edge_ns is not None and now_ns - line.last_edge_ns >= self.debounce_ns:
                line.last_edge_ns = None
                shown = line.raw
            elif led == "hdd" and line.last_edge_ns is not None:
                shown = True  # activity within the window
            elif led == "hdd":
                shown = line.raw
            if shown != line.shown:
                line.shown = shown
                changed = True
        return changed

    def next_settle_ns(self) -> int | None:
        """When :meth:`settle` may change something next (None: nothing pending)."""
        pending = [ln.last_edge_ns for ln in self._lines.values() if ln.last_edge_ns is not None]
        return min(pending) + self.debounce_ns if pending else None

    def shown(self) -> dict[Led, bool | None]:
        """Every LED: its filtered level, or None when it is not wired."""
        return {led: (self._lines[led].shown if led in self._lines else None) for led in LEDS}
