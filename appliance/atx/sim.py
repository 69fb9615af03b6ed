"""A simulated motherboard behind simulated ATX lines: the demo target and the tests use it.

It behaves the way PROTOCOLS.md describes a board: a power press while off switches on; a short
press while on is an ACPI shutdown request (the simulated OS obeys at once); holding ≥ 4 s forces
it off (the ATX override, acted on at the 4 s mark, not on release); reset restarts a running
machine and does nothing to one that is off. The power LED follows power; the HDD LED pulses when
the machine reports activity (:meth:`SimLines.activity`). Edges are timestamped with the
monotonic clock and delivered through the same sink as real GPIO edges, so the controller's
debounce applies to them too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

from appliance.atx.status import Led
from appliance.atx.wiring import EdgeSink, LedEdge, Output

FORCE_OFF_AFTER = 4.0
"""The ATX power-button override: held this long, the board cuts power without the OS."""
HDD_PULSE = 0.03
"""How long the simulated HDD LED stays lit per burst of activity."""


class Board(Protocol):
    """What the simulation switches (:class:`appliance.targets.demo.machine.DemoMachine`)."""

    @property
    def power(self) -> bool: ...

    def set_power(self, on: bool) -> None: ...


class SimBoard:
    """A board that is nothing but its power switch: what ``chip = "sim"`` wires (trying the
    console or a switch's per-port power without hardware; the tests)."""

    def __init__(self, power: bool = False) -> None:
        self.power = power

    def set_power(self, on: bool) -> None:
        self.power = on


class SimLines:
    def __init__(self, board: Board, clock: Callable[[], int] = time.monotonic_ns) -> None:
        self.board = board
        self.clock = clock
        self.pressed: dict[Output, int] = {}
        """Outputs held now, with the time they were pressed."""
        self.presses: list[tuple[Output, float]] = []
        """Every completed press (line, seconds held): what the tests check timing against."""
        self._sink: EdgeSink | None = None
        self._hdd = False
        self._force_off: asyncio.TimerHandle | None = None
        self._hdd_off: asyncio.TimerHandle | None = None

    async def open(self, sink: EdgeSink) -> dict[Led, bool]:
        self._sink = sink
        return {"power": self.board.power, "hdd": False}

    async def close(self) -> None:
        self._sink = None
        for handle in (self._force_off, self._hdd_off):
            if handle is not None:
                handle.cancel()

    def set_output(self, line: Output, active: bool) -> None:
        now = self.clock()
        if active:
            self.pressed[line] = now
            if line == "power" and self.board.power:
                loop = asyncio.get_running_loop()
                self._force_off = loop.call_later(FORCE_OFF_AFTER, self._switch, False)
            return
        since = self.pressed.pop(line, None)
        if since is None:
            return
        self.presses.append((line, (now - since) / 1e9))
        if self._force_off is not None:
            self._force_off.cancel()
            self._force_off = None
        if line == "reset":
            if self.board.power:
                self.board.set_power(False)  # the demo machine comes back to its setup screen
                self.board.set_power(True)
        elif (now - since) / 1e9 < FORCE_OFF_AFTER:
            self._switch(not self.board.power)

    def _switch(self, on: bool) -> None:
        self._force_off = None
        if on == self.board.power:
            return
        self.board.set_power(on)
        self._edge("power", on)

    def power_changed(self) -> None:
        """The board was switched by something else (a demo route): tell the LED."""
        self._edge("power", self.board.power)

    def activity(self) -> None:
        """The machine did some work (a key press reached it): pulse the HDD LED."""
        if not self._hdd:
            self._hdd = True
            self._edge("hdd", True)
        if self._hdd_off is not None:
            self._hdd_off.cancel()
        self._hdd_off = asyncio.get_running_loop().call_later(HDD_PULSE, self._hdd_done)

    def _hdd_done(self) -> None:
        self._hdd_off = None
        self._hdd = False
        self._edge("hdd", False)

    def _edge(self, led: Led, active: bool) -> None:
        if self._sink is not None:
            self._sink([LedEdge(led, active, self.clock())])
