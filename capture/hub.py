"""FrameHub: the single meeting point between one video source and every consumer.

Latest frame wins: the hub keeps exactly one frame, and each consumer asks for "something newer
than what I have", so a slow consumer skips frames instead of growing a queue.

Change detection: each published image is compared with the previous one at full resolution with
``cv2.norm(previous, image, NORM_INF)`` — the largest absolute difference of any channel of any
pixel. It is exact (one typed character or a moved pointer always counts, however small: a
downscaled copy or a strided sample can miss a 1-pixel-wide glyph stroke), and it is cheaper than
any hash: OpenCV's SIMD loop reads both buffers once (≈0.15 ms at 720p, ≈0.35 ms at 1080p on the
development machine) and allocates nothing. Publishing the *same* array object again costs
nothing at all. Noisy sources (cheap MJPEG dongles whose static picture wobbles by a few levels)
can set ``noise_threshold``: differences up to that many levels then count as unchanged, while a
typed character (differences of ~100+ levels) still does not.

Frames keep the device's format (capture/frame.py): raw YUV is compared the same way on its own
bytes (no conversion first), and a device's JPEGs by their bytes — an unchanged picture from an
encoder that is deterministic (the usual case for a static screen) gives the very same bytes, so a
static screen is recognised without decoding (a memcmp, ≈0.01 ms for a 100 kB JPEG). A dongle
whose static JPEGs differ in their bytes counts every frame as changed (``noise_threshold`` does
not apply to JPEG bytes).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import deque
from collections.abc import Callable

import cv2

from capture.frame import Captured, Frame, Image, SignalState, SignalStatus
from capture.work import WorkCounters

log = logging.getLogger(__name__)

SignalListener = Callable[[SignalState], None]


DIFF_BAND = 64  # rows compared at a time by the change detection


class FrameHub:
    """Holds the latest frame and the signal state; wakes consumers when either changes."""

    def __init__(self, *, noise_threshold: int = 0, fps_window: float = 2.0) -> None:
        if not 0 <= noise_threshold < 255:
            raise ValueError(f"noise_threshold {noise_threshold} outside 0..254")
        self.noise_threshold = noise_threshold
        self._fps_window = fps_window
        self._latest: Frame | None = None
        self._changed_at = 0  # seq of the last frame that bumped content_seq
        self._signal = SignalState()
        self._listeners: list[SignalListener] = []
        self._new_frame = asyncio.Event()
        self._times: deque[float] = deque(maxlen=256)
        self.work = WorkCounters()
        """What every stage did per frame (decodes, encodes, conversions, copies)."""

    # ------------------------------------------------------------------ frames
    @property
    def latest(self) -> Frame | None:
        return self._latest

    def publish(self, image: Image, timestamp: float | None = None) -> Frame:
        """Make the BGR *image* the latest frame (demo and QEMU targets, placeholders).

        Call from the event loop (threads: call_soon_threadsafe). The hub keeps a reference: the
        caller must not write into *image* afterwards.
        """
        return self.publish_captured(Captured.bgr(image), timestamp)

    def publish_captured(self, captured: Captured, timestamp: float | None = None) -> Frame:
        """Make *captured* (in the device's own format) the latest frame."""
        ts = time.monotonic() if timestamp is None else timestamp
        prev = self._latest
        if prev is None:
            seq, content_seq, changed = 1, 1, True
        else:
            seq = prev.seq + 1
            changed = self._differs(prev.captured, captured)
            content_seq = prev.content_seq + 1 if changed else prev.content_seq
        frame = Frame(captured, seq=seq, content_seq=content_seq, timestamp=ts, work=self.work)
        self.work.frame()
        self._latest = frame
        if changed:
            self._changed_at = seq
        self._times.append(ts)
        w, h = captured.width, captured.height
        if (w, h) != (self._signal.width, self._signal.height):
            self._update_signal(dataclasses.replace(self._signal, width=w, height=h))
        self._new_frame.set()
        self._new_frame = asyncio.Event()
        return frame

    def _differs(self, prev: Captured, new: Captured) -> bool:
        if prev.data is new.data:
            return False
        if (prev.format, prev.width, prev.height) != (new.format, new.width, new.height):
            return True
        a, b = prev.data, new.data
        if isinstance(a, bytes) or isinstance(b, bytes):
            return a != b  # JPEG bytes: equal bytes, equal picture
        if a.shape != b.shape:
            return True
        # In bands, stopping at the first difference: a changed picture usually differs near
        # the top somewhere (a cursor, a clock, a status line), so most changed frames cost a
        # fraction of a full comparison; this runs on the event loop, before the encoder starts.
        for top in range(0, a.shape[0], DIFF_BAND):
            band = slice(top, top + DIFF_BAND)
            if float(cv2.norm(a[band], b[band], cv2.NORM_INF)) > self.noise_threshold:
                return True
        return False

    async def next_frame(self, after_seq: int, *, changed_only: bool = False) -> Frame:
        """Wait for (or return at once) the latest frame with ``seq > after_seq``.

        With *changed_only*, the returned frame's pixels also differ from those of frame
        *after_seq* (its content changed at some frame after *after_seq*). ``after_seq=0`` means
        "any frame". Never queues: if several frames arrived meanwhile, only the newest is seen.
        """
        while True:
            frame = self._latest
            if (
                frame is not None
                and frame.seq > after_seq
                and (not changed_only or self._changed_at > after_seq)
            ):
                return frame
            await self._new_frame.wait()

    @property
    def fps(self) -> float:
        """Frames published per second over the last ``fps_window`` seconds."""
        times = self._times
        if len(times) < 2:
            return 0.0
        now = time.monotonic()
        if now - times[-1] > self._fps_window:
            return 0.0
        recent = [t for t in times if now - t <= self._fps_window]
        if len(recent) < 2 or recent[-1] <= recent[0]:
            return 0.0
        return (len(recent) - 1) / (recent[-1] - recent[0])

    # ------------------------------------------------------------------ signal
    @property
    def signal(self) -> SignalState:
        """The signal state, with ``fps`` measured from the frames actually published."""
        return dataclasses.replace(self._signal, fps=self.fps)

    def set_signal(
        self,
        status: SignalStatus | SignalState,
        message: str = "",
        *,
        width: int | None = None,
        height: int | None = None,
    ) -> None:
        """Set the signal state; listeners hear about it only if something changed.

        Width and height default to what they were (frames update them as they arrive).
        """
        if isinstance(status, SignalState):
            new = dataclasses.replace(status, fps=0.0)
        else:
            new = SignalState(
                status=status,
                message=message,
                width=self._signal.width if width is None else width,
                height=self._signal.height if height is None else height,
            )
        self._update_signal(new)

    def _update_signal(self, new: SignalState) -> None:
        if new == self._signal:
            return
        self._signal = new
        current = self.signal
        for listener in list(self._listeners):
            try:
                listener(current)
            except Exception:
                log.exception("signal listener failed")

    def subscribe(self, callback: SignalListener) -> Callable[[], None]:
        """Call *callback(signal)* on every signal change; returns the unsubscribe function."""
        self._listeners.append(callback)

        def unsubscribe() -> None:
            if callback in self._listeners:
                self._listeners.remove(callback)

        return unsubscribe
