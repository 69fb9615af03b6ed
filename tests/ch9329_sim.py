"""A simulated CH9329 behind a pty pair, for testing the serial HID backend end to end.

The backend opens :attr:`Ch9329Sim.path` (the pty's slave side) with pyserial exactly as it
would open ``/dev/ttyS1``; the simulator reads and answers on the master side inside the test's
event loop. It is deliberately strict and written independently of ``hid.ch9329``: every frame
it receives is checked (header, address, known command, length, checksum, field ranges) and any
violation is recorded in :attr:`violations`, which the tests assert to be empty.

Knobs (plain attributes) make it misbehave the way real links do: stay silent, send garbage
before a reply, damage a reply's checksum, answer with an error status, report the target's USB
as not enumerated, report keyboard LEDs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from collections.abc import Callable
from dataclasses import dataclass

# Commands the simulator understands, with the data lengths the datasheet allows.
DATA_LENGTHS: dict[int, frozenset[int]] = {
    0x01: frozenset({0}),  # get info
    0x02: frozenset({8}),  # keyboard
    0x03: frozenset({2, 4}),  # media / ACPI keys
    0x04: frozenset({7}),  # absolute mouse
    0x05: frozenset({5}),  # relative mouse
    0x08: frozenset({0}),  # get config
    0x0F: frozenset({0}),  # reset
}


@dataclass(frozen=True, slots=True)
class AbsMove:
    buttons: int
    x: int
    y: int
    wheel: int


@dataclass(frozen=True, slots=True)
class RelMove:
    buttons: int
    dx: int
    dy: int
    wheel: int


def _sum8(data: bytes | bytearray) -> int:
    total = 0
    for byte in data:
        total = (total + byte) % 256
    return total


def _s8(byte: int) -> int:
    return int.from_bytes(bytes([byte]), "little", signed=True)


class Ch9329Sim:
    def __init__(self, address: int = 0x00, version: int = 0x30) -> None:
        self.address = address
        self.version = version
        self.master, self._slave = os.openpty()
        # Raw from the start: no echo, no CR/LF translation of binary frames.
        tty.setraw(self._slave)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self._slave)
        # --- behaviour knobs
        self.silent = False  # chip unpowered: frames are read (and checked) but not answered
        self.usb_enumerated = True
        self.leds = 0
        self.garbage_before_reply = b""  # written before the next reply, then cleared
        self.corrupt_replies = 0  # the next N replies get a wrong checksum
        self.error_status: int | None = None  # the next HID command is refused with this
        # --- what the chip received
        self.frames: list[tuple[int, bytes]] = []  # every valid frame answered (cmd, data)
        self.ignored: list[tuple[int, bytes]] = []  # valid frames received while silent
        self.keyboard: list[bytes] = []
        self.mouse_abs: list[AbsMove] = []
        self.mouse_rel: list[RelMove] = []
        self.info_requests = 0
        self.violations: list[str] = []
        self._buf = bytearray()
        self._changed = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closed = False

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> Ch9329Sim:
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.master, self._readable)
        return self

    def close(self) -> None:
        """Unplug: both ends of the pty go away, the backend's fd sees a hang-up."""
        if self.closed:
            return
        self.closed = True
        if self._loop is not None:
            self._loop.remove_reader(self.master)
        os.close(self.master)
        os.close(self._slave)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 3.0) -> None:
        """Wait (bounded) until *predicate* holds; re-checked after every frame received."""
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    def send_raw(self, data: bytes) -> None:
        os.write(self.master, data)

    # ----------------------------------------------------------------- receiving
    def _readable(self) -> None:
        try:
            chunk = os.read(self.master, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:  # EIO: no slave open right now
            self.violations.append(f"pty read failed: {exc}")
            return
        self._buf += chunk
        self._parse()
        self._changed.set()

    def _violation(self, what: str) -> None:
        self.violations.append(f"{what}: {self._buf.hex(' ')}")
        self._buf.clear()

    def _parse(self) -> None:
        buf = self._buf
        while buf:
            if buf[0] != 0x57 or (len(buf) > 1 and buf[1] != 0xAB):
                self._violation("frame does not start with header 57 AB")
                return
            if len(buf) < 5:
                return
            addr, cmd, length = buf[2], buf[3], buf[4]
            if len(buf) < 6 + length:
                if length > 64:
                    self._violation(f"impossible length {length}")
                return
            frame = bytes(buf[: 6 + length])
            del buf[: 6 + length]
            data = frame[5:-1]
            if _sum8(frame[:-1]) != frame[-1]:
                self.violations.append(f"bad checksum: {frame.hex(' ')}")
                continue
            if addr != self.address:
                self.violations.append(f"frame for address 0x{addr:02X}: {frame.hex(' ')}")
                continue
            if cmd not in DATA_LENGTHS:
                self.violations.append(f"unknown command 0x{cmd:02X}: {frame.hex(' ')}")
                continue
            if length not in DATA_LENGTHS[cmd]:
                self.violations.append(f"command 0x{cmd:02X} with {length} bytes: {frame.hex(' ')}")
                continue
            self._handle(cmd, data)

    # ----------------------------------------------------------------- answering
    def _reply(self, cmd: int, data: bytes) -> None:
        body = bytes([0x57, 0xAB, self.address, cmd, len(data), *data])
        total = _sum8(body)
        if self.corrupt_replies:
            self.corrupt_replies -= 1
            total = (total + 0x5A) % 256
        out = self.garbage_before_reply + body + bytes([total])
        self.garbage_before_reply = b""
        with contextlib.suppress(OSError):
            os.write(self.master, out)

    def _handle(self, cmd: int, data: bytes) -> None:
        if self.silent:
            self.ignored.append((cmd, data))
            return
        if cmd == 0x01:
            self.info_requests += 1
            self.frames.append((cmd, data))
            usb = 0x01 if self.usb_enumerated else 0x00
            self._reply(0x81, bytes([self.version, usb, self.leds, 0, 0, 0, 0, 0]))
            return
        if cmd in (0x02, 0x03, 0x04, 0x05) and self.error_status is not None:
            status, self.error_status = self.error_status, None
            self._reply(0xC0 | cmd, bytes([status]))
            return
        problem = self._check_fields(cmd, data)
        if problem:
            self.violations.append(problem)
            self._reply(0xC0 | cmd, b"\xe5")
            return
        self.frames.append((cmd, data))
        if cmd == 0x02:
            self.keyboard.append(data)
        elif cmd == 0x04:
            x = data[2] | data[3] << 8
            y = data[4] | data[5] << 8
            self.mouse_abs.append(AbsMove(data[1], x, y, _s8(data[6])))
        elif cmd == 0x05:
            self.mouse_rel.append(RelMove(data[1], _s8(data[2]), _s8(data[3]), _s8(data[4])))
        self._reply(0x80 | cmd, b"\x00")

    @staticmethod
    def _check_fields(cmd: int, data: bytes) -> str | None:
        if cmd == 0x02 and data[1] != 0:
            return f"keyboard reserved byte is 0x{data[1]:02X}"
        if cmd == 0x04:
            if data[0] != 0x02:
                return f"absolute mouse frame starts with 0x{data[0]:02X}, not 02"
            x = data[2] | data[3] << 8
            y = data[4] | data[5] << 8
            if x > 4095 or y > 4095:
                return f"absolute position ({x}, {y}) outside 0..4095"
        if cmd == 0x05 and data[0] != 0x01:
            return f"relative mouse frame starts with 0x{data[0]:02X}, not 01"
        if cmd in (0x04, 0x05) and data[1] & 0xF8:
            return f"mouse buttons 0x{data[1]:02X} use bits the chip does not have"
        return None
