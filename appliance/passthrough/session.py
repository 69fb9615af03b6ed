"""One grabbed device at work: its events through the hotkey detector and the translator to the
HID controller, and the clean end when it goes away (everything it held released on the target).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from evdev import InputEvent

from appliance.passthrough.hotkey import HotkeyDetector, Outcome
from appliance.passthrough.keycodes import EV_KEY, KEY_REPEAT
from appliance.passthrough.reader import EventReader
from appliance.passthrough.translate import HidSink, Translator

log = logging.getLogger(__name__)

SelectPort = Callable[[int], Awaitable[object]]
"""Switch the rack's KVM switch to a port (``SwitchController.select``)."""


@dataclass
class DeviceSession:
    fd: int
    hid: HidSink
    client: str
    hotkey: HotkeyDetector | None = None
    select: SelectPort | None = None
    on_gone: Callable[[DeviceSession, str], None] = lambda session, why: None
    clock: Callable[[], float] = time.monotonic
    translator: Translator = field(init=False)
    reader: EventReader = field(init=False)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    _timer: asyncio.TimerHandle | None = None
    _tasks: set[asyncio.Task[object]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.translator = Translator(self.hid, self.client)
        self.reader = EventReader(self.fd, self.feed, self._gone)

    def start(self) -> None:
        self.reader.start()

    def stop(self) -> None:
        """Let go (service stopping, device filtered out): release what it held."""
        self.reader.stop()
        self._finish()

    def feed(self, event: InputEvent) -> None:
        """One event as the device delivered it (the reader calls this; so do the tests)."""
        if event.type != EV_KEY:
            self.translator.other(event.type, event.code, event.value)
            return
        name = self.translator.track(event.code, event.value)
        if event.value == KEY_REPEAT:
            return  # the target repeats a held key itself
        if name is None or self.hotkey is None:
            self.translator.key(event.code, event.value)
            return
        outcome = self.hotkey.key(
            name, bool(event.value), self.clock(), frozenset(self.translator.held)
        )
        self._apply(outcome)
        if outcome.forward:
            self.translator.key(event.code, event.value)
        self._arm_timer()

    def _apply(self, outcome: Outcome) -> None:
        for name in outcome.replay:
            self.hid.key(self.client, name, True)
            self.hid.key(self.client, name, False)
        if outcome.port is not None:
            self._select(outcome.port)

    def _select(self, port: int) -> None:
        if self.select is None:
            return
        # The keys still held go to the machine being left, not the next one.
        self.hid.release_client(self.client)
        task = asyncio.ensure_future(self._run_select(self.select, port))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_select(self, select: SelectPort, port: int) -> object:
        try:
            result = await select(port)
            log.info("passthrough: hotkey switched to port %d", port)
            return result
        except Exception as exc:
            log.warning("passthrough: hotkey switch to port %d failed: %s", port, exc)
            return None

    def _arm_timer(self) -> None:
        """A sequence under way lapses by itself: its taps must not wait for the next key."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.hotkey is not None and self.hotkey.deadline is not None:
            delay = max(0.0, self.hotkey.deadline - self.clock())
            self._timer = asyncio.get_running_loop().call_later(delay, self._lapse)

    def _lapse(self) -> None:
        self._timer = None
        if self.hotkey is not None:
            self._apply(Outcome(forward=False, replay=self.hotkey.expire(self.clock())))

    def _gone(self, why: str) -> None:
        self._finish()
        self.on_gone(self, why)

    def _finish(self) -> None:
        if self.ended.is_set():
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.translator.release()
        self.ended.set()

    @property
    def held(self) -> list[str]:
        return sorted(self.translator.held)


__all__ = ["DeviceSession", "SelectPort"]
