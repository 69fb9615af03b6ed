"""HidController: the one place every input source (browser, API, CLI, scripts, passthrough)
meets the target.

Input calls are synchronous and never block: they update the key/mouse state and append the
resulting report to the queue of its device (keyboard, or mouse: absolute and relative share one
queue, so a mode switch still lets go on the old pointer before pressing on the new one). Each
device has its own writer task. Within a device, reports are never dropped or reordered; only
consecutive absolute pointer moves are coalesced (the newest replaces a queued one). Across
devices the order of the calls is kept too while both devices take reports (Ctrl+click stays
Ctrl, then click) — but a device whose write failed (offline), or whose write has been in flight
longer than ``overtake_after``, is overtaken, so a dead mouse never stalls typing and a dead
keyboard never freezes the pointer. A device that stays offline longer than ``discard_after``
has its queued input replaced by "everything released" (keys for the keyboard, buttons for the
mouse); the other device is not touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

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


class Device(enum.Enum):
    """One queue and one writer each. Both mouse report kinds are one device: the user drives
    one pointer, and its button order must hold across a mode switch."""

    KEYBOARD = "keyboard"
    MOUSE = "mouse"


def device_of(kind: ReportKind) -> Device:
    return Device.KEYBOARD if kind is ReportKind.KEYBOARD else Device.MOUSE


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """One device's state, for status pages and tests."""

    online: bool | None
    error: str | None
    queued: int
    discarded: int
    written: int = 0
    """Reports written to the device since start (for metrics; not in the state document)."""
    failed: int = 0
    """Writes that failed (offline, time-out, I/O error)."""

    def as_dict(self) -> dict[str, object]:
        return {
            "online": self.online,
            "error": self.error,
            "queued": self.queued,
            "discarded": self.discarded,
        }


@dataclass(eq=False, slots=True)
class _Entry:
    """A queued report with its place in the order of the input calls (``seq``)."""

    report: Report
    seq: int
    best_effort: bool = False


@dataclass(eq=False)
class _Lane:
    """One device's queue, writer and online state."""

    device: Device
    queue: deque[_Entry] = field(default_factory=deque)
    online: bool | None = None  # None: not known (nothing written yet, or gone stale)
    error: str | None = None
    by_backend: bool = False  # ``online``/``error`` came from the backend, not our own write
    stalled: bool = False  # the last write of the head failed: other devices may overtake
    offline_since: float | None = None
    final_only: bool = False  # the queue holds only the "released" report of a discard
    generation: int = 0  # bumped by every discard (typing aborts on it)
    discarded: int = 0
    written: int = 0
    failed: int = 0
    inflight: _Entry | None = None
    inflight_since: float = 0.0
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    wake: asyncio.Event = field(default_factory=asyncio.Event)  # new report queued
    retry: asyncio.Event = field(default_factory=asyncio.Event)  # retry a failed write now
    discard_event: asyncio.Event = field(default_factory=asyncio.Event)
    writer: asyncio.Task[None] | None = None

    def status(self) -> DeviceStatus:
        return DeviceStatus(
            self.online, self.error, len(self.queue), self.discarded, self.written, self.failed
        )


class HidController:
    def __init__(
        self,
        output: HidOutput,
        *,
        retry_interval: float = 0.1,
        discard_after: float = 5.0,
        write_timeout: float = 2.0,
        max_queue: int = 50_000,
        overtake_after: float = 0.1,
    ) -> None:
        self.output = output
        self.keyboard = KeyboardState()
        self.mouse = MouseState()
        self.discarded = 0  # reports dropped while a device stayed offline (all devices)
        self._retry_interval = retry_interval
        self._discard_after = discard_after
        self._write_timeout = write_timeout
        self._max_queue = max_queue
        self._overtake_after = overtake_after
        self._lanes = {device: _Lane(device) for device in Device}
        for lane in self._lanes.values():
            lane.idle.set()
        self._seq = 0  # seq of the last queued report
        self._progress = asyncio.Event()  # replaced whenever a head is written or stalls
        self._held = 0  # writers waiting on _progress
        self._published: tuple[bool | None, ...] = self._online_snapshot()
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
        for lane in self._lanes.values():
            lane.writer = asyncio.create_task(
                self._write_loop(lane), name=f"hid-writer-{lane.device.value}"
            )

    async def close(self, timeout: float = 1.0) -> None:
        """Release everything, give the writers *timeout* to deliver it, then stop."""
        self.release_all()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                for lane in self._lanes.values():
                    await lane.idle.wait()
        for lane in self._lanes.values():
            if lane.writer:
                lane.writer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await lane.writer
                lane.writer = None
        await self.output.close()

    # ----------------------------------------------------------------- listeners
    def subscribe(self, listener: StateListener) -> Callable[[], None]:
        """Call *listener(what)* when ``online`` (of any device), ``leds``, ``mouse_mode`` or
        ``keys`` change."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _notify(self, what: str) -> None:
        for listener in list(self._listeners):
            try:
                listener(what)
            except Exception:
                log.exception("state listener failed")

    # ----------------------------------------------------------------- online state
    @property
    def online(self) -> bool | None:
        """Whether the target takes keyboard input: what typing, combos and scripts need, and
        what "target offline" means. A mouse-only failure shows in ``devices`` and
        ``last_error`` but does not make the target offline."""
        return self._lanes[Device.KEYBOARD].online

    @property
    def last_error(self) -> str | None:
        """Why the keyboard is offline, else why the mouse is, else None."""
        kbd = self._lanes[Device.KEYBOARD]
        if kbd.online is not True and kbd.error:
            return kbd.error
        mouse = self._lanes[Device.MOUSE]
        return mouse.error if mouse.online is False else None

    @property
    def devices(self) -> dict[Device, DeviceStatus]:
        """Per device: online, error, queued reports, reports discarded so far."""
        return {device: lane.status() for device, lane in self._lanes.items()}

    def _online_snapshot(self) -> tuple[bool | None, ...]:
        return tuple(lane.online for lane in self._lanes.values())

    def _publish_online(self) -> None:
        snapshot = self._online_snapshot()
        if snapshot != self._published:
            self._published = snapshot
            self._notify("online")

    def _online_changed(self, online: bool, reason: str | None) -> None:
        """The backend learned something about the whole target (keep-alive, USB state)."""
        for lane in self._lanes.values():
            lane.online = online
            lane.error = None if online else reason
            lane.by_backend = True
            if online:
                lane.offline_since = None
                lane.retry.set()  # deliver what waited for the target at once
                lane.wake.set()
        self._publish_online()

    def _lane_delivered(self, lane: _Lane) -> None:
        lane.written += 1
        lane.stalled = False
        lane.offline_since = None
        if lane.online is True:
            lane.by_backend = False
            return
        was = lane.online
        lane.online, lane.error, lane.by_backend = True, None, False
        for other in self._lanes.values():
            if other is lane:
                continue
            if other.by_backend and other.online is False:
                # The backend's "offline" is disproved; that device will tell on its next write.
                other.online, other.error, other.by_backend = None, None, False
            if was is False:
                other.retry.set()  # the target is back: do not wait out the retry interval
        if was is False:
            log.info("HID %s online again", lane.device.value)
        self._publish_online()

    def _lane_failed(self, lane: _Lane, error: str, now: float) -> None:
        lane.stalled = True
        lane.error = error
        lane.by_backend = False
        if lane.offline_since is None:
            lane.offline_since = now
        if lane.online is False:
            return
        was = lane.online
        lane.online = False
        if was is True:
            # What the other devices last said may no longer hold (a target switched off):
            # unknown until they write again.
            for other in self._lanes.values():
                if other is not lane and other.online is True:
                    other.online, other.error, other.by_backend = None, None, False
        log.warning("HID %s offline: %s", lane.device.value, error)
        self._publish_online()

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
        self,
        client: str,
        chords: list[list[str]],
        hold: float = 0.05,
        gap: float = 0.05,
        progress: ProgressCallback | None = None,
    ) -> None:
        """Press each chord's keys in order, hold, release them in reverse; chord after chord.

        Every name is checked before anything is sent, so a typo sends nothing. Cancel by
        cancelling the task; *client*'s keys are released either way. ``progress(done, total)``
        follows each chord.
        """
        for chord in chords:
            for code in chord:
                usage_for(code)
        try:
            for done, chord in enumerate(chords, 1):
                for code in chord:
                    self.key(client, code, True)
                    await self.drain(Device.KEYBOARD)
                await asyncio.sleep(hold)
                for code in reversed(chord):
                    self.key(client, code, False)
                await self.drain(Device.KEYBOARD)
                if progress:
                    progress(done, len(chords))
                await asyncio.sleep(gap)
        finally:
            self.release_client(client)

    # ----------------------------------------------------------------- typing
    async def type_text(
        self,
        text: str | TextPlan,
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
        # A caller that already planned the text (to report what is untypable) passes the plan.
        plan = text if isinstance(text, TextPlan) else plan_text(text, layout)
        async with self._typing_lock:
            generation = self._lanes[Device.KEYBOARD].generation
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
        # Only the keyboard matters here: a paste goes on while the mouse is offline.
        kbd = self._lanes[Device.KEYBOARD]
        await self._drain_lane(kbd)
        if kbd.generation != generation:
            raise TypingAborted(f"target offline: typing stopped at character {index}", index)

    async def drain(self, device: Device | None = None) -> None:
        """Wait until every report queued for *device* (default: all devices) was delivered,
        or dropped because that device stayed offline.

        A device that already gave its input up and is still offline counts as drained: only
        its "nothing held" report waits, and waiting for it would hang a caller that queued
        input for the other device."""
        lanes = list(self._lanes.values()) if device is None else [self._lanes[device]]
        await asyncio.gather(*(self._drain_lane(lane) for lane in lanes))

    @staticmethod
    async def _drain_lane(lane: _Lane) -> None:
        if lane.idle.is_set() or (lane.final_only and lane.stalled):
            return
        idle = asyncio.ensure_future(lane.idle.wait())
        discarded = asyncio.ensure_future(lane.discard_event.wait())
        try:
            await asyncio.wait({idle, discarded}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            idle.cancel()
            discarded.cancel()

    # ----------------------------------------------------------------- the queues
    @property
    def queued(self) -> int:
        """Reports waiting, all devices together."""
        return sum(len(lane.queue) for lane in self._lanes.values())

    def _enqueue(self, report: Report, *, best_effort: bool = False) -> None:
        """Queue *report* on its device. A best-effort report is dropped, not retried, when the
        device is not listening."""
        lane = self._lanes[device_of(report.kind)]
        q = lane.queue
        if (
            not best_effort
            and report.kind is ReportKind.MOUSE_ABS
            and q
            and q[-1].seq == self._seq  # consecutive: nothing else was queued in between
            and q[-1] is not lane.inflight  # never touch what the writer is delivering
            and not q[-1].best_effort
            and q[-1].report.kind is ReportKind.MOUSE_ABS
            and q[-1].report.data[0] == report.data[0]
            and q[-1].report.data[5:] == b"\0\0"
            and report.data[5:] == b"\0\0"
        ):
            q[-1] = _Entry(report, q[-1].seq)
            return
        if len(q) >= self._max_queue:
            self._discard(lane, "queue full")
        self._seq += 1
        q.append(_Entry(report, self._seq, best_effort))
        lane.final_only = False
        lane.idle.clear()
        lane.wake.set()

    def _final_report(self, lane: _Lane) -> Report:
        """Release the device's state; the report that says "nothing held" on it."""
        if lane.device is Device.KEYBOARD:
            self.keyboard.release_all()
            return keyboard_report(0, [])
        self.mouse.release_all()
        return self._button_report()

    def _discard(self, lane: _Lane, why: str) -> None:
        dropped = len(lane.queue)
        self.discarded += dropped
        lane.discarded += dropped
        lane.queue.clear()
        # The final state the device must see once it listens again: nothing held.
        self._seq += 1
        lane.queue.append(_Entry(self._final_report(lane), self._seq))
        lane.final_only = True
        lane.generation += 1
        lane.discard_event.set()
        lane.discard_event = asyncio.Event()
        self._kick()
        what = "keys" if lane.device is Device.KEYBOARD else "buttons"
        log.warning(
            "HID %s: dropped %d queued reports (%s); target will see all %s released",
            lane.device.value,
            dropped,
            why,
            what,
        )
        if lane.device is Device.KEYBOARD:
            self._notify("keys")

    # ----------------------------------------------------------------- the writers
    def _kick(self) -> None:
        """Wake writers waiting for another device's head to move."""
        if self._held:
            self._progress.set()
            self._progress = asyncio.Event()

    def _hold_time(self, lane: _Lane, entry: _Entry, now: float) -> float | None:
        """None when *entry* may be written now; else how long at most to wait before asking
        again (``math.inf``: until another device makes progress).

        An entry waits for older heads of other devices, unless that device is stalled
        (offline) or has had its write in flight for ``overtake_after`` already.
        """
        hold: float | None = None
        for other in self._lanes.values():
            if other is lane or not other.queue or other.stalled:
                continue
            head = other.queue[0]
            if head.seq > entry.seq:
                continue
            if other.inflight is head:
                left = other.inflight_since + self._overtake_after - now
                if left <= 0:
                    continue
            else:
                left = math.inf
            hold = left if hold is None else min(hold, left)
        return hold

    async def _write_loop(self, lane: _Lane) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not lane.queue:
                lane.idle.set()
                lane.wake.clear()
                await lane.wake.wait()
                continue
            entry = lane.queue[0]
            progress = self._progress
            hold = self._hold_time(lane, entry, loop.time())
            if hold is not None:
                self._held += 1
                try:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(None if hold == math.inf else hold):
                            await progress.wait()
                finally:
                    self._held -= 1
                continue
            lane.inflight, lane.inflight_since = entry, loop.time()
            self._kick()  # writers held by this head now count down to overtaking it
            try:
                async with asyncio.timeout(self._write_timeout):
                    await self.output.write(entry.report)
            except (TargetOffline, OutputError, TimeoutError, OSError) as exc:
                lane.inflight = None
                lane.failed += 1
                if entry.best_effort:
                    if lane.queue and lane.queue[0] is entry:
                        lane.queue.popleft()
                    self._kick()
                    log.debug("HID %s: dropped best-effort report: %s", lane.device.value, exc)
                    continue
                now = time.monotonic()
                lane.retry.clear()
                self._lane_failed(lane, str(exc) or type(exc).__name__, now)
                self._kick()
                assert lane.offline_since is not None
                if not lane.final_only and now - lane.offline_since >= self._discard_after:
                    self._discard(lane, "target offline")
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._retry_interval):
                        await lane.retry.wait()
                continue
            lane.inflight = None
            if lane.queue and lane.queue[0] is entry:
                lane.queue.popleft()
            self._kick()
            self._lane_delivered(lane)
