"""SwitchController: owns the one switch driver and everything every model needs the same way.

- **One command in flight.** A lock around every exchange; a second *select* while one runs is
  refused at once (:class:`SwitchBusy`, 409) rather than queued: two people switching the same
  console should see it, not take turns silently.
- **Pacing.** At least ``max(driver.min_gap, switch.gap)`` between commands (TESmart wants 1 s).
- **Settling.** After a select, a switch that ``settles`` is not asked for ~``switch.settle`` s
  (1 s by default: a TESmart or ezCoo queried sooner may still name the old port).
- **Polling.** Switches that can be asked are asked every ``switch.poll_interval`` s, so a port
  changed with the front-panel button is noticed (the field advice is "every few seconds").
- **Offline and back.** A failed or unanswered command turns the state ``offline`` with the
  reason; polling keeps trying (every 2 s at most while offline) and the first answer brings it
  back ``online``. A vanished serial port is a failed command, never an exception that escapes.
- **Events.** Every change goes out as a ``switch`` event on the appliance's EventBus and makes
  the ``switch`` block of ``/api/state`` change.
- **Port settings.** When the active port changes (by a select or noticed by a poll), that port's
  settings are applied (``on_active``: mouse mode on the HID controller; typing reads the layout;
  :meth:`SwitchController.watch` callbacks: the per-port power facet follows it).
- **Guards.** A select is refused (409) while any of :attr:`SwitchController.guards` gives a
  reason: the appliance refuses to switch while an ATX button is held (docs/switch.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from appliance.switch.driver import (
    SwitchBusy,
    SwitchDriver,
    SwitchError,
    SwitchMismatch,
    SwitchOffline,
)
from appliance.switch.ports import PortSettings, PortStore

log = logging.getLogger(__name__)

SwitchStateName = Literal["online", "offline", "switching"]
OFFLINE_RETRY = 2.0
"""Seconds between reconnection attempts while offline (or the poll interval, if shorter)."""


@dataclass(frozen=True, slots=True)
class Timing:
    settle: float = 1.0
    gap: float = 0.0
    poll_interval: float = 5.0


class SwitchController:
    def __init__(
        self,
        driver: SwitchDriver,
        ports: PortStore,
        timing: Timing,
        *,
        publish: Callable[[dict[str, Any]], None] = lambda event: None,
        on_active: Callable[[PortSettings], None] = lambda settings: None,
    ) -> None:
        self.driver = driver
        self.ports = ports
        self.timing = timing
        self.publish = publish
        self.on_active = on_active
        self.gap = max(driver.min_gap, timing.gap)
        self.state: SwitchStateName = "online"
        self.active: int | None = None
        self.error: str | None = None
        self.selecting: int | None = None
        self.last_confirm_s: float | None = None
        """Seconds from the last select request to its confirmation (measured, for the bench)."""
        self.guards: list[Callable[[], str | None]] = []
        """Checked before every select: one returning a reason refuses it (SwitchBusy), e.g.
        while an ATX button is held (:class:`appliance.switch.power.PortPower`)."""
        self._watchers: list[Callable[[PortSettings], None]] = []
        self._lock = asyncio.Lock()
        self._last_command = -1e9
        self._poller: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Learn the active port (switches that can be asked) and start polling."""
        if self.driver.can_query:
            await self.refresh()
        if self.driver.can_query and self.timing.poll_interval > 0:
            self._poller = asyncio.create_task(self._poll_loop(), name="switch-poll")

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
        with contextlib.suppress(Exception):
            await self.driver.close()

    # ------------------------------------------------------------------ commands
    async def select(self, spec: int | str) -> int:
        """Switch to the port *spec* names and return it once the switch confirms it.

        Raises PortError (no such port), SwitchBusy (another select in flight, or a switch that
        can be polled is offline: the poller is reconnecting), SwitchTimeout (no answer),
        SwitchMismatch (the switch names another port), SwitchOffline (unreachable).
        """
        port = self.ports.find(spec)
        if self.selecting is not None:
            raise SwitchBusy(
                f"another switch command is in flight (to port {self.selecting}); try again"
            )
        for guard in self.guards:
            refusal = guard()
            if refusal:
                raise SwitchBusy(refusal)
        if self.state == "offline" and self.driver.can_query:
            raise SwitchBusy(
                f"the switch is offline ({self.error}); reconnecting every "
                f"{self._retry_interval():g} s"
            )
        started = time.monotonic()
        self.selecting = port
        try:
            async with self._lock:
                self._set(state="switching")
                confirmed = await self._exchange(self._select_once, port)
        finally:
            self.selecting = None
            if self.state == "switching":
                self._set(state="online")
        self.last_confirm_s = time.monotonic() - started
        log.info("switch: port %d confirmed in %.3f s", port, self.last_confirm_s)
        return confirmed

    async def refresh(self) -> int | None:
        """Ask the switch for its active port now (switches that can be asked)."""
        if not self.driver.can_query:
            return self.active
        async with self._lock:
            with contextlib.suppress(SwitchError):
                await self._exchange(self._query_once)
        return self.active

    def rename(self, port: int, changes: Mapping[str, Any]) -> PortSettings:
        """Change a port's settings (PortError when invalid); re-applied if it is active."""
        settings = self.ports.update(port, changes)
        renamed = getattr(self.driver, "port_renamed", None)
        if renamed is not None:
            renamed(port, settings.name)
        if port == self.active:
            self._activated(settings)
        self._publish()
        return settings

    # ------------------------------------------------------------------ exchanges
    async def _exchange(self, action: Callable[..., Any], *args: Any) -> int:
        """Run one paced exchange (lock held); offline on failure, online on success."""
        wait = self._last_command + self.gap - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        try:
            port: int = await action(*args)
        except SwitchOffline as exc:
            self._set(state="offline", error=str(exc))
            raise
        except SwitchMismatch as exc:
            self._set(state="online", error=str(exc))
            raise
        finally:
            self._last_command = time.monotonic()
        self._set(state="online", active=port, error=None)
        return port

    async def _select_once(self, port: int) -> int:
        answered = await self.driver.select(port)
        if answered is not None and answered != port:
            self._set(active=answered)
            raise SwitchMismatch(f"the switch answered port {answered} to a select of port {port}")
        if not self.driver.can_query:
            return port  # the reply (or, for hotkeys, nothing) is all the confirmation there is
        self._last_command = time.monotonic()
        wait = max(self.timing.settle if self.driver.settles else 0.0, self.gap)
        await asyncio.sleep(wait)
        reported = await self.driver.query()
        if reported != port:
            # One more look: a slow unit may still be switching when the settle time is over.
            self._last_command = time.monotonic()
            await asyncio.sleep(max(self.timing.settle, self.gap))
            reported = await self.driver.query()
        if reported != port:
            self._set(active=reported)
            raise SwitchMismatch(f"the switch still reports port {reported} after selecting {port}")
        return port

    async def _query_once(self) -> int:
        port = await self.driver.query()
        if not 1 <= port <= self.ports.count:
            raise SwitchMismatch(
                f"the switch reports port {port}, outside 1..{self.ports.count} (switch.count?)"
            )
        return port

    # ------------------------------------------------------------------ polling
    def _retry_interval(self) -> float:
        interval = self.timing.poll_interval or OFFLINE_RETRY
        return min(interval, OFFLINE_RETRY) if self.state == "offline" else interval

    async def _poll_loop(self) -> None:
        while True:
            await asyncio.sleep(self._retry_interval())
            if self.selecting is not None:
                continue  # a select is about to ask anyway
            try:
                await self.refresh()
            except Exception:  # the poller must outlive any surprise
                log.exception("switch poll failed")

    # ------------------------------------------------------------------ state
    def _set(
        self,
        *,
        state: SwitchStateName | None = None,
        active: int | None = None,
        error: str | Literal[False] | None = False,
    ) -> None:
        before = (self.state, self.active, self.error)
        if state is not None:
            if state == "offline" and self.state != "offline":
                log.warning("switch offline: %s", error)
            elif state == "online" and self.state == "offline":
                log.info("switch back online")
            self.state = state
        if error is not False:
            self.error = error
        changed_port = active is not None and active != self.active
        if changed_port:
            self.active = active
        if changed_port and active is not None and 1 <= active <= self.ports.count:
            self._activated(self.ports.get(active))
        if (self.state, self.active, self.error) != before:
            self._publish()

    def watch(self, callback: Callable[[PortSettings], None]) -> None:
        """Call *callback* with the active port's settings whenever the active port or its
        settings change (after ``on_active``)."""
        self._watchers.append(callback)

    def _activated(self, settings: PortSettings) -> None:
        self.on_active(settings)
        for callback in list(self._watchers):
            try:
                callback(settings)
            except Exception:
                log.exception("switch watcher failed")

    def _publish(self) -> None:
        self.publish({"type": "switch", **self.status()})

    def status(self) -> dict[str, Any]:
        """The ``switch`` block of /api/state and the body of GET /api/switch."""
        return {
            "driver": self.driver.name,
            "state": self.state,
            "active": self.active,
            "selecting": self.selecting,
            "error": self.error,
            "can_query": self.driver.can_query,
            "ports": [p.as_dict() for p in self.ports.all()],
        }
