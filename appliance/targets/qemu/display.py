"""QemuSource: the active guest's display as frames in the hub, by VNC (default) or screendump.

It follows the rack: a switch to another guest, or the guest going away, ends the current
session and starts one for whatever is on the console now. The signal says what the user needs
to know: ``ok`` while the guest runs, ``target_off`` while it is powered off or paused (the last
picture stays), ``no_device`` while QEMU cannot be reached.

Two readers, measured by ``bench/qemu_display.py`` (docs/qemu.md has the table):

- ``vnc``: QEMU's VNC server pushes changed rectangles (:mod:`.vnc`); a frame is published per
  update, at most ``fps`` times a second, and the latest picture again once a second while the
  screen is still (so the hub's fps shows a live source, at no encoding cost: the hub sees the
  same array and marks nothing changed). QEMU slows its VNC refresh while the screen is still
  (30 ms, +50 ms per idle refresh, up to 3 s), so the first change after a pause would show up
  to 3 s late; therefore, for :data:`BURST` seconds after input reached the guest, frames are
  also taken with ``screendump`` at ``fps``: typing sees screendump's latency, a still screen
  costs what VNC costs (nothing).
- ``screendump``: QMP ``screendump`` to a PPM file in a private directory in RAM, read back with
  OpenCV, ``fps`` times a second whether or not anything changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from appliance.targets.qemu.guest import GuestOffline, QemuGuest, QmpCommandError
from appliance.targets.qemu.rack import QemuRack
from appliance.targets.qemu.vnc import RfbClient, RfbError
from capture.frame import Image
from capture.hub import FrameHub
from capture.source import VideoSource

log = logging.getLogger(__name__)

DisplayMode = Literal["vnc", "screendump"]
KEEPALIVE = 1.0  # seconds between re-publishing a still picture
BURST = 1.0  # seconds after input during which the VNC path also polls screendump
_fdnames = itertools.count(1)


class QemuSource(VideoSource):
    name = "qemu"

    def __init__(
        self,
        rack: QemuRack,
        *,
        mode: DisplayMode = "vnc",
        fps: float = 30,
        work_dir: Path | None = None,
    ) -> None:
        """*work_dir* receives the screendump files; None: a private directory in RAM
        (``/dev/shm``), created on start and removed on close — 30 writes a second must never
        reach the appliance's SD card."""
        if fps <= 0:
            raise ValueError(f"fps must be positive, not {fps}")
        self.rack = rack
        self.mode = mode
        self.fps = fps
        self._own_dir = work_dir is None
        self.work_dir = work_dir or Path()
        self.sessions = 0  # display sessions opened (tests, statistics)
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self._input = asyncio.Event()
        self._last_input = 0.0
        self._unsubscribe = rack.on_change(self._changed.set)
        self._unsubscribe_input = rack.on_input(self._input_sent)

    def _input_sent(self) -> None:
        self._last_input = time.monotonic()
        self._input.set()

    async def start(self, hub: FrameHub) -> None:
        if self._task is not None:
            raise RuntimeError("QemuSource already started")
        if self._own_dir:
            self.work_dir = _ram_dir()
        hub.set_signal("starting", "QEMU guest starting")
        self._task = asyncio.create_task(self._run(hub), name="qemu-display")

    async def close(self) -> None:
        self._unsubscribe()
        self._unsubscribe_input()
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        if self._own_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    # ------------------------------------------------------------------ following the rack
    async def _run(self, hub: FrameHub) -> None:
        while True:
            self._changed.clear()
            guest = self.rack.guest
            self._signal(hub, guest)
            if not guest.connected:
                await self._changed.wait()
                continue
            session = asyncio.create_task(self._session(hub, guest))
            waiter = asyncio.create_task(self._until_moved(hub, guest))
            try:
                await asyncio.wait({session, waiter}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                session.cancel()
                waiter.cancel()
                ended = await asyncio.gather(session, waiter, return_exceptions=True)
            if isinstance(ended[0], Exception):
                log.warning("display of %s ended: %s", guest.name, ended[0])
                await asyncio.sleep(0.5)  # a failing display retries twice a second, no faster

    async def _until_moved(self, hub: FrameHub, guest: QemuGuest) -> None:
        """Return when another guest is selected or this one lost its QMP connection; keep the
        signal current meanwhile."""
        while True:
            await self._changed.wait()
            self._changed.clear()
            if self.rack.guest is not guest or not guest.connected:
                self._changed.set()  # let _run see it too
                return
            self._signal(hub, guest)

    def _signal(self, hub: FrameHub, guest: QemuGuest) -> None:
        if guest.status == "running":
            frame = hub.latest
            size = f" {frame.width}x{frame.height}" if frame is not None else ""
            hub.set_signal("ok", f"QEMU guest {guest.name}{size}")
        elif guest.status in ("off", "shutdown", "paused", "failed"):
            hub.set_signal("target_off", guest.message or f"guest {guest.name} is powered off")
        elif guest.status == "starting":
            hub.set_signal("starting", guest.message or f"guest {guest.name} is starting")
        else:
            hub.set_signal("no_device", guest.message or f"guest {guest.name} is unreachable")

    def _publish(self, hub: FrameHub, guest: QemuGuest, image: Image) -> None:
        hub.publish(image, time.monotonic())
        self._signal(hub, guest)

    async def _session(self, hub: FrameHub, guest: QemuGuest) -> None:
        self.sessions += 1
        if self.mode == "vnc":
            try:
                await self._vnc(hub, guest)
                return
            except QmpCommandError as exc:  # an attached QEMU without a VNC server
                log.warning("%s: no VNC display (%s); polling screendump instead", guest.name, exc)
        await self._screendump(hub, guest)

    # ------------------------------------------------------------------ VNC
    async def _vnc(self, hub: FrameHub, guest: QemuGuest) -> None:
        ours, theirs = socket.socketpair()
        try:
            fdname = f"ipkvm-vnc-{next(_fdnames)}"
            try:
                await guest.pass_socket(theirs, fdname)
                await guest.execute(
                    "add_client", {"protocol": "vnc", "fdname": fdname, "skipauth": True}
                )
            finally:
                theirs.close()
            reader, writer = await asyncio.open_unix_connection(sock=ours)
        except BaseException:
            ours.close()
            raise
        try:
            client = RfbClient(reader, writer, on_leds=guest.set_leds)
            async with asyncio.timeout(guest.timeout):
                await client.handshake()
            burst = asyncio.create_task(self._bursts(hub, guest))
            try:
                await self._vnc_frames(hub, guest, client)
            finally:
                burst.cancel()
                await asyncio.gather(burst, return_exceptions=True)
        except (RfbError, asyncio.IncompleteReadError, ConnectionError, TimeoutError) as exc:
            raise GuestOffline(f"VNC display of {guest.name}: {exc}") from None
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _vnc_frames(self, hub: FrameHub, guest: QemuGuest, client: RfbClient) -> None:
        loop = asyncio.get_running_loop()
        interval = 1.0 / self.fps
        image: Image | None = None
        # The read is never cancelled by the keep-alive: a time-out in the middle of a large
        # update would leave the stream in the middle of a message.
        reading = asyncio.ensure_future(client.update())
        try:
            while True:
                asked = loop.time()
                while not (await asyncio.wait({reading}, timeout=KEEPALIVE))[0]:
                    if hub.latest is not None:  # the same array: costs nothing downstream
                        self._publish(hub, guest, hub.latest.image)
                if reading.result() or image is None:
                    assert client.framebuffer is not None
                    image = client.framebuffer.copy()  # the hub's frame must never change
                    self._publish(hub, guest, image)
                await asyncio.sleep(max(0.0, asked + interval - loop.time()))
                client.request()
                await client.writer.drain()
                reading = asyncio.ensure_future(client.update())
        finally:
            reading.cancel()
            await asyncio.gather(reading, return_exceptions=True)

    async def _bursts(self, hub: FrameHub, guest: QemuGuest) -> None:
        """Poll screendump for BURST seconds after each input (see the module's docstring)."""
        while True:
            self._input.clear()
            await self._input.wait()
            await self._screendump(hub, guest, until_idle=True)

    # ------------------------------------------------------------------ screendump
    async def _screendump(self, hub: FrameHub, guest: QemuGuest, until_idle: bool = False) -> None:
        """Publish screendumps at fps; with *until_idle*, only until BURST s after the last
        input."""
        loop = asyncio.get_running_loop()
        self.work_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.work_dir / f"{guest.name}-screen{'-burst' if until_idle else ''}.ppm"
        interval = 1.0 / self.fps
        deadline = loop.time()
        try:
            while not until_idle or time.monotonic() - self._last_input < BURST:
                try:
                    await guest.execute("screendump", {"filename": str(path)})
                except QmpCommandError as exc:
                    raise GuestOffline(str(exc)) from None
                image = await loop.run_in_executor(None, _read_image, path)
                if image is not None:
                    self._publish(hub, guest, image)
                deadline += interval
                delay = deadline - loop.time()
                if delay < -interval:
                    deadline, delay = loop.time(), 0.0
                await asyncio.sleep(max(delay, 0.0))
        finally:
            with contextlib.suppress(OSError):
                path.unlink()


def _ram_dir() -> Path:
    """A private (0700) directory in /dev/shm, or in the temporary directory without it."""
    ram = Path("/dev/shm")
    return Path(tempfile.mkdtemp(prefix="ipkvm-qemu-", dir=ram if ram.is_dir() else None))


def _read_image(path: Path) -> Image | None:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return None if image is None else np.asarray(image, dtype=np.uint8)
