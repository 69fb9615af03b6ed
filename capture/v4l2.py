"""V4L2 capture (HDMI-to-USB dongles, CSI bridges) through OpenCV, in one reader thread.

``cv2.VideoCapture.read`` blocks, so it lives in a daemon thread that keeps only the freshest
frame (driver queue of one buffer, and a single pending slot towards the event loop: if the loop
is busy, an older unpublished frame is replaced, never queued). Everything that can go wrong —
no device, not a capture device, no signal, cable pulled — becomes a hub signal state plus a
generated frame that says why, and the thread retries every ``retry_interval`` seconds until the
device works again; nobody has to restart anything.

This OpenCV build's V4L2 backend opens cameras by index only, so a path is resolved (following
symlinks such as /dev/v4l/by-id/...) to /dev/videoN and opened as index N.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable
from typing import cast

import cv2
import numpy as np

from capture.frame import Image, SignalStatus
from capture.hub import FrameHub
from capture.placeholder import message_image
from capture.source import VideoSource

log = logging.getLogger(__name__)

FOURCCS = ("MJPG", "YUYV")


def device_index(device: str) -> int | None:
    """The N of /dev/videoN that *device* names (a number, a path or a symlink to one)."""
    if device.isdigit():
        return int(device)
    match = re.fullmatch(r"/dev/video(\d+)", os.path.realpath(device))
    return int(match.group(1)) if match else None


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
        self._last_frame = 0.0
        self._watchdog: asyncio.Task[None] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._done: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._hub: FrameHub | None = None
        self._pending: tuple[Image, float] | None = None
        self._pending_lock = threading.Lock()
        self._status: SignalStatus | None = None
        self._placeholders: dict[tuple[int, int, str, str], Image] = {}

    # ------------------------------------------------------------------ lifecycle
    async def start(self, hub: FrameHub) -> None:
        if self._thread is not None:
            raise RuntimeError("V4l2Source already started")
        self._loop = asyncio.get_running_loop()
        self._hub = hub
        self._done = self._loop.create_future()
        hub.set_signal("starting", f"Opening {self.device}")
        # OpenCV's V4L2 backend waits this many seconds in select() for a frame (default 10):
        # shorter, so a lost signal is noticed and close() is not held up.
        os.environ.setdefault(
            "OPENCV_VIDEOIO_V4L_SELECT_TIMEOUT", str(max(1, math.ceil(self.read_timeout)))
        )
        self._thread = threading.Thread(target=self._run, name=f"v4l2 {self.device}", daemon=True)
        self._thread.start()
        self._watchdog = asyncio.create_task(self._watch(), name=f"v4l2 watchdog {self.device}")

    async def close(self) -> None:
        """Stop the reader; waits at most ``read_timeout`` + 1 s for a read stuck in the driver."""
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
            silent = time.monotonic() - self._last_frame
            if self._status == "ok" and silent > self.no_signal_after:
                self._report("no_signal", f"No frames from {self.device} for {silent:.1f} s")

    # ------------------------------------------------------------------ thread
    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                cap = self._open()
                if cap is None:
                    self._stop.wait(self.retry_interval)
                    continue
                try:
                    self._read_loop(cap)
                finally:
                    cap.release()
        except Exception as exc:  # never die silently: say so on screen
            log.exception("V4L2 reader for %s crashed", self.device)
            self._report("no_device", f"Capture failed: {exc}")
        finally:
            self._post(self._finish)

    def _open(self) -> cv2.VideoCapture | None:
        if not os.path.exists(self.device):
            self._report("no_device", f"No capture device at {self.device}")
            return None
        index = device_index(self.device)
        if index is None:
            self._report("no_device", f"{self.device} is not a V4L2 video device")
            return None
        cap = cv2.VideoCapture(index, cv2.CAP_V4L2)
        if not cap.isOpened():
            cap.release()
            self._report("no_device", f"Cannot open {self.device} as a capture device")
            return None
        cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*self.fourcc))
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        cap.set(cv2.CAP_PROP_FPS, self.fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        cap.set(cv2.CAP_PROP_READ_TIMEOUT_MSEC, self.read_timeout * 1000)
        log.info(
            "opened %s: %dx%d@%s",
            self.device,
            cap.get(cv2.CAP_PROP_FRAME_WIDTH),
            cap.get(cv2.CAP_PROP_FRAME_HEIGHT),
            cap.get(cv2.CAP_PROP_FPS),
        )
        return cap

    def _read_loop(self, cap: cv2.VideoCapture) -> None:
        last_good = time.monotonic()
        while not self._stop.is_set():
            ok, image = cap.read()
            if ok and image is not None and image.ndim == 3 and image.shape[2] == 3:
                frame = cast(Image, np.asarray(image, dtype=np.uint8))
                ts = time.monotonic()
                last_good = self._last_frame = ts
                if self._status != "ok":
                    self._report("ok", f"Capturing from {self.device}", placeholder=False)
                self._offer(frame, ts)
                continue
            if self._stop.is_set():
                return
            if not os.path.exists(self.device):
                self._report("no_device", f"Capture device {self.device} disappeared")
                return
            self._report("no_signal", f"No signal on {self.device}")
            if time.monotonic() - last_good >= self.reopen_after:
                return  # reopen: some drivers only pick up a new source after a fresh open
            self._stop.wait(min(0.1, self.read_timeout))

    # ------------------------------------------------------------------ to the loop
    def _offer(self, image: Image, ts: float) -> None:
        """Hand the frame over; if the loop has not taken the previous one yet, replace it."""
        with self._pending_lock:
            scheduled = self._pending is not None
            self._pending = (image, ts)
        if not scheduled:
            self._post(self._publish_pending)

    def _publish_pending(self) -> None:
        with self._pending_lock:
            pending, self._pending = self._pending, None
        if pending is not None and self._hub is not None and not self._stop.is_set():
            self._hub.publish(pending[0], pending[1])

    def _report(self, status: SignalStatus, message: str, *, placeholder: bool = True) -> None:
        """Tell the hub (from the thread); a trouble state also shows a frame saying why."""
        changed = status != self._status
        self._status = status
        if changed:
            log.info("%s: %s (%s)", self.device, status, message)
        image = self._placeholder(status, message) if placeholder else None

        def apply() -> None:
            if self._hub is None:
                return
            self._hub.set_signal(status, message)
            if image is not None:
                self._hub.publish(image)

        self._post(apply)

    def _placeholder(self, status: SignalStatus, message: str) -> Image:
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
