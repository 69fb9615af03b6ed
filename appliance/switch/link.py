"""Byte links to a switch's control port: a serial port or a TCP connection.

Both open lazily (the first command opens them, a failed one closes them, the next reopens), so
a USB-serial adapter unplugged and plugged back, or a switch rebooted, is picked up again without
a restart. Neither ever blocks the event loop: the serial port is pyserial opened with
``timeout=0`` and watched with ``add_reader``, written with ``os.write`` on its non-blocking
descriptor (as :mod:`hid.ch9329` does); the TCP link is asyncio streams. Every wait is bounded.

What arrives is fed to the protocol's :class:`~appliance.switch.parse.ReplyScanner` as it comes,
and the ports it names wait in an inbox for :meth:`next_port`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path
from typing import Any, Protocol

from appliance.switch.driver import SwitchOffline, SwitchTimeout
from appliance.switch.parse import ReplyScanner
from hid.fdwait import wait_writable

log = logging.getLogger(__name__)


class Link(Protocol):
    describe: str

    async def open(self) -> None: ...

    async def send(self, data: bytes) -> None: ...

    async def next_port(self, timeout: float) -> int: ...

    def forget(self) -> None: ...

    async def close(self) -> None: ...


class _Inbox:
    """Ports named by replies, oldest first, and a wake-up for whoever waits for one."""

    describe = ""

    def __init__(self, scanner: ReplyScanner) -> None:
        self.scanner = scanner
        self.ports: list[int] = []
        self._arrived = asyncio.Event()
        self.open_now = False
        self.last_error: str | None = None

    def received(self, chunk: bytes) -> None:
        found = self.scanner.feed(chunk)
        if found:
            self.ports.extend(found)
            del self.ports[:-16]  # a chatty switch (heartbeats) must not grow this
            self._arrived.set()

    def lost(self, reason: str) -> None:
        self.last_error = reason
        self._arrived.set()  # wake a waiter: it sees the link is gone

    def forget(self) -> None:
        """Drop replies that arrived outside an exchange (late answers, heartbeats)."""
        self.ports.clear()
        self.scanner.reset()

    async def next_port(self, timeout: float) -> int:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.ports:
            if not self.open_now:
                raise SwitchOffline(f"{self.describe}: {self.last_error or 'closed'}")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise SwitchTimeout(f"no reply from the switch on {self.describe} in {timeout:g} s")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self._arrived.wait()
        return self.ports.pop(0)


class SerialLink(_Inbox):
    """A serial port by path (``/dev/ttyUSB1``, a ``/dev/serial/by-id/`` link, a pty)."""

    def __init__(self, path: Path, baud: int, scanner: ReplyScanner, timeout: float) -> None:
        super().__init__(scanner)
        self.path = path
        self.baud = baud
        self.timeout = timeout
        self.describe = str(path)
        self._serial: Any = None

    async def open(self) -> None:
        if self._serial is not None and self._replaced(self._serial):
            self._lose(f"{self.path} vanished or names another device")
        if self._serial is not None:
            return
        import serial  # pyserial: only appliances with a serial switch load it

        try:
            port = serial.Serial(
                str(self.path), self.baud, timeout=0, write_timeout=0, exclusive=True
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            self.last_error = f"cannot open: {exc}"
            raise SwitchOffline(f"switch serial port {self.path} unavailable: {exc}") from None
        self._serial = port
        self.open_now = True
        self.forget()
        asyncio.get_running_loop().add_reader(port.fd, self._readable, port)
        log.info("switch: opened %s at %d baud", self.path, self.baud)

    async def send(self, data: bytes) -> None:
        await self.open()
        port = self._serial
        view = memoryview(data)
        while view:
            if self._serial is not port:
                raise SwitchOffline(f"switch serial port {self.path}: {self.last_error}")
            try:
                written = os.write(port.fd, view)
            except BlockingIOError:
                await self._writable(port)
                continue
            except OSError as exc:
                self._lose(f"write failed: {exc}")
                raise SwitchOffline(
                    f"switch serial port {self.path}: write failed: {exc}"
                ) from None
            view = view[written:]

    async def close(self) -> None:
        self._lose("closed")

    def _readable(self, port: Any) -> None:
        if port is not self._serial:
            return
        try:
            chunk: bytes = port.read(4096)  # timeout=0: what is there now, never waits
        except Exception as exc:  # SerialException, OSError (EIO once the device is gone)
            self._lose(f"read failed: {exc}")
            return
        if chunk:
            self.received(chunk)

    async def _writable(self, port: Any) -> None:
        if not await wait_writable(port.fd, self.timeout):
            raise SwitchTimeout(f"switch serial port {self.path} does not take data")

    def _replaced(self, port: Any) -> bool:
        """The path is gone, or now names another device than the one we hold open."""
        try:
            return os.stat(self.path).st_rdev != os.fstat(port.fd).st_rdev
        except OSError:
            return True

    def _lose(self, reason: str) -> None:
        port, self._serial = self._serial, None
        self.open_now = False
        self.lost(reason)
        if port is None:
            return
        if reason != "closed":
            log.warning("switch: lost %s: %s", self.path, reason)
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(port.fd)
        with contextlib.suppress(Exception):
            port.close()


class TcpLink(_Inbox):
    """A networked switch (TESmart's LAN port, factory address 192.168.1.10:5000)."""

    def __init__(self, host: str, port: int, scanner: ReplyScanner, timeout: float) -> None:
        super().__init__(scanner)
        self.host, self.port = host, port
        self.timeout = timeout
        self.describe = f"{host}:{port}"
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        if self._writer is not None:
            return
        try:
            async with asyncio.timeout(self.timeout):
                reader, writer = await asyncio.open_connection(self.host, self.port)
        except (OSError, TimeoutError) as exc:
            self.last_error = f"cannot connect: {exc or 'timed out'}"
            raise SwitchOffline(
                f"switch at {self.describe} unreachable: {exc or 'timed out'}"
            ) from None
        self._writer = writer
        self.open_now = True
        self.forget()
        self._reader_task = asyncio.create_task(self._read(reader, writer), name="switch-tcp")

    async def send(self, data: bytes) -> None:
        await self.open()
        writer = self._writer
        assert writer is not None
        try:
            writer.write(data)
            async with asyncio.timeout(self.timeout):
                await writer.drain()
        except (OSError, TimeoutError) as exc:
            await self._lose(f"write failed: {exc or 'timed out'}")
            raise SwitchOffline(f"switch at {self.describe}: write failed") from None

    async def close(self) -> None:
        await self._lose("closed")

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(4096):
                self.received(chunk)
            reason = "connection closed by the switch"
        except OSError as exc:
            reason = f"read failed: {exc}"
        if self._writer is writer:
            self._reader_task = None  # ending on its own: nothing to cancel
            await self._lose(reason)

    async def _lose(self, reason: str) -> None:
        writer, self._writer = self._writer, None
        task, self._reader_task = self._reader_task, None
        self.open_now = False
        self.lost(reason)
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if writer is not None:
            if reason != "closed":
                log.warning("switch: lost %s: %s", self.describe, reason)
            writer.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self.timeout):
                    await writer.wait_closed()
