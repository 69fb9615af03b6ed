"""DemoSource: the demo machine's screen as a video source, paced like a capture card."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Protocol

from capture.frame import Image
from capture.hub import FrameHub
from capture.source import VideoSource

log = logging.getLogger(__name__)


class DemoScreen(Protocol):
    """What DemoSource shows: a :class:`.machine.DemoMachine`, or a :class:`.rack.DemoRack`
    (whose screen is its active machine's, so switching changes the picture)."""

    @property
    def width(self) -> int: ...

    @property
    def height(self) -> int: ...

    @property
    def power(self) -> bool: ...

    def cached_frame(self) -> Image | None: ...

    def render(self) -> Image: ...


class DemoSource(VideoSource):
    """Publishes the machine's screen at *fps*; "target_off" while it is powered off."""

    name = "demo"

    def __init__(self, machine: DemoScreen, fps: float = 30) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, not {fps}")
        self.machine = machine
        self.fps = fps
        self._task: asyncio.Task[None] | None = None

    async def start(self, hub: FrameHub) -> None:
        if self._task is not None:
            raise RuntimeError("DemoSource already started")
        hub.set_signal("starting", "Demo target starting")
        self._task = asyncio.create_task(self._run(hub), name="demo-source")

    async def close(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _run(self, hub: FrameHub) -> None:
        loop = asyncio.get_running_loop()
        interval = 1.0 / self.fps
        deadline = loop.time()
        m = self.machine
        while True:
            try:
                image = m.cached_frame()
                if image is None:  # drawing needed: keep it off the event loop
                    image = await loop.run_in_executor(None, m.render)
                ts = time.monotonic()
                if m.power:
                    hub.set_signal("ok", f"Demo target {m.width}x{m.height}")
                else:
                    hub.set_signal("target_off", "The demo target is powered off")
                hub.publish(image, ts)
            except Exception:
                log.exception("demo source frame failed")
                await asyncio.sleep(1.0)  # a persistent fault logs once a second, not at fps
            deadline += interval
            delay = deadline - loop.time()
            if delay < -interval:  # fell behind (busy machine): do not try to catch up
                deadline = loop.time()
                delay = 0.0
            await asyncio.sleep(max(delay, 0.0))
