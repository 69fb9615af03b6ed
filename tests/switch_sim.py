"""Simulated KVM switches behind a pty pair or a loopback TCP server, for the switch drivers.

Written from the protocol facts (/work/shared/PROTOCOLS.md, "External KVM switches"), separately
from ``appliance.switch``: each model parses what it receives its own way, answers as the notes
say, and records anything a real unit would not accept in :attr:`SwitchSim.violations` (unknown
commands, TESmart commands closer than 1 s). Knobs make it misbehave like real links: stay silent
(unpowered), put garbage on the line, take a while to switch (a query too soon names the old
port), be switched by its front-panel button, vanish (pty closed, TCP server gone).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
import tty
from collections.abc import Callable
from typing import Literal

Model = Literal["tesmart", "ezcoo", "ezcoo-ezs", "ezcoo-short", "xh1", "xh2", "extron", "pway"]
MODELS: tuple[Model, ...] = (
    "tesmart",
    "ezcoo",
    "ezcoo-ezs",
    "ezcoo-short",
    "xh1",
    "xh2",
    "extron",
    "pway",
)
SHORT = {1: b"V0CS", 2: b"V18S", 3: b"V5ES", 4: b"V08S"}


class SwitchSim:
    def __init__(self, model: Model, ports: int = 4, switch_delay: float = 0.0) -> None:
        self.model = model
        self.ports = ports
        self.active = 1
        self.switch_delay = switch_delay
        # --- knobs
        self.silent = False
        self.garbage_before_reply = b""
        self.heartbeat_interval = 0.2  # XH-HK4401 protocol 1 heartbeats
        # --- records
        self.commands: list[bytes] = []
        self.selects: list[int] = []
        self.queries = 0
        self.violations: list[str] = []
        self._buf = bytearray()
        self._last_command: float | None = None
        self._pending: asyncio.TimerHandle | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._writers: list[Callable[[bytes], None]] = []
        self.changed = asyncio.Event()

    # ----------------------------------------------------------------- behaviour
    def press_button(self, port: int) -> None:
        """The front panel: the port changes, nothing is said on the control port (except XH
        heartbeats, which name whatever is active)."""
        self.active = port

    def _switch(self, port: int) -> None:
        self.selects.append(port)
        if not 1 <= port <= self.ports:
            self.violations.append(f"select of port {port} on a {self.ports}-port switch")
            return
        if self._pending is not None:
            self._pending.cancel()
        if self.switch_delay:
            loop = asyncio.get_running_loop()
            self._pending = loop.call_later(self.switch_delay, self._switched, port)
        else:
            self._switched(port)

    def _switched(self, port: int) -> None:
        self._pending = None
        self.active = port

    def _reply(self, data: bytes) -> None:
        if self.silent:
            return
        out, self.garbage_before_reply = self.garbage_before_reply + data, b""
        for write in list(self._writers):
            write(out)

    def received(self, chunk: bytes) -> None:
        self._buf += chunk
        if self.silent:
            self._buf.clear()
            return
        parse = {
            "tesmart": self._tesmart,
            "extron": self._extron,
            "pway": self._pway,
            "xh1": self._xh,
            "xh2": self._xh,
        }.get(self.model, self._ezcoo)
        parse()
        self.changed.set()

    def _command(self, raw: bytes) -> None:
        now = time.monotonic()
        last = self._last_command
        if self.model == "tesmart" and last is not None and now - last < 0.95:
            self.violations.append(f"TESmart command {now - last:.2f} s apart")
        self._last_command = now
        self.commands.append(raw)

    # ----------------------------------------------------------------- models
    def _tesmart(self) -> None:
        buf = self._buf
        while len(buf) >= 6:
            if buf[:3] != b"\xaa\xbb\x03" or buf[5] != 0xEE:
                self.violations.append(f"bad TESmart frame {bytes(buf[:6]).hex(' ')}")
                del buf[:1]
                continue
            frame = bytes(buf[:6])
            del buf[:6]
            self._command(frame)
            cmd, val = frame[3], frame[4]
            if cmd == 0x01:
                self._switch(val)
            elif cmd == 0x10:
                self.queries += 1
                self._reply(bytes([0xAA, 0xBB, 0x03, 0x11, self.active - 1, 0xEE]))
            else:
                self.violations.append(f"unexpected TESmart command {cmd:02x}")

    def _ezcoo(self) -> None:
        verbs = (b"EZS", b"EZG") if self.model == "ezcoo-ezs" else (b"SET", b"GET")
        while b"\n" in self._buf:
            line, _, rest = bytes(self._buf).partition(b"\n")
            self._buf[:] = rest
            line = line.strip()
            self._command(line)
            m = re.fullmatch(rb"%s OUT1 VS IN([0-9]+)" % verbs[0], line)
            if m:
                self._switch(int(m[1]))
            elif line == b"%s OUT1 VS" % verbs[1]:
                self.queries += 1
                if self.model == "ezcoo-short":
                    self._reply(SHORT[self.active])
                else:
                    self._reply(b"OUT1 VS %d\r\n" % self.active)
            else:
                self.violations.append(f"unknown ezCoo command {line!r}")

    def _xh(self) -> None:
        pattern = rb"SW([1-4])\r\nAG0([1-4])gA" if self.model == "xh1" else rb"G0([1-4])gA\x00"
        while True:
            m = re.search(pattern, self._buf)
            if m is None:
                if len(self._buf) > 64:
                    self.violations.append(f"XH noise {bytes(self._buf)!r}")
                    self._buf.clear()
                return
            if m.start():
                self.violations.append(f"XH noise {bytes(self._buf[: m.start()])!r}")
            whole, port = bytes(m[0]), int(m[1])  # before the buffer under the match changes
            self._command(whole)
            if self.model == "xh1" and m[1] != m[2]:
                self.violations.append(f"XH select names two ports: {whole!r}")
            del self._buf[: m.end()]
            self._switch(port)

    def _extron(self) -> None:
        while m := re.search(rb"([0-9]+)!", self._buf):
            whole, port = bytes(m[0]), int(m[1])
            del self._buf[: m.end()]
            self._command(whole)
            self._switch(port)
            self._reply(b"Chn%d\r\n" % port)

    def _pway(self) -> None:
        while m := re.search(rb"PS ([0-9]+)\r", self._buf):
            whole, port = bytes(m[0]), int(m[1])
            del self._buf[: m.end()]
            self._command(whole)
            self._switch(port)
            self._reply(b"VGA_SWITCH_CONTROL=%d\r\n" % port)

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            self._reply(b"AG0%dgA" % self.active)

    def start_heartbeats(self) -> None:
        if self.model == "xh1" and self._heartbeat is None:
            self._heartbeat = asyncio.get_running_loop().create_task(self._heartbeats())

    def stop(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            self._heartbeat = None
        if self._pending is not None:
            self._pending.cancel()


class PtySwitch:
    """A :class:`SwitchSim` on the master side of a pty; the driver opens :attr:`path`."""

    def __init__(self, sim: SwitchSim) -> None:
        self.sim = sim
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self._slave)
        self.closed = False

    def start(self) -> PtySwitch:
        asyncio.get_running_loop().add_reader(self.master, self._readable)
        self.sim._writers.append(self._write)
        self.sim.start_heartbeats()
        return self

    def _write(self, data: bytes) -> None:
        with contextlib.suppress(OSError):
            os.write(self.master, data)

    def send_raw(self, data: bytes) -> None:
        self._write(data)

    def _readable(self) -> None:
        try:
            chunk = os.read(self.master, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return
        self.sim.received(chunk)

    def close(self) -> None:
        """Unplug: both ends go away; the driver's descriptor sees a hang-up."""
        if self.closed:
            return
        self.closed = True
        self.sim.stop()
        if self._write in self.sim._writers:
            self.sim._writers.remove(self._write)
        asyncio.get_running_loop().remove_reader(self.master)
        os.close(self.master)
        os.close(self._slave)


class TcpSwitch:
    """A :class:`SwitchSim` behind a loopback TCP server (TESmart's LAN port)."""

    def __init__(self, sim: SwitchSim, port: int = 0) -> None:
        self.sim = sim
        self.port = port
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.StreamWriter] = set()

    async def start(self) -> TcpSwitch:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        self.sim.start_heartbeats()
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._conns.add(writer)

        def write(data: bytes) -> None:
            if not writer.is_closing():
                writer.write(data)

        self.sim._writers.append(write)
        try:
            while chunk := await reader.read(4096):
                self.sim.received(chunk)
        except OSError:
            pass
        finally:
            self.sim._writers.remove(write)
            self._conns.discard(writer)
            writer.close()

    async def stop(self) -> None:
        """The switch goes away: no more connections, open ones reset."""
        if self._server is not None:
            self._server.close()
            for writer in list(self._conns):
                writer.close()
            await self._server.wait_closed()
            self._server = None
        self.sim.stop()
