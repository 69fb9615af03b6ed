"""AtxPower: the power facet over any :class:`~appliance.atx.wiring.AtxLines` backend.

Every rule of PROTOCOLS.md ("ATX power") is here, above the kernel call, so the simulated board
and real GPIO lines run the same code:

- a press holds an output for a set time (short for on/off, long ≥ 5 s for forced off, reset);
  the press runs as a task of its own, so a client that disconnects mid-press cannot cut a 6 s
  forced-off down to a short press (which would ask the OS to shut down instead);
- "on" presses only when the power LED says off, "off"/"off_hard" only when it says on (with no
  power LED wired there is nothing to ask, and the press goes ahead);
- one action at a time: a second one is refused while a press is held (409), never queued — a
  queued "on" after an "off" would toggle the machine back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence

from appliance.atx.leds import LedFilter
from appliance.atx.status import ActionRefused, Led, PowerAction, PowerState, PowerStatus
from appliance.atx.wiring import AtxLines, LedEdge, Output, PressTimes

log = logging.getLogger(__name__)

StatusListener = Callable[[PowerStatus], None]


class AtxPower:
    """Power and reset buttons plus power/HDD LEDs of one machine."""

    available = True

    def __init__(
        self,
        lines: AtxLines,
        times: PressTimes,
        *,
        debounce: float = 0.1,
        has_reset: bool = True,
        clock: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self.lines = lines
        self.times = times
        self.has_reset = has_reset
        self._clock = clock
        self._leds = LedFilter(round(debounce * 1e9))
        self._action: str | None = None
        self._press: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._listeners: list[StatusListener] = []
        self._started = False
        self.failure: str | None = None
        """Why the lines could not be claimed at start (None: they were): the facet then says
        so instead of keeping the whole service from starting over one missing gpiochip."""

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        if self._started:
            return
        try:
            levels = await self.lines.open(self.feed)
        except (OSError, ValueError) as exc:
            self.failure = f"cannot claim the ATX lines: {exc}"
            log.error("ATX: %s", self.failure)
            return
        self.failure = None
        self._leds.start(levels)
        self._started = True

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._press is not None:
            self._press.cancel()  # its finally releases the output
            with contextlib.suppress(asyncio.CancelledError):
                await self._press
        if self._started:
            self._started = False
            await self.lines.close()

    # ------------------------------------------------------------------ state
    @property
    def busy(self) -> bool:
        return self._action is not None

    @property
    def leds(self) -> dict[Led, bool | None]:
        return self._leds.shown()

    @property
    def state(self) -> PowerState:
        lit = self._leds.shown()["power"]
        return "unknown" if lit is None else ("on" if lit else "off")

    def status(self) -> PowerStatus:
        if self.failure is not None:
            return PowerStatus("unknown", self.leds, False, None, False, self.failure)
        return PowerStatus(self.state, self.leds, self.busy, self._action)

    def subscribe(self, listener: StatusListener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _notify(self) -> None:
        status = self.status()
        for listener in list(self._listeners):
            try:
                listener(status)
            except Exception:
                log.exception("power listener failed")

    # ------------------------------------------------------------------ LED edges
    def feed(self, edges: Sequence[LedEdge]) -> None:
        """Edges from the backend (the :data:`~appliance.atx.wiring.EdgeSink`)."""
        self._leds.feed(edges)
        self.settle()

    def settle(self) -> None:
        """Apply the LED rules now and come back when a pending edge may settle."""
        if self._leds.settle(self._clock()):
            self._notify()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        due = self._leds.next_settle_ns()
        if due is not None:
            delay = max(due - self._clock(), 0) / 1e9
            self._timer = asyncio.get_running_loop().call_later(delay, self.settle)

    # ------------------------------------------------------------------ actions
    async def act(self, action: PowerAction) -> None:
        lit = self._leds.shown()["power"]
        if action == "on":
            if lit is True:
                raise ActionRefused("the power LED says the machine is already on")
            await self._hold("power", self.times.short, action)
        elif action in ("off", "off_hard"):
            if lit is False:
                raise ActionRefused("the power LED says the machine is already off")
            hold = self.times.long if action == "off_hard" else self.times.short
            await self._hold("power", hold, action)
        else:
            if not self.has_reset:
                raise ActionRefused("no reset line is wired to this machine")
            if lit is False:
                raise ActionRefused("the power LED says the machine is off: reset does nothing")
            await self._hold("reset", self.times.reset, action)

    async def press(self, seconds: float) -> None:
        """Hold the power button for ``seconds`` (up to ``times.max_press``), whatever the LED."""
        if not 0 < seconds <= self.times.max_press:
            raise ValueError(f"a press lasts more than 0 and at most {self.times.max_press:g} s")
        await self._hold("power", seconds, "press")

    async def _hold(self, line: Output, seconds: float, action: str) -> None:
        if self.failure is not None:
            raise ActionRefused(self.failure)
        if self._action is not None:
            raise ActionRefused(f"busy: {self._action} is in progress")
        self._action = action
        self._press = asyncio.create_task(self._pressed(line, seconds))
        self._notify()
        # Shielded: a cancelled request (the client went away) must not shorten the press.
        await asyncio.shield(self._press)

    async def _pressed(self, line: Output, seconds: float) -> None:
        log.info("ATX: %s held %.2f s (%s)", line, seconds, self._action)
        self.lines.set_output(line, True)
        try:
            await asyncio.sleep(seconds)
        finally:
            self.lines.set_output(line, False)
            self._action = None
            self._press = None
            self._notify()
