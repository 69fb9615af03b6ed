"""HID output through a WCH CH9329: a UART-to-USB chip that plays keyboard + mouse to the target.

Why a chip at all: boards without a USB device controller (or with the OTG port in use) can
still type into a BIOS when a CH9329 sits between one of their UARTs and the target's USB port.

Wire format (all commands and replies)::

    57 AB ADDR CMD LEN DATA[LEN] SUM        SUM = sum of all preceding bytes, mod 256

Replies echo the command with bit 7 set (``0x80 | CMD``) on success and with bits 7 and 6 set
(``0xC0 | CMD``) plus one status byte on failure. Every frame we send waits for its reply, so
a slow or dead chip back-pressures the controller's ordered queue instead of losing reports.

The module is split into small pure pieces (:func:`build_frame`, :class:`FrameParser`,
:func:`encode_report`, :func:`parse_info`) that tests can check on known byte strings, and the
asyncio backend :class:`Ch9329Output`, which owns the serial port.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import serial

from hid.fdwait import wait_writable
from hid.output import HidOutput, OutputError, TargetOffline
from hid.reports import ABS_MAX, Report, ReportKind

log = logging.getLogger(__name__)

HEADER = b"\x57\xab"
MAX_DATA = 64  # the chip never sends or accepts more data bytes than this in one frame

CMD_GET_INFO = 0x01
CMD_KEYBOARD = 0x02
CMD_MEDIA = 0x03
CMD_MOUSE_ABS = 0x04
CMD_MOUSE_REL = 0x05
CMD_GET_CONFIG = 0x08
CMD_SET_CONFIG = 0x09
CMD_RESET = 0x0F

REPLY_OK = 0x80
REPLY_ERROR = 0xC0

STATUS_OK = 0x00
STATUS_NAMES = {
    0xE1: "timeout receiving the frame",
    0xE2: "bad frame header",
    0xE3: "unknown command",
    0xE4: "checksum mismatch",
    0xE5: "parameter error",
    0xE6: "operation failed",
}
# The chip saw a damaged frame (line noise, a dropped byte): sending it again usually works.
TRANSIENT_STATUSES = frozenset({0xE1, 0xE2, 0xE4})
# Commands whose successful reply carries only a status byte (get-info / get-config carry data).
STATUS_REPLY_COMMANDS = frozenset(
    {CMD_KEYBOARD, CMD_MEDIA, CMD_MOUSE_ABS, CMD_MOUSE_REL, CMD_SET_CONFIG, CMD_RESET}
)

CHIP_ABS_MAX = 4095  # the chip's absolute pointer range (factory default 4096 x 4096)
CHIP_BUTTONS_MASK = 0x07  # the chip's mouse has left, right and middle only

ABS_MOUSE_MODE = 0x02  # first data byte of an absolute mouse frame
REL_MOUSE_MODE = 0x01  # first data byte of a relative mouse frame


# --------------------------------------------------------------------------- pure frame helpers
def checksum(data: bytes | bytearray | memoryview) -> int:
    return sum(data) & 0xFF


def build_frame(addr: int, cmd: int, data: bytes = b"") -> bytes:
    """One complete frame, checksum included."""
    if not 0 <= addr <= 0xFF or not 0 <= cmd <= 0xFF:
        raise ValueError(f"address {addr} / command {cmd} must be a byte")
    if len(data) > MAX_DATA:
        raise ValueError(f"{len(data)} data bytes; a CH9329 frame carries at most {MAX_DATA}")
    body = HEADER + bytes([addr, cmd, len(data)]) + bytes(data)
    return body + bytes([checksum(body)])


@dataclass(frozen=True, slots=True)
class Frame:
    """A frame found on the wire. ``checksum_ok`` False: it arrived damaged (never trust data)."""

    addr: int
    cmd: int
    data: bytes
    checksum_ok: bool = True


@dataclass
class FrameParser:
    """Turns arbitrary byte chunks into frames.

    Bytes before a header are skipped (counted in ``skipped``), so a reader that starts in the
    middle of a frame, or after line noise, falls back into step at the next ``57 AB``. A frame
    whose checksum does not match is reported (``checksum_ok=False``) and only its header is
    consumed: if the damage was in LEN, a good frame hiding inside is still found.
    """

    skipped: int = 0
    bad_checksums: int = 0
    _buf: bytearray = field(default_factory=bytearray)

    def reset(self) -> None:
        """Forget a partial frame (the next exchange starts clean)."""
        self.skipped += len(self._buf)
        self._buf.clear()

    def feed(self, chunk: bytes) -> Iterator[Frame]:
        buf = self._buf
        buf += chunk
        while buf:
            start = buf.find(HEADER)
            if start < 0:
                # Keep a trailing 0x57: it may be the first half of a header split across chunks.
                keep = 1 if buf[-1] == HEADER[0] else 0
                self.skipped += len(buf) - keep
                del buf[: len(buf) - keep]
                return
            if start:
                self.skipped += start
                del buf[:start]
            if len(buf) < 5:
                return
            length = buf[4]
            if length > MAX_DATA:
                # Not a real frame: a header-like pair inside noise. Skip it and look further.
                self.skipped += 2
                del buf[:2]
                continue
            end = 5 + length
            if len(buf) < end + 1:
                return
            if checksum(buf[:end]) != buf[end]:
                self.bad_checksums += 1
                yield Frame(buf[2], buf[3], bytes(buf[5:end]), checksum_ok=False)
                self.skipped += 2
                del buf[:2]
                continue
            frame = Frame(buf[2], buf[3], bytes(buf[5:end]))
            del buf[: end + 1]
            yield frame


# --------------------------------------------------------------------------- report mapping
def scale_abs(value: int) -> int:
    """0..32767 → 0..4095, rounded to nearest (0 → 0, 32767 → 4095; 32767 is odd: no ties)."""
    value = min(max(value, 0), ABS_MAX)
    return (value * CHIP_ABS_MAX + ABS_MAX // 2) // ABS_MAX


def int8_byte(value: int) -> int:
    """Two's complement byte of a signed delta: -1 → 0xFF, -127 → 0x81 (not 255 + v)."""
    if not -128 <= value <= 127:
        raise ValueError(f"{value} does not fit a signed byte")
    return value & 0xFF


def _signed(byte: int) -> int:
    return byte - 0x100 if byte & 0x80 else byte


def encode_report(report: Report) -> tuple[int, bytes]:
    """The (command, data) pair that makes the chip send *report* to the target.

    The chip has no AC Pan (horizontal wheel) and only three mouse buttons: the pan byte and
    the back/forward buttons are dropped here, on purpose.
    """
    d = report.data
    if report.kind is ReportKind.KEYBOARD:
        if len(d) != 8:
            raise ValueError(f"keyboard report must be 8 bytes, got {len(d)}")
        return CMD_KEYBOARD, bytes(d)
    if report.kind is ReportKind.MOUSE_ABS:
        if len(d) < 6:
            raise ValueError(f"absolute mouse report too short ({len(d)} bytes)")
        x = scale_abs(d[1] | d[2] << 8)
        y = scale_abs(d[3] | d[4] << 8)
        return CMD_MOUSE_ABS, bytes(
            [
                ABS_MOUSE_MODE,
                d[0] & CHIP_BUTTONS_MASK,
                x & 0xFF,
                x >> 8,
                y & 0xFF,
                y >> 8,
                int8_byte(_signed(d[5])),
            ]
        )
    if report.kind is ReportKind.MOUSE_REL:
        if len(d) < 3:
            raise ValueError(f"relative mouse report too short ({len(d)} bytes)")
        wheel = _signed(d[3]) if len(d) > 3 else 0
        return CMD_MOUSE_REL, bytes(
            [
                REL_MOUSE_MODE,
                d[0] & CHIP_BUTTONS_MASK,
                int8_byte(_signed(d[1])),
                int8_byte(_signed(d[2])),
                int8_byte(wheel),
            ]
        )
    raise ValueError(f"CH9329 cannot send {report.kind}")


@dataclass(frozen=True, slots=True)
class ChipInfo:
    """What get-info (0x01) reports: firmware version, USB state on the target, keyboard LEDs."""

    version: int
    usb_enumerated: bool
    leds: int

    def as_dict(self) -> dict[str, object]:
        return {
            "version": f"0x{self.version:02X}",
            "usb_enumerated": self.usb_enumerated,
            "leds": self.leds,
        }


def parse_info(data: bytes) -> ChipInfo:
    """Reply data of get-info: ``[version, usb enumerated (0/1), LED bits, reserved...]``."""
    if len(data) < 3:
        raise Ch9329Error(f"get-info reply too short ({len(data)} data bytes)")
    return ChipInfo(version=data[0], usb_enumerated=data[1] == 0x01, leds=data[2])


class Ch9329Error(OutputError):
    """The chip answered, but with an error status (or unreadably twice in a row)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Ch9329Stats:
    """Counters for the status page and for tests: what the link has been through."""

    frames_sent: int = 0
    replies: int = 0
    retries: int = 0
    timeouts: int = 0
    error_replies: int = 0
    stray_replies: int = 0  # late or foreign replies that were ignored
    opens: int = 0
    port_lost: int = 0
    unsupported: int = 0  # malformed reports dropped (never sent)

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class _Retry(Exception):
    """Internal: the reply was damaged in a way that resending the command may fix."""


# --------------------------------------------------------------------------- the backend
class Ch9329Output(HidOutput):
    """HID output through a CH9329 on a serial port.

    ``port`` is a path (``/dev/ttyS1``, ``/dev/serial/by-id/...``, or any symlink); it is opened
    lazily and reopened after it vanishes, so unplugging and replugging a USB-serial adapter
    recovers on its own. ``baud`` must match the chip (factory default 9600). ``address`` is
    the chip's configured address (default 0x00). ``reply_timeout`` bounds each exchange;
    ``keepalive`` is the longest time between two get-info requests (0 disables them): they
    refresh the LEDs and the target's USB state, and find a vanished or returned port, even
    when nobody types.
    """

    name = "ch9329"

    def __init__(
        self,
        port: str | os.PathLike[str],
        baud: int = 9600,
        address: int = 0x00,
        *,
        reply_timeout: float = 0.3,
        keepalive: float = 2.0,
    ) -> None:
        super().__init__()
        if not 0 <= address <= 0xFF:
            raise ValueError(f"CH9329 address must be 0..255, not {address}")
        if reply_timeout <= 0:
            raise ValueError("reply_timeout must be positive")
        self.port = os.fspath(port)
        self.baud = baud
        self.address = address
        self.reply_timeout = reply_timeout
        self.keepalive = keepalive
        self.stats = Ch9329Stats()
        self.info: ChipInfo | None = None
        self.last_error: str | None = None
        self._serial: Any = None  # serial.Serial while the port is open
        self._parser = FrameParser()
        self._inbox: deque[Frame] = deque()
        self._arrived = asyncio.Event()
        self._lock = asyncio.Lock()  # one exchange on the wire at a time
        self._usb_enumerated: bool | None = None  # None: ask the chip before the next report
        self._last_info = 0.0  # monotonic time of the last good get-info reply
        self._keepalive_task: asyncio.Task[None] | None = None

    # ----------------------------------------------------------------- public state
    @property
    def connected(self) -> bool:
        """The serial port is open (says nothing about the target: see ``usb_enumerated``)."""
        return self._serial is not None

    @property
    def usb_enumerated(self) -> bool | None:
        return self._usb_enumerated

    @property
    def skipped_bytes(self) -> int:
        """Bytes dropped while looking for a frame header (noise, partial frames)."""
        return self._parser.skipped

    @property
    def bad_checksums(self) -> int:
        return self._parser.bad_checksums

    def status(self) -> dict[str, object]:
        return {
            "port": self.port,
            "baud": self.baud,
            "connected": self.connected,
            "usb_enumerated": self._usb_enumerated,
            "chip": self.info.as_dict() if self.info else None,
            "last_error": self.last_error,
            "skipped_bytes": self.skipped_bytes,
            "bad_checksums": self.bad_checksums,
            **self.stats.as_dict(),
        }

    # ----------------------------------------------------------------- lifecycle
    async def open(self) -> None:
        """Try the port once (a missing chip is not an error here) and start the keep-alive."""
        with contextlib.suppress(TargetOffline, OutputError):
            async with self._lock:
                await self._refresh_info()
        if self.keepalive > 0 and self._keepalive_task is None:
            self._keepalive_task = asyncio.create_task(self._keepalive_loop(), name="ch9329-ka")

    async def close(self) -> None:
        if self._keepalive_task is not None:
            self._keepalive_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keepalive_task
            self._keepalive_task = None
        self._close_port("closed")

    async def write(self, report: Report) -> None:
        try:
            cmd, data = encode_report(report)
        except ValueError as exc:
            # Retrying cannot help and raising would stall every report queued behind it:
            # drop this one, loudly.
            self.stats.unsupported += 1
            log.warning("CH9329: dropped a report the chip cannot send: %s", exc)
            return
        async with self._lock:
            if self._serial is None or not self._usb_enumerated:
                await self._refresh_info()
            if not self._usb_enumerated:
                self.last_error = (
                    f"CH9329 on {self.port}: the target has not enumerated the chip's USB side "
                    "(target off, asleep or cable out)"
                )
                raise TargetOffline(self.last_error)
            await self._exchange(cmd, data)

    async def get_info(self) -> ChipInfo:
        """Ask the chip now (also updates LEDs and the USB state)."""
        async with self._lock:
            return await self._refresh_info()

    # ----------------------------------------------------------------- exchanges
    async def _refresh_info(self) -> ChipInfo:
        info = parse_info(await self._exchange(CMD_GET_INFO, b""))
        self.info = info
        if info.usb_enumerated != self._usb_enumerated:
            log.info("CH9329: target USB %s", "enumerated" if info.usb_enumerated else "absent")
        self._usb_enumerated = info.usb_enumerated
        self._last_info = time.monotonic()
        self._set_leds(info.leds)
        return info

    async def _exchange(self, cmd: int, data: bytes) -> bytes:
        """Send one command and return its reply data; resend once after a damaged reply."""
        frame = build_frame(self.address, cmd, data)
        try:
            for attempt in range(2):
                port = self._ensure_open()
                self._drop_pending(port)
                await self._send(port, frame)
                try:
                    reply = await self._await_reply(port, cmd)
                except _Retry as exc:
                    if attempt:
                        raise Ch9329Error(f"CH9329 on {self.port}: {exc} (twice)") from None
                    self.stats.retries += 1
                    log.debug("CH9329: %s; resending command 0x%02X", exc, cmd)
                    continue
                self.last_error = None
                return reply
        except (TargetOffline, OutputError) as exc:
            self.last_error = str(exc)
            raise
        raise AssertionError("unreachable")

    async def _await_reply(self, port: Any, cmd: int) -> bytes:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.reply_timeout
        while True:
            while self._inbox:
                reply = self._take_reply(self._inbox.popleft(), cmd)
                if reply is not None:
                    return reply
            if self._serial is not port:
                raise TargetOffline(
                    f"CH9329 serial port {self.port}: {self.last_error or 'closed'}"
                )
            remaining = deadline - loop.time()
            if remaining <= 0:
                self.stats.timeouts += 1
                # After silence we no longer know the target's USB state: ask before the next
                # report (that also catches a chip that was power-cycled).
                self._usb_enumerated = None
                if self._port_replaced(port):
                    self._close_port(f"{self.port} now names another device")
                raise TargetOffline(
                    f"no reply from CH9329 on {self.port} within {self.reply_timeout:.2f} s "
                    f"(chip unpowered, wrong baud rate ({self.baud}) or TX/RX swapped?)"
                )
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self._arrived.wait()

    def _take_reply(self, frame: Frame, cmd: int) -> bytes | None:
        """Judge one received frame: its data if it answers *cmd*, None to keep waiting."""
        if not frame.checksum_ok:
            raise _Retry("reply with a bad checksum")
        if frame.addr != self.address:
            self.stats.stray_replies += 1
            return None
        status: int | None = None
        if frame.cmd == REPLY_ERROR | cmd:
            status = frame.data[0] if frame.data else None
        elif frame.cmd == REPLY_OK | cmd:
            if cmd not in STATUS_REPLY_COMMANDS or (frame.data[:1] == bytes([STATUS_OK])):
                self.stats.replies += 1
                return frame.data
            status = frame.data[0] if frame.data else None
        else:
            self.stats.stray_replies += 1
            return None
        self.stats.error_replies += 1
        if status is None:
            what = "an error reply without a status byte"
        else:
            what = STATUS_NAMES.get(status, f"status 0x{status:02X}")
        if status in TRANSIENT_STATUSES:
            raise _Retry(f"chip reported {what}")
        raise Ch9329Error(f"CH9329 rejected command 0x{cmd:02X}: {what}", status)

    # ----------------------------------------------------------------- the port
    def _ensure_open(self) -> Any:
        if self._serial is not None:
            return self._serial
        try:
            port = serial.Serial(self.port, self.baud, timeout=0, write_timeout=0, exclusive=True)
        except (serial.SerialException, OSError, ValueError) as exc:
            self.last_error = f"cannot open {self.port}: {exc}"
            raise TargetOffline(f"CH9329 serial port {self.port} unavailable: {exc}") from exc
        self._serial = port
        self._parser.reset()
        self._inbox.clear()
        self._usb_enumerated = None
        self.stats.opens += 1
        asyncio.get_running_loop().add_reader(port.fd, self._on_readable, port)
        log.info("CH9329: opened %s at %d baud", self.port, self.baud)
        return port

    def _close_port(self, reason: str) -> None:
        port, self._serial = self._serial, None
        self._usb_enumerated = None
        self._arrived.set()  # wake a waiter: it will see the port is gone
        if port is None:
            return
        if reason != "closed":
            self.stats.port_lost += 1
            self.last_error = reason
            log.warning("CH9329: lost %s: %s", self.port, reason)
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(port.fd)
        with contextlib.suppress(Exception):
            port.close()

    def _on_readable(self, port: Any) -> None:
        if port is not self._serial:
            return
        try:
            # timeout=0: returns what is there now, never waits.
            chunk: bytes = port.read(4096)
        except (serial.SerialException, OSError) as exc:
            self._close_port(f"read failed: {exc}")
            return
        if chunk:
            self._inbox.extend(self._parser.feed(chunk))
            self._arrived.set()

    def _drop_pending(self, port: Any) -> None:
        """Forget bytes that arrived outside an exchange (late replies, noise)."""
        self._on_readable(port)
        if self._inbox:
            self.stats.stray_replies += len(self._inbox)
            self._inbox.clear()
        self._parser.reset()

    async def _send(self, port: Any, frame: bytes) -> None:
        # os.write on pyserial's non-blocking fd: pyserial's own write(), with write_timeout=0,
        # spins on EAGAIN instead of returning.
        view = memoryview(frame)
        while view:
            if self._serial is not port:
                raise TargetOffline(
                    f"CH9329 serial port {self.port}: {self.last_error or 'closed'}"
                )
            try:
                written = os.write(port.fd, view)
            except BlockingIOError:
                await self._writable(port)
                continue
            except OSError as exc:
                self._close_port(f"write failed: {exc}")
                raise TargetOffline(f"CH9329 serial port {self.port}: write failed: {exc}") from exc
            view = view[written:]
        self.stats.frames_sent += 1

    async def _writable(self, port: Any) -> None:
        if not await wait_writable(port.fd, self.reply_timeout):
            raise TargetOffline(
                f"CH9329 serial port {self.port} does not accept data (flow control?)"
            )

    def _port_replaced(self, port: Any) -> bool:
        """True when the configured path is gone or now names a different device than ours."""
        try:
            return os.stat(self.port).st_rdev != os.fstat(port.fd).st_rdev
        except OSError:
            return True

    # ----------------------------------------------------------------- keep-alive
    async def _keepalive_loop(self) -> None:
        """Ask get-info whenever the last answer is ``keepalive`` s old.

        Idle links are what this is for (LEDs, port back after a replug), but it runs during
        traffic too: the chip acknowledges reports even when the target's USB is gone, so only
        get-info notices a target switched off in the middle of a paste, and the rest of the
        paste then waits (TargetOffline) instead of vanishing. It costs one exchange per period.
        """
        last_try = 0.0
        while True:
            wait = max(self._last_info, last_try) + self.keepalive - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            last_try = time.monotonic()
            try:
                async with self._lock:
                    if self._serial is not None and self._port_replaced(self._serial):
                        self._close_port(f"{self.port} vanished or names another device")
                    await self._refresh_info()
            except (TargetOffline, OutputError) as exc:
                log.debug("CH9329 keep-alive: %s", exc)
            except Exception:
                log.exception("CH9329 keep-alive failed")
