"""A video source that replays recorded device buffers (JPEG or raw YUV) through the capture path.

Why: the pipeline's promises (a dongle's JPEG reaches MJPEG viewers untouched; raw YUV is
converted once) are about what happens to a device buffer after the driver filled it. This source
hands recorded buffers to the very function the V4L2 reader uses
(:func:`capture.v4l2_stream.captured_from_buffer`) and publishes them the same way, so tests and
``bench/pipeline.py`` exercise the real frame path on a machine without a capture device; the
driver side itself is tested on vivid in the system test.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from capture.hub import FrameHub
from capture.source import VideoSource
from capture.v4l2_stream import captured_from_buffer
from capture.yuv import PixelFormat


class ReplaySource(VideoSource):
    """Publishes *buffers* in turn (looping) at *fps*; with ``fps=0`` only on :meth:`step`."""

    name = "replay"

    def __init__(
        self,
        buffers: Sequence[bytes],
        fmt: PixelFormat,
        width: int,
        height: int,
        *,
        bytesperline: int = 0,
        fps: float = 30.0,
    ) -> None:
        if not buffers:
            raise ValueError("nothing to replay")
        self.buffers = list(buffers)
        self.format = fmt
        self.width = width
        self.height = height
        self.bytesperline = bytesperline or (2 * width if fmt in ("yuyv", "uyvy") else width)
        self.fps = fps
        self.published = 0
        self._hub: FrameHub | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, hub: FrameHub) -> None:
        self._hub = hub
        hub.set_signal("ok", "Replaying recorded buffers", width=self.width, height=self.height)
        if self.fps > 0:
            self._task = asyncio.create_task(self._run(), name="replay source")

    def step(self) -> None:
        """Publish the next buffer now (from the event loop)."""
        assert self._hub is not None, "start() first"
        buffer = self.buffers[self.published % len(self.buffers)]
        captured = captured_from_buffer(
            self.format,
            self.width,
            self.height,
            self.bytesperline,
            memoryview(buffer),
            len(buffer),
            self._hub.work,
        )
        if captured is None:
            raise ValueError("a replayed buffer holds no picture")
        self._hub.publish_captured(captured)
        self.published += 1

    async def _run(self) -> None:
        interval = 1.0 / self.fps
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            self.step()
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - loop.time()))

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
