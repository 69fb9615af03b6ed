"""Non-blocking reading of an evdev character device: whole ``struct input_event`` records off a
file descriptor the event loop watches (``loop.add_reader``), never a thread, never a blocking
read. Why the raw fd and not evdev's ``async_read_loop``: the same code then reads a pipe in the
tests, so what the tests feed is exactly what a device delivers, down to the bytes.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from evdev import InputEvent

log = logging.getLogger(__name__)

EVENT: Final = struct.Struct("@llHHi")
"""``struct input_event`` on the native ABI: timeval (two longs), type, code, value."""
BATCH: Final = 64
"""Events per read(): a mouse sends ~4 per frame at up to 1000 Hz."""


def pack(event: InputEvent) -> bytes:
    """The bytes the kernel would deliver for *event* (the tests write these into a pipe)."""
    return EVENT.pack(event.sec, event.usec, event.type, event.code, event.value)


@dataclass
class EventReader:
    """Calls ``on_event`` for each event, then ``on_gone`` once when the device is gone (ENODEV,
    end of file, or any other read error). ``stop()`` ends it without ``on_gone``."""

    fd: int
    on_event: Callable[[InputEvent], None]
    on_gone: Callable[[str], None]
    _buffer: bytes = b""
    _loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)

    def start(self) -> None:
        os.set_blocking(self.fd, False)
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.fd, self._readable)

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self.fd)
            self._loop = None

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, EVENT.size * BATCH)
        except BlockingIOError:
            return
        except OSError as exc:
            why = "unplugged" if exc.errno == errno.ENODEV else os.strerror(exc.errno or 0)
            self._end(why)
            return
        if not data:
            self._end("end of file")
            return
        data = self._buffer + data
        whole = len(data) - len(data) % EVENT.size
        self._buffer = data[whole:]
        for offset in range(0, whole, EVENT.size):
            sec, usec, type_, code, value = EVENT.unpack_from(data, offset)
            try:
                self.on_event(InputEvent(sec, usec, type_, code, value))
            except Exception:
                # One bad event must not end the device or, worse, the event loop's callback.
                log.exception("passthrough: event %s/%s/%s not handled", type_, code, value)

    def _end(self, why: str) -> None:
        if self._loop is None:
            return
        self.stop()
        self.on_gone(why)
