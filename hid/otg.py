"""The USB OTG output: HID reports written to the gadget's ``/dev/hidgN`` character devices.

Each report is one non-blocking ``write()``; the kernel takes it whole or not at all, so a report
is never split. ``EAGAIN`` means the host has not yet polled the previous report: the *same*
report is retried once the device is writable (``loop.add_writer``), bounded by
``write_timeout``. A blocking write is never used — it can hang forever when the host is off.
``ESHUTDOWN`` (no host, cable out, not configured) and the errors of a vanished device
(``ENODEV``, ``EIO``, ``ENXIO``, ``EPIPE``, missing file) raise :class:`TargetOffline`; a vanished
or replaced device is reopened on the next attempt, while a hidg that only reported ESHUTDOWN
keeps its fd (it works again when the host returns, and its LED reports keep flowing).
Ordering and retry belong to :class:`HidController`.

Keyboard LEDs: a real hidg is bidirectional — the host's LED output reports are read from the
same fd (opened ``O_RDWR``). Other character devices (a pty pair in tests) are treated the same.

FIFOs stand in for hidg in tests and benchmarks, with one decision documented here: a FIFO is
opened ``O_WRONLY``, not ``O_RDWR``. On Linux an ``O_RDWR`` open of a FIFO always succeeds and
makes us our own reader: a vanished reader would go unnoticed (no ``EPIPE``, reports piling up
unread) and reading LEDs from that fd would read our own reports back. With ``O_WRONLY |
O_NONBLOCK`` a FIFO without a reader fails with ``ENXIO`` (= target offline), and LEDs come from
a separate ``led_path`` (a FIFO the "host" writes LED bytes into). Writes of at most
``PIPE_BUF`` bytes to a pipe are atomic, like hidg reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import stat
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hid.output import HidOutput, OutputError, TargetOffline
from hid.reports import Report, ReportKind

log = logging.getLogger(__name__)

# errno values meaning "nobody is listening on the other side": retry later, after a reopen.
OFFLINE_ERRNOS = frozenset(
    {
        errno.ESHUTDOWN,  # hidg: gadget not configured by a host (off, unplugged, suspended)
        errno.EPIPE,  # FIFO: reader gone
        errno.ENXIO,  # FIFO: no reader at open; device gone
        errno.ENODEV,
        errno.EIO,
        errno.ENOENT,
        errno.ECONNRESET,
        errno.EBADF,
    }
)


@dataclass
class OtgStats:
    """Counters for status pages and benchmarks."""

    writes: int = 0  # reports delivered
    eagain: int = 0  # times a report waited for the host to poll the previous one
    offline: int = 0  # writes refused because the target is not listening
    opens: int = 0  # device opens (first open and every reopen)


@dataclass
class _Device:
    path: Path
    fd: int | None = None
    duplex: bool = False  # reports out and LED reports in on the same fd (hidg, pty)
    pending: set[asyncio.Future[None]] = field(default_factory=set)


class OtgOutput(HidOutput):
    """Writes keyboard, absolute-mouse and relative-mouse reports to three device paths."""

    name = "otg"

    def __init__(
        self,
        keyboard: Path | str = Path("/dev/hidg0"),
        mouse_abs: Path | str = Path("/dev/hidg1"),
        mouse_rel: Path | str = Path("/dev/hidg2"),
        *,
        led_path: Path | str | None = None,
        write_timeout: float = 1.0,
        udc_state: Path | str | None = "auto",
        udc_dir: Path = Path("/sys/class/udc"),
        state_interval: float = 1.0,
    ) -> None:
        super().__init__()
        self.devices: dict[ReportKind, _Device] = {
            ReportKind.KEYBOARD: _Device(Path(keyboard)),
            ReportKind.MOUSE_ABS: _Device(Path(mouse_abs)),
            ReportKind.MOUSE_REL: _Device(Path(mouse_rel)),
        }
        self.led_path = Path(led_path) if led_path is not None else None
        self.write_timeout = write_timeout
        self.stats = OtgStats()
        self._led_fd: int | None = None
        self._led_reader_fd: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._stall_listeners: list[Callable[[Path], None]] = []
        self._udc_state_arg = udc_state
        self._udc_dir = udc_dir
        self._state_interval = state_interval
        self.udc_state_path: Path | None = None
        self.udc_state: str | None = None
        self._state_task: asyncio.Task[None] | None = None

    def on_stall(self, listener: Callable[[Path], None]) -> None:
        """Call *listener(device path)* whenever a report has to wait because the host has not
        read the previous one (EAGAIN): "host not polling" for status pages and tests."""
        self._stall_listeners.append(listener)

    def as_dict(self) -> dict[str, object]:
        """Device paths, which are open, the USB host state and counters: for status pages."""
        return {
            "devices": {
                kind.value: {"path": str(dev.path), "open": dev.fd is not None}
                for kind, dev in self.devices.items()
            },
            "udc_state": self.udc_state,
            "leds": self.leds.as_dict(),
            "stats": asdict(self.stats),
        }

    # ------------------------------------------------------------------ lifecycle
    async def open(self) -> None:
        """Open what is there now; a missing device is not an error until a write needs it."""
        self._loop = asyncio.get_running_loop()
        self._closed = False
        for dev in self.devices.values():
            with contextlib.suppress(TargetOffline, OutputError):
                self._ensure_open(dev)
        self._ensure_leds()
        self.udc_state_path = self._find_udc_state()
        if self.udc_state_path is not None and self._state_task is None:
            self._state_task = asyncio.create_task(self._watch_udc(), name="otg-udc-state")

    async def close(self) -> None:
        self._closed = True
        if self._state_task is not None:
            self._state_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._state_task
            self._state_task = None
        for dev in self.devices.values():
            self._drop(dev)
        self._drop_leds()

    # ------------------------------------------------------------------ USB host state
    def _find_udc_state(self) -> Path | None:
        """``udc_state="auto"``: watch the UDC's state only for a real hidg keyboard and when
        exactly one UDC exists (a board has one OTG port); a path: watch that file."""
        arg = self._udc_state_arg
        if arg is None:
            return None
        if arg != "auto":
            return Path(arg)
        try:
            if not stat.S_ISCHR(os.stat(self.devices[ReportKind.KEYBOARD].path).st_mode):
                return None
            udcs = list(self._udc_dir.iterdir())
        except OSError:
            return None
        return udcs[0] / "state" if len(udcs) == 1 else None

    async def _watch_udc(self) -> None:
        """Tell the controller when the USB host comes and goes, between key presses.

        The state file is re-read every ``state_interval`` (sysfs signals changes only with
        POLLPRI, which the event loop cannot wait for). "configured" = a host enumerated us;
        "not attached", "powered", "default", "addressed" = no usable host. "suspended" is left
        alone: a write wakes the host (wakeup_on_write).
        """
        assert self.udc_state_path is not None
        while True:
            try:
                state: str | None = self.udc_state_path.read_text().strip()
            except OSError:
                state = None
            if state != self.udc_state:
                self.udc_state = state
                if state == "configured":
                    self._set_online(True)
                elif state != "suspended":
                    self._set_online(False, f"USB host: {state or 'UDC gone'}")
            await asyncio.sleep(self._state_interval)

    # ------------------------------------------------------------------ writing
    async def write(self, report: Report) -> None:
        dev = self.devices[report.kind]
        try:
            fd = self._ensure_open(dev)
        except TargetOffline:
            self.stats.offline += 1
            raise
        data = report.data
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.write_timeout
        done = 0
        while done < len(data):
            try:
                # hidg and pipes (≤ PIPE_BUF) take the whole report or nothing; the loop only
                # matters for devices that could split it (none we open).
                done += os.write(fd, data[done:])
            except BlockingIOError:
                self.stats.eagain += 1
                for listener in list(self._stall_listeners):
                    listener(dev.path)
                remaining = deadline - loop.time()
                if remaining <= 0 or not await self._writable(dev, fd, remaining):
                    self.stats.offline += 1
                    raise TargetOffline(
                        f"{dev.path}: host has not read a report for {self.write_timeout:g} s"
                    ) from None
            except OSError as exc:
                # ESHUTDOWN on a hidg that is still the one at the path: the host is away but the
                # fd stays good (and keeps delivering LED reports when the host returns). Any other
                # failure, or a gadget rebuilt under us: reopen on the next attempt.
                if exc.errno != errno.ESHUTDOWN or not self._still_current(dev, fd):
                    self._drop(dev)
                if exc.errno in OFFLINE_ERRNOS:
                    self.stats.offline += 1
                    raise TargetOffline(f"{dev.path}: {exc.strerror}") from exc
                raise OutputError(f"{dev.path}: {exc.strerror or exc}") from exc
        self.stats.writes += 1

    async def _writable(self, dev: _Device, fd: int, timeout: float) -> bool:
        """Wait until *fd* accepts a write; False on timeout or when the fd went away."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()

        def ready() -> None:
            if not fut.done():
                fut.set_result(None)

        try:
            loop.add_writer(fd, ready)
        except (OSError, ValueError):  # not pollable: just retry once
            return True
        dev.pending.add(fut)
        try:
            async with asyncio.timeout(timeout):
                await fut  # raises TargetOffline if the device is dropped meanwhile
        except TimeoutError:
            return False
        finally:
            dev.pending.discard(fut)
            if dev.fd == fd:
                loop.remove_writer(fd)
        return True

    # ------------------------------------------------------------------ devices
    def _ensure_open(self, dev: _Device) -> int:
        if dev.fd is not None:
            return dev.fd
        if self._closed:
            raise TargetOffline("output closed")
        try:
            mode = os.stat(dev.path).st_mode
        except FileNotFoundError:
            raise TargetOffline(f"{dev.path}: no such device (gadget not set up?)") from None
        except OSError as exc:
            raise OutputError(f"{dev.path}: {exc.strerror or exc}") from exc
        dev.duplex = stat.S_ISCHR(mode)
        access = os.O_RDWR if dev.duplex else os.O_WRONLY
        try:
            fd = os.open(dev.path, access | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
        except OSError as exc:
            if exc.errno in OFFLINE_ERRNOS:
                raise TargetOffline(f"{dev.path}: {exc.strerror}") from exc
            raise OutputError(f"{dev.path}: {exc.strerror or exc}") from exc
        dev.fd = fd
        self.stats.opens += 1
        log.debug("opened %s (fd %d, %s)", dev.path, fd, "duplex" if dev.duplex else "write-only")
        if dev is self.devices[ReportKind.KEYBOARD]:
            self._ensure_leds()
        return fd

    @staticmethod
    def _still_current(dev: _Device, fd: int) -> bool:
        """Whether *fd* is still the device node found at the path (not removed or replaced)."""
        try:
            a, b = os.fstat(fd), os.stat(dev.path)
        except OSError:
            return False
        return (a.st_dev, a.st_ino, a.st_rdev) == (b.st_dev, b.st_ino, b.st_rdev)

    def _drop(self, dev: _Device) -> None:
        """Forget a device fd (closed or dead); the next write reopens it."""
        fd, dev.fd = dev.fd, None
        for fut in list(dev.pending):
            if not fut.done():
                fut.set_exception(TargetOffline(f"{dev.path}: closed"))
        if fd is None:
            return
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.remove_writer(fd)
            if self._led_reader_fd == fd:
                loop.remove_reader(fd)
                self._led_reader_fd = None
        with contextlib.suppress(OSError):
            os.close(fd)

    # ------------------------------------------------------------------ LEDs
    def _ensure_leds(self) -> None:
        """Watch for LED output reports: on ``led_path`` if given, else on a duplex keyboard."""
        loop = self._loop
        if loop is None or self._closed or self._led_reader_fd is not None:
            return
        fd: int | None = None
        if self.led_path is not None:
            if self._led_fd is None:
                try:
                    # O_RDWR on a FIFO: never EOF when the host side closes, no busy loop.
                    self._led_fd = os.open(
                        self.led_path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
                    )
                except OSError as exc:
                    log.debug("LED path %s not available: %s", self.led_path, exc)
                    return
            fd = self._led_fd
        else:
            kbd = self.devices[ReportKind.KEYBOARD]
            if kbd.fd is not None and kbd.duplex:
                fd = kbd.fd
        if fd is None:
            return
        try:
            loop.add_reader(fd, self._read_leds, fd)
        except (OSError, ValueError) as exc:
            log.warning("cannot watch LED reports on fd %d: %s", fd, exc)
            return
        self._led_reader_fd = fd

    def _read_leds(self, fd: int) -> None:
        try:
            data = os.read(fd, 64)
        except BlockingIOError:
            return
        except OSError as exc:
            data = b""
            log.debug("LED read failed: %s", exc)
        if not data:  # EOF or dead device: stop watching; a reopen watches again
            if fd == self._led_fd:
                self._drop_leds()
            else:  # the duplex keyboard fd itself failed: reopen it on the next write
                self._drop(self.devices[ReportKind.KEYBOARD])
            return
        # Several reports may be waiting (FIFO): the last one is the current state.
        self._set_leds(data[-1])

    def _drop_leds(self) -> None:
        loop = self._loop
        if self._led_reader_fd is not None and loop is not None and not loop.is_closed():
            loop.remove_reader(self._led_reader_fd)
        self._led_reader_fd = None
        fd, self._led_fd = self._led_fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
