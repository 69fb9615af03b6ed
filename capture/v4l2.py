"""V4L2 capture (HDMI-to-USB dongles, CSI/HDMI bridges) straight from the driver's mmap buffers.

Frames keep the device's format (MJPEG, YUYV, UYVY, NV12; capture/v4l2_stream.py): a dongle's JPEG
reaches MJPEG viewers untouched, raw YUV is converted once, and only for a consumer that needs it.
Reading lives in a daemon *reader* thread (poll with a timeout, then the newest ready buffer) that
keeps only the freshest frame (a single pending slot towards the event loop: if the loop is busy,
an older unpublished frame is replaced, never queued).

Frames arriving (or not) cannot tell a lost HDMI signal: a receiver may keep streaming noise, or
stop so that ``read()`` never returns. So a *supervisor* thread asks the driver itself every
``poll_interval`` seconds, on a second non-blocking fd (querying needs no streaming ownership):
``VIDIOC_QUERY_DV_TIMINGS`` says no signal / no lock / out of range or gives the timings, and
source-change events catch changes between two polls (see capture/v4l2_ioctl.py). On a loss it
retires the reader and shows a frame saying why; when the signal returns or the timings change it
retires the reader, sets the detected timings (so the capture size follows the source) and starts a
fresh reader. A reader that delivers nothing for ``reopen_after`` seconds is replaced too. Devices
without DV timings (UVC dongles) keep the frame-based judgement.

A retired reader may still be waiting in ``read()`` (at most ``read_timeout``); it is abandoned
(daemon thread) and closes its device when the read returns.
Every reader carries a generation number and publishes only while it is the current one, so an
abandoned reader never shows a stale frame or state.

Everything that can go wrong — no device, not a capture device, no signal, cable pulled — becomes a
hub signal state plus a generated frame that says why, and is retried until it works again; nobody
has to restart anything.

A path is resolved (following symlinks such as /dev/v4l/by-id/...) and must name a /dev/videoN.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import logging
import os
import queue
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from capture import v4l2_ioctl as vio
from capture.frame import Captured, Image, SignalStatus
from capture.hub import FrameHub
from capture.placeholder import message_image
from capture.source import EdidUnsupported, VideoSource
from capture.v4l2_stream import V4l2Stream

log = logging.getLogger(__name__)

FOURCCS = ("MJPG", "YUYV", "UYVY", "NV12")

#: what QUERY_DV_TIMINGS's complaint means, as shown to the user (title, message)
LOSS_TEXT: dict[vio.SignalLoss, tuple[str, str]] = {
    "no_link": ("No signal", "No HDMI signal on {device}"),
    "no_lock": ("No signal", "HDMI signal on {device} but the receiver cannot lock to it"),
    "out_of_range": ("Out of range", "HDMI signal on {device} is out of the receiver's range"),
}


def device_index(device: str) -> int | None:
    """The N of /dev/videoN that *device* names (a number, a path or a symlink to one)."""
    if device.isdigit():
        return int(device)
    match = re.fullmatch(r"/dev/video(\d+)", os.path.realpath(device))
    return int(match.group(1)) if match else None


@dataclass
class _Reader:
    """One reader thread and what the supervisor needs to judge it (written by that thread)."""

    generation: int
    started: float
    thread: threading.Thread | None = None
    opened: float | None = None
    last_frame: float | None = None


@dataclass(frozen=True)
class _Verdict:
    """One look at the receiver: a loss, or the timings (None: the device cannot tell)."""

    loss: vio.SignalLoss | None = None
    timings: vio.DvTimings | None = None
    changed: bool = False


@dataclass
class _DvProbe:
    """A side fd on the device for DV timings and source-change events.

    ``supported`` stays None until the driver answered once; False (ENOTTY/ENODATA: a UVC dongle,
    or an input without DV timings) switches the probing off for good.
    """

    device: str
    fd: int | None = None
    supported: bool | None = None
    timings: vio.DvTimings | None = None
    events: bool = False
    lost: vio.SignalLoss | None = field(default=None)

    def check(self) -> _Verdict:
        if self.supported is False:
            return _Verdict()
        if self.fd is None:
            try:
                self.fd = os.open(self.device, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
            except OSError as exc:
                log.debug("cannot open %s for DV timings: %s", self.device, exc)
                return _Verdict()
            try:
                vio.subscribe_source_change(self.fd)
                self.events = True
            except OSError as exc:
                self.events = False
                log.debug("%s: no source-change events (%s)", self.device, exc)
        try:
            timings = vio.query_dv_timings(self.fd)
        except OSError as exc:
            if exc.errno in vio.UNSUPPORTED_ERRNOS:
                log.info(
                    "%s has no DV timings (%s): judging the signal by frames", self.device, exc
                )
                self.supported = False
                self.close()
                return _Verdict()
            loss = vio.LOSS_ERRNOS.get(exc.errno or 0)
            if loss is None:  # ENODEV and friends: the device is going away, frames will tell
                log.debug("%s: QUERY_DV_TIMINGS failed: %s", self.device, exc)
                self.close()
                return _Verdict()
            self.supported = True
            self._drain()
            changed = self.lost != loss
            self.lost, self.timings = loss, None
            return _Verdict(loss=loss, changed=changed)
        except ValueError as exc:  # a timings type we do not know: treat as unsupported
            log.warning("%s: %s; judging the signal by frames", self.device, exc)
            self.supported = False
            self.close()
            return _Verdict()
        self.supported = True
        event = self._drain()
        changed = event or timings != self.timings or self.lost is not None
        self.lost, self.timings = None, timings
        return _Verdict(timings=timings, changed=changed)

    def apply(self, timings: vio.DvTimings) -> None:
        """Configure the receiver for the detected timings; capture formats follow them."""
        if self.fd is None:
            return
        try:
            vio.set_dv_timings(self.fd, timings)
        except OSError as exc:  # EBUSY if a stuck reader still streams; the driver keeps its own
            log.warning("%s: cannot set DV timings %s: %s", self.device, timings, exc)
        self._drain()  # a change we made ourselves is not news

    def _drain(self) -> bool:
        """Dequeue pending events; True if one said the source changed."""
        if self.fd is None or not self.events:
            return False
        changed = False
        for _ in range(32):
            try:
                event = vio.dequeue_event(self.fd)
            except OSError as exc:
                if exc.errno != errno.EAGAIN:
                    log.debug("%s: DQEVENT failed: %s", self.device, exc)
                break
            if event is None:
                break
            changed |= event.type == vio.V4L2_EVENT_SOURCE_CHANGE
        return changed

    def close(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None
        self.timings = None
        self.lost = None


class V4l2Source(VideoSource):
    name = "v4l2"

    def __init__(
        self,
        device: str,
        width: int = 1280,
        height: int = 720,
        fps: int = 30,
        fourcc: str = "MJPG",
        *,
        retry_interval: float = 2.0,
        read_timeout: float = 1.0,
        reopen_after: float = 3.0,
        no_signal_after: float = 1.0,
        poll_interval: float = 0.5,
        edid: bytes | None = None,
    ) -> None:
        if fourcc not in FOURCCS:
            raise ValueError(f"fourcc must be one of {FOURCCS}, not {fourcc!r}")
        if width <= 0 or height <= 0 or fps <= 0:
            raise ValueError(f"bad capture mode {width}x{height}@{fps}")
        self.device = device
        self.width = width
        self.height = height
        self.fps = fps
        self.fourcc = fourcc
        self.retry_interval = retry_interval
        self.read_timeout = read_timeout
        self.reopen_after = reopen_after
        self.no_signal_after = max(no_signal_after, 3.0 / fps)
        self.poll_interval = poll_interval
        self._last_frame = 0.0
        self._watchdog: asyncio.Task[None] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._done: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._hub: FrameHub | None = None
        self._pending: tuple[Captured, float, int] | None = None
        self._pending_lock = threading.Lock()
        # Held while checking the generation or the status and posting the result, so a retired
        # reader's last frame or state is never posted after the supervisor's verdict, and two
        # threads (reader, watchdog) cannot post their states in the opposite order from the one
        # in which they set ``_status`` (the hub would keep "no_signal" while frames flow).
        self._state_lock = threading.RLock()
        self._generation = 0
        self._retired: list[threading.Thread] = []
        self._status: SignalStatus | None = None
        self._placeholders: dict[tuple[int, int, str, str], Image] = {}
        self.edid = edid
        """The EDID to offer the target (None: leave the receiver's as it is)."""
        self._edid_state: dict[str, object] = {
            "configured": edid is not None,
            "applied": False,
            "supported": True,
            "error": "",
        }
        self._edid_requests: queue.SimpleQueue[tuple[bytes, concurrent.futures.Future[None]]] = (
            queue.SimpleQueue()
        )
        self._edid_done = edid is None

    # ------------------------------------------------------------------ lifecycle
    async def start(self, hub: FrameHub) -> None:
        if self._thread is not None:
            raise RuntimeError("V4l2Source already started")
        self._loop = asyncio.get_running_loop()
        self._hub = hub
        self._done = self._loop.create_future()
        hub.set_signal("starting", f"Opening {self.device}")
        self._thread = threading.Thread(
            target=self._run, name=f"v4l2 supervisor {self.device}", daemon=True
        )
        self._thread.start()
        self._watchdog = asyncio.create_task(self._watch(), name=f"v4l2 watchdog {self.device}")

    async def close(self) -> None:
        """Stop the threads; waits at most ``read_timeout`` + 1 s for a read stuck in the driver."""
        self._stop.set()
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
            self._watchdog = None
        if self._done is None:
            return
        try:
            async with asyncio.timeout(self.read_timeout + 1.0):
                await asyncio.shield(self._done)
        except TimeoutError:
            log.warning("V4L2 reader for %s did not stop in time; abandoning it", self.device)

    async def _watch(self) -> None:
        """Say "no signal" as soon as frames stop, even while a read is still blocked."""
        while not self._stop.is_set():
            await asyncio.sleep(self.no_signal_after / 2)
            last = self._last_frame
            if self._status != "ok" or time.monotonic() - last <= self.no_signal_after:
                continue
            # A constant text: its frame is rendered once, not on the event loop every time.
            message = f"No frames from {self.device} for over {self.no_signal_after:.1f} s"
            self._placeholder("no_signal", message, None)
            with self._state_lock:
                if self._status == "ok" and self._last_frame == last:  # no frame meanwhile
                    self._report("no_signal", message)

    # ------------------------------------------------------------------ supervisor thread
    def _run(self) -> None:
        probe = _DvProbe(self.device)
        reader: _Reader | None = None
        next_start = 0.0
        try:
            while not self._stop.is_set():
                reader = self._serve_edid_requests(reader)
                if not os.path.exists(self.device):
                    self._retire(reader)
                    reader = None
                    probe.close()
                    self._report("no_device", f"No capture device at {self.device}")
                    self._stop.wait(self.retry_interval)
                    continue
                index = device_index(self.device)
                if index is None:
                    self._report("no_device", f"{self.device} is not a V4L2 video device")
                    self._stop.wait(self.retry_interval)
                    continue

                if not self._edid_done:
                    self._edid_done = True
                    assert self.edid is not None
                    reader = self._set_edid(reader, self.edid, startup=True)
                verdict = probe.check()
                if verdict.loss is not None:
                    title, text = LOSS_TEXT[verdict.loss]
                    if verdict.changed or reader is not None or self._status != "no_signal":
                        self._retire(reader, ("no_signal", text.format(device=self.device), title))
                        reader = None
                    self._stop.wait(self.poll_interval)
                    continue
                if verdict.changed and verdict.timings is not None:
                    if reader is not None:
                        log.info("%s: source changed to %s", self.device, verdict.timings)
                    self._retire(reader)
                    reader = None
                    self._await_retired(self.read_timeout + 1.0)
                    probe.apply(verdict.timings)
                    next_start = 0.0

                now = time.monotonic()
                if reader is not None and (reader.thread is None or not reader.thread.is_alive()):
                    reader = None
                if reader is not None and self._stalled(reader, now):
                    log.warning(
                        "%s: no frames for %.1f s; reopening", self.device, self.reopen_after
                    )
                    self._retire(reader)
                    reader = None
                if reader is None and now >= next_start:
                    reader = self._start_reader(index, verdict.timings)
                    next_start = now + self.retry_interval
                self._stop.wait(self.poll_interval)
        except Exception as exc:  # never die silently: say so on screen
            log.exception("V4L2 supervisor for %s crashed", self.device)
            self._report("no_device", f"Capture failed: {exc}")
        finally:
            self._retire(reader)
            self._await_retired(self.read_timeout + 0.5)
            probe.close()
            self._serve_edid_requests(None)
            self._post(self._finish)

    # ------------------------------------------------------------------ EDID
    def _serve_edid_requests(self, reader: _Reader | None) -> _Reader | None:
        """Set the EDIDs the API asked for (supervisor thread); returns the reader if it lives."""
        while not self._edid_requests.empty():
            data, done = self._edid_requests.get_nowait()
            try:
                reader = self._set_edid(reader, data)
            except Exception as exc:
                done.set_exception(exc)
            else:
                done.set_result(None)
        return reader

    async def read_edid(self) -> bytes:
        return await asyncio.to_thread(self._read_edid)

    def _read_edid(self) -> bytes:
        fd = self._edid_fd()
        try:
            return vio.get_edid(fd, vio.current_input(fd))
        except OSError as exc:
            raise self._edid_error(exc) from None
        finally:
            os.close(fd)

    async def write_edid(self, edid: bytes) -> None:
        """Handed to the supervisor thread: a receiver that refuses while streaming (EBUSY)
        gets it between two readers."""
        if self._thread is None or not self._thread.is_alive():
            await asyncio.to_thread(self._set_edid, None, edid)
            return
        done: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._edid_requests.put((edid, done))
        # the supervisor looks every poll_interval; a busy receiver waits for a reader to stop
        async with asyncio.timeout(self.poll_interval + self.read_timeout * 2 + 5.0):
            await asyncio.wrap_future(done)

    def edid_state(self) -> dict[str, object]:
        return dict(self._edid_state)

    def _edid_fd(self) -> int:
        try:
            return os.open(self.device, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise EdidUnsupported(f"cannot open {self.device}: {exc.strerror or exc}") from None

    def _edid_error(self, exc: OSError) -> Exception:
        if exc.errno in (errno.ENOTTY, errno.EINVAL):
            return EdidUnsupported(f"{self.device} has no EDID (not an HDMI receiver input)")
        return exc

    def _set_edid(
        self, reader: _Reader | None, edid: bytes, *, startup: bool = False
    ) -> _Reader | None:
        """Set *edid* unless the receiver has it already (a re-plug the target would notice).

        Returns *reader*, or None if it had to be retired (the receiver was busy).
        """
        state = self._edid_state
        try:
            fd = self._edid_fd()
        except EdidUnsupported as exc:
            state["error"] = str(exc)
            if startup:
                return reader
            raise
        try:
            pad = vio.current_input(fd)
            if vio.get_edid(fd, pad) == edid:
                state.update(applied=True, error="")
                return reader
            try:
                vio.set_edid(fd, edid, pad)
            except OSError as exc:
                if exc.errno != errno.EBUSY:
                    raise
                log.info("%s: receiver busy; setting the EDID between two readers", self.device)
                self._retire(reader)
                reader = None
                self._await_retired(self.read_timeout + 1.0)
                vio.set_edid(fd, edid, pad)
            log.info("%s: EDID set (%d bytes)", self.device, len(edid))
            state.update(applied=True, error="")
        except OSError as exc:
            error = self._edid_error(exc)
            if isinstance(error, EdidUnsupported):  # a UVC dongle: its own EDID, nothing to do
                state.update(applied=False, supported=False, error="")
                log.info("%s", error)
            else:
                state.update(applied=False, error=f"{self.device}: {error}")
                log.warning("%s: cannot set the EDID: %s", self.device, error)
            if not startup:
                raise error from None
        finally:
            os.close(fd)
        return reader

    def _stalled(self, reader: _Reader, now: float) -> bool:
        """True if the reader delivered nothing for ``reopen_after`` s (opening gets as long)."""
        since = reader.last_frame or reader.opened or reader.started + self.reopen_after
        return now - since > self.reopen_after

    def _start_reader(self, index: int, timings: vio.DvTimings | None) -> _Reader:
        with self._state_lock:
            self._generation += 1
            reader = _Reader(generation=self._generation, started=time.monotonic())
        size = (timings.width, timings.height) if timings is not None else None
        reader.thread = threading.Thread(
            target=self._read,
            args=(reader, index, size),
            name=f"v4l2 reader {self.device} #{reader.generation}",
            daemon=True,
        )
        reader.thread.start()
        return reader

    def _retire(
        self, reader: _Reader | None, report: tuple[SignalStatus, str, str] | None = None
    ) -> None:
        """Make *reader* stale (it stops publishing at once) and optionally publish a verdict."""
        if report is not None:
            self._placeholder(report[0], report[1], report[2])  # render outside the lock
        with self._state_lock:
            self._generation += 1
            if report is not None:
                status, message, title = report
                self._report(status, message, title=title)
        if reader is not None and reader.thread is not None and reader.thread.is_alive():
            self._retired.append(reader.thread)
        return None

    def _await_retired(self, timeout: float) -> None:
        """Give retired readers up to *timeout* s to return from read() and release the device."""
        deadline = time.monotonic() + timeout
        for thread in self._retired:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._retired = [t for t in self._retired if t.is_alive()]
        if self._retired:
            log.warning(
                "%s: %d reader(s) stuck in read(); abandoned", self.device, len(self._retired)
            )

    # ------------------------------------------------------------------ reader thread
    def _current(self, reader: _Reader) -> bool:
        return reader.generation == self._generation and not self._stop.is_set()

    def _report_if(self, reader: _Reader, status: SignalStatus, message: str) -> None:
        self._placeholder(status, message, None)  # render outside the lock
        with self._state_lock:
            if self._current(reader):
                self._report(status, message)

    def _read(self, reader: _Reader, index: int, size: tuple[int, int] | None) -> None:
        stream: V4l2Stream | None = None
        work = self._hub.work if self._hub is not None else None
        try:
            stream = self._open(reader, size)
            if stream is None:
                return
            reader.opened = time.monotonic()
            failing_since: float | None = None
            while self._current(reader):
                dropped = stream.dropped
                captured = stream.read(self.read_timeout, work)
                if captured is None and stream.dropped != dropped:
                    continue  # a torn or flagged buffer: the device is alive, wait for the next
                if captured is not None:
                    ts = reader.last_frame = time.monotonic()
                    failing_since = None
                    with self._state_lock:
                        if not self._current(reader):
                            return
                        self._last_frame = ts
                        if self._status != "ok":
                            self._report("ok", f"Capturing from {self.device}", placeholder=False)
                        self._offer(captured, ts, reader.generation)
                    continue
                if not self._current(reader):
                    return
                self._report_if(reader, "no_signal", f"No frames from {self.device}")
                now = time.monotonic()
                failing_since = failing_since or now
                if now - failing_since >= self.reopen_after:
                    return  # the supervisor opens afresh: some drivers need it for a new source
        except OSError as exc:
            if not os.path.exists(self.device):
                self._report_if(reader, "no_device", f"Capture device {self.device} disappeared")
            else:
                log.warning("V4L2 reader for %s: %s", self.device, exc)
                self._report_if(reader, "no_signal", f"Capture from {self.device} failed: {exc}")
        except Exception as exc:
            log.exception("V4L2 reader for %s crashed", self.device)
            self._report_if(reader, "no_device", f"Capture failed: {exc}")
        finally:
            if stream is not None:
                stream.close()

    def _open(self, reader: _Reader, size: tuple[int, int] | None) -> V4l2Stream | None:
        width, height = size if size is not None else (self.width, self.height)
        stream = V4l2Stream(self.device, self.fourcc, width, height, self.fps)
        try:
            fmt = stream.open()
        except (OSError, ValueError) as exc:
            log.warning("cannot capture from %s: %s", self.device, exc)
            self._report_if(reader, "no_device", f"Cannot open {self.device} for capture: {exc}")
            return None
        log.info("opened %s: %s %dx%d", self.device, fmt.fourcc, fmt.width, fmt.height)
        return stream

    # ------------------------------------------------------------------ to the loop
    def _offer(self, captured: Captured, ts: float, generation: int) -> None:
        """Hand the frame over; if the loop has not taken the previous one yet, replace it."""
        with self._pending_lock:
            scheduled = self._pending is not None
            self._pending = (captured, ts, generation)
        if not scheduled:
            self._post(self._publish_pending)

    def _publish_pending(self) -> None:
        with self._pending_lock:
            pending, self._pending = self._pending, None
        if pending is None or self._hub is None or self._stop.is_set():
            return
        captured, ts, generation = pending
        if generation == self._generation:  # a reader retired meanwhile: its frame is stale
            self._hub.publish_captured(captured, ts)

    def _report(
        self,
        status: SignalStatus,
        message: str,
        *,
        placeholder: bool = True,
        title: str | None = None,
    ) -> None:
        """Tell the hub (from any thread); a trouble state also shows a frame saying why.

        The status is set and the update posted under the state lock: updates reach the hub in
        the order ``_status`` took them.
        """
        image = self._placeholder(status, message, title) if placeholder else None

        def apply() -> None:
            if self._hub is None:
                return
            self._hub.set_signal(status, message)
            if image is not None:
                self._hub.publish(image)

        with self._state_lock:
            if status != self._status:
                log.info("%s: %s (%s)", self.device, status, message)
            self._status = status
            self._post(apply)

    def _placeholder(self, status: SignalStatus, message: str, title: str | None) -> Image:
        if title is None:
            title = {"no_signal": "No signal", "no_device": "No capture device"}.get(status, status)
        key = (self.width, self.height, title, message)
        image = self._placeholders.get(key)
        if image is None:
            if len(self._placeholders) > 8:
                self._placeholders.clear()
            image = message_image(self.width, self.height, title, message)
            self._placeholders[key] = image
        return image

    def _finish(self) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    def _post(self, callback: Callable[[], None]) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # loop closed between the check and the call
            loop.call_soon_threadsafe(callback)
