"""The libgpiod v2 backend: ATX outputs and LED inputs on a GPIO character device.

Verified only on hardware and by the system test (a ``gpio-sim`` chip on a newer kernel): this
machine has no gpio-sim, so the unit tests run everything above :class:`GpiodLines` (press timing,
LED filtering, the rules) through :class:`~appliance.atx.sim.SimLines` and recorded edge
sequences instead. Keep this module thin for that reason: claim lines, set a value, turn kernel
edge events into :class:`~appliance.atx.wiring.LedEdge`.

- One request holds every line (outputs start inactive, so claiming never presses a button).
- Polarity is the kernel's (``active_low`` per line): levels here are logical, "pressed" and
  "lit", whatever the optocoupler does to the voltage.
- Edge events are read without blocking the loop: the request's file descriptor is registered
  with ``loop.add_reader`` and only read when the kernel says events are waiting.
- Debouncing is done in :mod:`appliance.atx.leds` rather than with the kernel's
  ``debounce_period``: one rule for real and simulated lines, and no dependence on whether the
  GPIO driver can debounce.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from appliance.atx.status import Led
from appliance.atx.wiring import AtxWiring, EdgeSink, LedEdge, Output

CONSUMER = "ipkvm-atx"


class GpiodLines:
    """:class:`~appliance.atx.wiring.AtxLines` over ``gpiod.request_lines`` (libgpiod ≥ 2.1)."""

    def __init__(self, wiring: AtxWiring) -> None:
        self.wiring = wiring
        self._request: Any = None
        self._sink: EdgeSink | None = None
        self._by_offset: dict[int, Led] = {o: led for led, o in wiring.leds().items()}
        self._outputs = wiring.outputs()

    async def open(self, sink: EdgeSink) -> dict[Led, bool]:
        import gpiod
        from gpiod.line import Direction, Edge, Value

        w = self.wiring
        config: dict[Iterable[int | str] | int | str, gpiod.LineSettings | None] = {}
        for name, offset in self._outputs.items():
            config[offset] = gpiod.LineSettings(
                direction=Direction.OUTPUT,
                output_value=Value.INACTIVE,
                active_low=w.is_active_low(name),
            )
        for led, offset in w.leds().items():
            config[offset] = gpiod.LineSettings(
                direction=Direction.INPUT,
                edge_detection=Edge.BOTH,
                active_low=w.is_active_low(f"{led}_led"),
            )
        self._request = gpiod.request_lines(w.chip, consumer=CONSUMER, config=config)
        self._sink = sink
        levels = {
            led: self._request.get_value(offset) == Value.ACTIVE for led, offset in w.leds().items()
        }
        if self._by_offset:
            asyncio.get_running_loop().add_reader(self._request.fd, self._readable)
        return levels

    def _readable(self) -> None:
        import gpiod

        rising = gpiod.EdgeEvent.Type.RISING_EDGE
        events = self._request.read_edge_events()
        edges = [
            LedEdge(self._by_offset[e.line_offset], e.event_type == rising, e.timestamp_ns)
            for e in events
            if e.line_offset in self._by_offset
        ]
        if edges and self._sink is not None:
            self._sink(edges)

    def set_output(self, line: Output, active: bool) -> None:
        from gpiod.line import Value

        self._request.set_value(self._outputs[line], Value.ACTIVE if active else Value.INACTIVE)

    async def close(self) -> None:
        if self._request is None:
            return
        if self._by_offset:
            asyncio.get_running_loop().remove_reader(self._request.fd)
        for line in self._outputs:
            self.set_output(line, False)
        self._request.release()
        self._request = None
