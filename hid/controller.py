"""HidController: the one place every input source (browser, API, CLI, scripts, passthrough)
meets the target.

Input calls are synchronous and never block: they update the key/mouse state and append the
resulting report to one ordered queue. A single writer task moves reports to the output backend
in order. Only absolute pointer moves are coalesced (the newest replaces a queued one); key and
button reports are never dropped or reordered, except that a target that stays offline longer than
``discard_after`` has its queued input replaced by "everything released".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from hid.keymap import usage_for
from hid.output import HidOutput, Leds, OutputError, TargetOffline
from hid.reports import (
    ABS_MAX,
    KeyboardState,
    MouseState,
    Report,
    ReportKind,
    abs_mouse_report,
    button_bit,
    keyboard_report,
    rel_mouse_report,
    split_delta,
)
from hid.text import Layout, Stroke, TextPlan, plan_text

log = logging.getLogger(__name__)

StateListener = Callable[[str], None]
ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class Pacing:
    """Delays for typed text. The default is safe for BIOSes: each report stays on the wire for
    more than one 8 ms poll interval of a full-speed keyboard."""

    hold: float = 0.012
    gap: float = 0.012

    @classmethod
    def fast(cls) -> Pacing:
        return cls(0.0, 0.0)


class TypingAborted(Exception):
    """Typing stopped before the end; ``typed`` characters were delivered."""

    def __init__(self, reason: str, typed: int) -> None:
        super().__init__(reason)
        self.typed = typed


@dataclass
class TypeResult:
    plan: TextPlan

    def as_dict(self) -> dict[str, object]:
        return {
            "chars": self.plan.chars,
            "strokes": len(self.plan.strokes),
            "untypable": [u.as_dict() for u in self.plan.untypable],
        }


class HidController:
    def __init__(
        self,
        output: HidOutput,
        *,
        retry_interval: float = 0.1,
        discard_after: float = 5.0,
        write_timeout: float = 2.0,
        max_queue: int = 50_000,
    ) -> None:
        self.output = output
        self.keyboard = KeyboardState()
        self.mouse = MouseState()
        self.online: bool | None = None  # None: nothing written yet
        self.last_error: str | None = None
        self.discarded = 0  # reports dropped while the target stayed offline
        self._retry_interval = retry_interval
        self._discard_after = discard_after
        self._write_timeout = write_timeout
        self._max_queue = max_queue
        self._queue: deque[Report] = deque()
        self._best_effort: set[int] = set()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._discard_generation = 0
        self._discard_event = asyncio.Event()
        self._final_only = False
        self._offline_since: float | None = None
        self._writer: asyncio.Task[None] | None = None
        self._listeners: list[StateListener] = []
        self._typing_lock = asyncio.Lock()
        output.on_leds(self._leds_changed)
        output.on_online(self._online_changed)

    # ----------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        """Open the output and tell the target nothing is held: a service restarted after a crash
        or a watchdog kill may have left keys down on the target."""
        await self.output.open()
        # Best effort: a target that is not listening now will enumerate afresh (nothing held)
        # when it comes, and these must not hold up real input behind a missing device.
        self._enqueue(keyboard_report(0, []), best_effort=True)
        self._enqueue(self._button_report(), best_effort=True)
        self._writer = asyncio.create_task(self._write_loop(), name="hid-writer")

    async def close(self, timeout: float = 1.0) -> None:
        """Release everything, give the writer *timeout* to deliver it, then stop."""
        self.release_all()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        if self._writer:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
        await self.output.close()

    # ----------------------------------------------------------------- listeners
    def subscribe(self, listener: StateListener) -> Callable[[], None]:
        """Call *listener(what)* when ``online``, ``leds``, ``mouse_mode`` or ``keys`` change."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _notify(self, what: str) -> None:
        for listener in list(self._listeners):
            try:
                listener(what)
            except Exception:
                log.exception("state listener failed")

    def _online_changed(self, online: bool, reason: str | None) -> None:
        if online == self.online:
            return
        self.online = online
        self.last_error = None if online else reason
        if online:
            self._offline_since = None
            self._wake.set()  # deliver what waited for the target at once
        self._notify("online")

    def _leds_changed(self, leds: Leds) -> None:
        self._notify("leds")

    @property
    def leds(self) -> Leds:
        return self.output.leds

    # ----------------------------------------------------------------- keyboard
    def key(self, client: str, key: str | int, down: bool) -> None:
        """Press or release *key* (``KeyboardEvent.code`` or usage) for *client*.

        Raises :class:`hid.keymap.UnknownKey` with nothing sent for a name with no usage.
        """
        usage = usage_for(key)
        changed = (
            self.keyboard.press(client, usage) if down else self.keyboard.release(client, usage)
        )
        if changed:
            self._enqueue(self.keyboard.report())
            self._notify("keys")

    def release_client(self, client: str) -> None:
        """Release every key and button *client* holds (its connection went away)."""
        if self.keyboard.release_client(client):
            self._enqueue(self.keyboard.report())
            self._notify("keys")
        if self.mouse.release_client(client):
            self._enqueue(self._button_report())

    def release_all(self) -> None:
        self.keyboard.release_all()
        self.mouse.release_all()
        self._enqueue(keyboard_report(0, []))
        self._enqueue(self._button_report())
        self._notify("keys")

    # ----------------------------------------------------------------- mouse
    @property
    def mouse_mode(self) -> str:
        return "absolute" if self.mouse.absolute else "relative"

    def set_mouse_mode(self, mode: str) -> None:
        if mode not in ("absolute", "relative"):
            raise ValueError(f"mouse mode must be 'absolute' or 'relative', not {mode!r}")
        absolute = mode == "absolute"
        if absolute == self.mouse.absolute:
            return
        if self.mouse.buttons:
            # Buttons follow the active device: let go on the old one first.
            old = self._button_report()
            self._enqueue(Report(old.kind, bytes([0, *old.data[1:]])))
        self.mouse.absolute = absolute
        if self.mouse.buttons:
            self._enqueue(self._button_report())
        self._notify("mouse_mode")

    def mouse_abs(self, x: int, y: int) -> None:
        """Move the absolute pointer to (x, y) in 0..32767 on both axes."""
        for name, v in (("x", x), ("y", y)):
            if not 0 <= v <= ABS_MAX:
                raise ValueError(f"{name}={v} outside 0..{ABS_MAX}")
        self.mouse.x, self.mouse.y = x, y
        self._enqueue(abs_mouse_report(self.mouse.buttons, x, y))

    def mouse_rel(self, dx: int, dy: int) -> None:
        """Move the relative mouse; large deltas become several reports with the exact sum."""
        for sx, sy in split_delta(dx, dy):
            self._enqueue(rel_mouse_report(self.mouse.buttons, sx, sy))

    def mouse_button(self, client: str, button: str, down: bool) -> None:
        bit = button_bit(button)
        changed = self.mouse.press(client, bit) if down else self.mouse.release(client, bit)
        if changed:
            self._enqueue(self._button_report())

    def mouse_wheel(self, dy: int, dx: int = 0) -> None:
        """Scroll by *dy* notches (positive = away from the user) and *dx* (positive = right)."""
        while dy or dx:
            sy = max(-127, min(127, dy))
            sx = max(-127, min(127, dx))
            self._enqueue(self._button_report(wheel=sy, pan=sx))
            dy -= sy
            dx -= sx

    def _button_report(self, wheel: int = 0, pan: int = 0) -> Report:
        if self.mouse.absolute:
            return abs_mouse_report(self.mouse.buttons, self.mouse.x, self.mouse.y, wheel, pan)
        return rel_mouse_report(self.mouse.buttons, 0, 0, wheel, pan)

    async def press_chords(
        self, client: str, chords: list[list[str]], hold: float = 0.05, gap: float = 0.05
    ) -> None:
        """Press each chord's keys in order, hold, release them in reverse; chord after chord.

        Every name is checked before anything is sent, so a typo sends nothing.
        """
        for chord in chords:
            for code in chord:
                usage_for(code)
        try:
            for chord in chords:
                for code in chord:
                    self.key(client, code, True)
                    await self.drain()
                await asyncio.sleep(hold)
                for code in reversed(chord):
                    self.key(client, code, False)
                await self.drain()
                await asyncio.sleep(gap)
        finally:
            self.release_client(client)

    # ----------------------------------------------------------------- typing
    async def type_text(
        self,
        text: str,
        layout: Layout,
        pacing: Pacing | None = None,
        progress: ProgressCallback | None = None,
    ) -> TypeResult:
        """Type *text* as the target's *layout* would need it, in order, waiting for delivery.

        Characters the layout cannot type are skipped and listed in the result. Pastes are
        serialised: a second paste waits for the first. Cancel by cancelling the task; the keys
        are released either way.
        """
        pacing = pacing or Pacing()
        plan = plan_text(text, layout)
        async with self._typing_lock:
            generation = self._discard_generation
            # Layouts give strokes for Caps Lock off. When the target says it is on, switch it
            # off for the paste and back on after, as a person would.
            caps = self.leds.caps_lock
            strokes = list(plan.strokes)
            if caps and strokes:
                toggle = (-1, Stroke(usage_for("CapsLock")))
                strokes = [toggle, *strokes, (plan.chars - 1, toggle[1])]
            try:
                for index, stroke in strokes:
                    reports = [keyboard_report(stroke.modifiers, [stroke.usage])]
                    if stroke.modifiers:
                        mods_only = keyboard_report(stroke.modifiers, [])
                        reports = [mods_only, reports[0], mods_only]
                    for report in reports:
                        self._enqueue(report)
                        await self._delivered(generation, index)
                        await asyncio.sleep(pacing.hold)
                    self._enqueue(self.keyboard.report())
                    await self._delivered(generation, index)
                    if progress and index >= 0:
                        progress(index + 1, plan.chars)
                    if pacing.gap:
                        await asyncio.sleep(pacing.gap)
            finally:
                # Whatever happened, the target is left with only what clients really hold.
                self._enqueue(self.keyboard.report())
        if progress:
            progress(plan.chars, plan.chars)
        return TypeResult(plan)

    async def _delivered(self, generation: int, index: int) -> None:
        await self.drain()
        if self._discard_generation != generation:
            raise TypingAborted(f"target offline: typing stopped at character {index}", index)

    async def drain(self) -> None:
        """Wait until every queued report was delivered, or dropped because the target is off."""
        if self._idle.is_set():
            return
        idle = asyncio.ensure_future(self._idle.wait())
        discarded = asyncio.ensure_future(self._discard_event.wait())
        try:
            await asyncio.wait({idle, discarded}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            idle.cancel()
            discarded.cancel()

    # ----------------------------------------------------------------- the queue
    @property
    def queued(self) -> int:
        return len(self._queue)

    def _enqueue(self, report: Report, *, best_effort: bool = False) -> None:
        """Queue *report*. A best-effort report is dropped, not retried, when the target is not
        listening (identity-tracked: queued reports are alive, so their ids are unique)."""
        q = self._queue
        if best_effort:
            self._best_effort.add(id(report))
        elif (
            report.kind is ReportKind.MOUSE_ABS
            and len(q) > 1  # never touch q[0]: the writer may be delivering it
            and id(q[-1]) not in self._best_effort
            and q[-1].kind is ReportKind.MOUSE_ABS
            and q[-1].data[0] == report.data[0]
            and q[-1].data[5:] == b"\0\0"
            and report.data[5:] == b"\0\0"
        ):
            q[-1] = report
            return
        if len(q) >= self._max_queue:
            self._discard("queue full")
        q.append(report)
        self._final_only = False
        self._idle.clear()
        self._wake.set()

    def _discard(self, why: str) -> None:
        dropped = len(self._queue)
        self.discarded += dropped
        self._queue.clear()
        self._best_effort.clear()
        self.keyboard.release_all()
        self.mouse.release_all()
        # The final state the target must see once it listens again: nothing held.
        self._queue.append(keyboard_report(0, []))
        self._queue.append(self._button_report())
        self._final_only = True
        self._discard_generation += 1
        self._discard_event.set()
        self._discard_event = asyncio.Event()
        log.warning(
            "HID: dropped %d queued reports (%s); target will see all keys released", dropped, why
        )
        self._notify("keys")

    async def _write_loop(self) -> None:
        while True:
            if not self._queue:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            report = self._queue[0]
            try:
                async with asyncio.timeout(self._write_timeout):
                    await self.output.write(report)
            except (TargetOffline, OutputError, TimeoutError, OSError) as exc:
                if id(report) in self._best_effort:
                    self._best_effort.discard(id(report))
                    self._queue.popleft()
                    log.debug("HID: dropped best-effort report: %s", exc)
                    continue
                now = time.monotonic()
                if self._offline_since is None:
                    self._offline_since = now
                self.last_error = str(exc) or type(exc).__name__
                if self.online is not False:
                    self.online = False
                    log.warning("HID target offline: %s", self.last_error)
                    self._notify("online")
                if not self._final_only and now - self._offline_since >= self._discard_after:
                    self._discard("target offline")
                await asyncio.sleep(self._retry_interval)
                continue
            if self._queue and self._queue[0] is report:
                self._queue.popleft()
                self._best_effort.discard(id(report))
            self._offline_since = None
            if self.online is not True:
                self.online = True
                self.last_error = None
                self._notify("online")
