"""QemuGuest: one QEMU guest reached through its QMP socket, launched and supervised or attached.

Why one object per guest owning the QMP connection: power, media, input and the display all
talk to the same QEMU, and QMP answers in order on one socket, so one client shared by all
facets keeps a key press behind the reset that preceded it. The client is QEMU's own
``qemu.qmp`` (asyncio): imported here, only when a QEMU target is built (9-19 ms and +0.25 MB
RSS after asyncio, measured on the development machine).

Supervision: a launched guest's QEMU is a child process. When it dies unasked (a crash, a
``quit`` typed by someone else) the guest shows ``failed`` with the last lines QEMU printed
and, with ``restart = "on-crash"``, is relaunched after a back-off (1 s doubling to 30 s). An
attached guest that goes away shows ``unreachable`` and is reconnected every second. Either way
the facets answer at once from :attr:`status` (never hang on a dead socket): every QMP command
has a time-out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from qemu.qmp import ConnectError, ExecuteError, QMPClient, QMPError

log = logging.getLogger(__name__)
# qemu.qmp logs every refused connection at ERROR and every hang-up at INFO; a guest reports
# both as its status (with the reason), so the library's own lines would only repeat them.
logging.getLogger("qemu.qmp").setLevel(logging.CRITICAL)

GuestStatus = Literal["off", "starting", "running", "paused", "shutdown", "unreachable", "failed"]
"""off: no QEMU process (launched guests); starting: launched, QMP not yet up; running/paused/
shutdown: QEMU's run state (``shutdown``: the guest powered itself off, QEMU kept with
``-no-shutdown``); unreachable: an attached guest's socket does not answer; failed: QEMU died
unasked (see :attr:`QemuGuest.message`)."""

STATE_EVENTS = frozenset({"STOP", "RESUME", "SHUTDOWN", "RESET", "SUSPEND", "WAKEUP"})
CONNECT_WINDOW = 10.0  # seconds a freshly launched QEMU may take to open its QMP socket
BACKOFF_MAX = 30.0


class GuestOffline(Exception):
    """The guest's QMP socket is not connected (off, starting, gone): nothing was sent."""


class QmpCommandError(Exception):
    """QEMU refused a command; the message is QEMU's own explanation."""


class QemuGuest:
    """One guest. *argv* launches it (the QEMU command line without ``-qmp``); None attaches to
    the QEMU already serving *qmp_path*. Use from one event loop."""

    def __init__(
        self,
        name: str,
        qmp_path: Path,
        argv: Sequence[str] | None = None,
        *,
        restart: bool = True,
        timeout: float = 5.0,
    ) -> None:
        self.name = name
        self.qmp_path = qmp_path
        self.argv = list(argv) if argv is not None else None
        self.restart = restart
        self.timeout = timeout
        self.status: GuestStatus = "starting" if argv is not None else "unreachable"
        self.message = ""
        self.leds = 0  # HID LED bits, as the display (VNC LED pseudo-encoding) reports them
        self.launches = 0  # how many QEMU processes were started (tests, statistics)
        self._client: QMPClient | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._want_off = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._fd_lock = asyncio.Lock()
        self._stderr: bytes = b""
        self._listeners: list[Callable[[], None]] = []
        self._led_listeners: list[Callable[[int], None]] = []

    # ------------------------------------------------------------------ state
    @property
    def launched(self) -> bool:
        return self.argv is not None

    @property
    def connected(self) -> bool:
        return self._client is not None

    @property
    def life(self) -> tuple[str, int]:
        """Names this QEMU process: what a guest held (a medium, pressed keys) dies with it."""
        return (self.name, self.launches)

    def on_change(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call *callback()* whenever :attr:`status` or :attr:`message` changes."""
        return _subscribe(self._listeners, callback)

    def on_leds(self, callback: Callable[[int], None]) -> Callable[[], None]:
        return _subscribe(self._led_listeners, callback)

    def set_leds(self, leds: int) -> None:
        if leds != self.leds:
            self.leds = leds
            for callback in list(self._led_listeners):
                callback(leds)

    def _set(self, status: GuestStatus, message: str = "") -> None:
        if (status, message) == (self.status, self.message):
            return
        log.info("guest %s: %s %s", self.name, status, message)
        self.status, self.message = status, message
        for callback in list(self._listeners):
            try:
                callback()
            except Exception:
                log.exception("guest listener failed")

    # ------------------------------------------------------------------ commands
    async def execute(self, command: str, arguments: dict[str, Any] | None = None) -> Any:
        """Run one QMP command with the time-out; GuestOffline when there is no connection,
        QmpCommandError when QEMU refuses it."""
        client = self._client
        if client is None:
            raise GuestOffline(self._offline_reason())
        try:
            async with asyncio.timeout(self.timeout):
                return await client.execute(command, arguments)
        except ExecuteError as exc:
            raise QmpCommandError(f"{command}: {exc.error.error.desc}") from None
        except TimeoutError:
            raise GuestOffline(f"QEMU did not answer {command} within {self.timeout:g} s") from None
        except (QMPError, OSError, EOFError) as exc:
            raise GuestOffline(f"QMP connection to {self.name} failed: {exc}") from None

    async def pass_socket(self, sock: socket.socket, fdname: str) -> None:
        """Hand *sock*'s descriptor to QEMU as *fdname* (SCM_RIGHTS, then ``getfd``); one at a
        time, so two hand-overs cannot swap their descriptors."""
        async with self._fd_lock:
            client = self._client
            if client is None:
                raise GuestOffline(self._offline_reason())
            client.send_fd_scm(sock.fileno())
            await self.execute("getfd", {"fdname": fdname})

    def _offline_reason(self) -> str:
        return self.message or f"guest {self.name} is {self.status}"

    # ------------------------------------------------------------------ power of the process
    async def launch(self) -> None:
        """Start QEMU again after :meth:`quit` (launched guests only)."""
        if not self.launched:
            raise QmpCommandError(f"guest {self.name} is attached, not launched: cannot start it")
        self._want_off = False
        self._wake.set()

    async def quit(self) -> None:
        """End the QEMU process (a power cut); it stays off until :meth:`launch`."""
        self._want_off = True
        proc = self._proc
        if proc is None:
            return
        with contextlib.suppress(GuestOffline, QmpCommandError):
            await self.execute("quit")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.timeout):
                await proc.wait()
                return
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._supervise(), name=f"qemu-{self.name}")

    async def close(self) -> None:
        if self.launched:
            await self.quit()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._drop_client()

    async def _supervise(self) -> None:
        backoff = 1.0
        while True:
            if not self.launched:
                await self._attached_session()
                await asyncio.sleep(1.0)
                continue
            if self._want_off:
                if self.status != "failed":  # a failure keeps its message until power-on
                    self._set("off", "QEMU is not running (power is off)")
                self._wake.clear()
                await self._wake.wait()
                continue
            ok = await self._launched_session()
            if self._want_off:
                backoff = 1.0
                continue
            tail = self._stderr.decode(errors="replace").strip().splitlines()[-3:]
            why = " | ".join(tail) or "no message"
            if not self.restart:
                self._want_off = True
                self._set("failed", f"QEMU exited unasked ({why}); restart is off")
                continue
            backoff = 1.0 if ok else min(backoff * 2, BACKOFF_MAX)
            self._set("failed", f"QEMU exited unasked ({why}); relaunching in {backoff:g} s")
            await asyncio.sleep(backoff)

    async def _launched_session(self) -> bool:
        """Run QEMU until it exits; True when its QMP socket came up."""
        assert self.argv is not None
        with contextlib.suppress(FileNotFoundError):
            self.qmp_path.unlink()
        self._set("starting", "QEMU is starting")
        self._stderr = b""
        argv = [*self.argv, "-qmp", f"unix:{_escape(self.qmp_path)},server=on,wait=off"]
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                preexec_fn=_die_with_parent,
            )
        except OSError as exc:
            self._stderr = f"cannot run {argv[0]}: {exc.strerror}".encode()
            return False
        self._proc = proc
        self.launches += 1
        reader = asyncio.create_task(self._read_stderr(proc))
        came_up = False
        try:
            exited = asyncio.create_task(proc.wait())
            deadline = asyncio.get_running_loop().time() + CONNECT_WINDOW
            while not exited.done() and self._client is None:
                if not await self._connect() and asyncio.get_running_loop().time() > deadline:
                    self._stderr += b"\nQMP socket did not come up"
                    proc.kill()
                    break
                if self._client is None:
                    await asyncio.wait({exited}, timeout=0.1)
            if self._client is not None:
                came_up = True
                session = asyncio.create_task(self._session(self._client))
                await asyncio.wait({exited, session}, return_when=asyncio.FIRST_COMPLETED)
                if not exited.done():  # QMP dropped but QEMU runs on: a hung QEMU is killed
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self.timeout):
                            await asyncio.shield(exited)
                    if not exited.done():
                        proc.kill()
                session.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await session
            await exited
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
            await reader
            self._proc = None
            await self._drop_client()
        return came_up

    async def _read_stderr(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        while chunk := await proc.stderr.read(4096):
            self._stderr = (self._stderr + chunk)[-2048:]

    async def _attached_session(self) -> None:
        if await self._connect():
            assert self._client is not None
            await self._session(self._client)
            await self._drop_client()
        self._set("unreachable", f"no QEMU answers on {self.qmp_path}")

    async def _connect(self) -> bool:
        if not self.qmp_path.exists():
            return False
        client = QMPClient(self.name)
        try:
            async with asyncio.timeout(self.timeout):
                await client.connect(str(self.qmp_path))
        except (ConnectError, TimeoutError, OSError, QMPError):
            with contextlib.suppress(Exception):
                await client.disconnect()
            return False
        self._client = client
        return True

    async def _session(self, client: QMPClient) -> None:
        """Follow QEMU's run state until the connection drops."""
        await self.refresh()
        events = asyncio.create_task(self._events(client))
        try:
            while client.runstate.name == "RUNNING":
                await client.runstate_changed()
        finally:
            events.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await events

    async def _events(self, client: QMPClient) -> None:
        async for event in client.events:
            if event["event"] in STATE_EVENTS:
                with contextlib.suppress(GuestOffline, QmpCommandError):
                    await self._refresh()

    async def _refresh(self) -> None:
        reply = await self.execute("query-status")
        state = str(reply.get("status", ""))
        if state == "running":
            self._set("running")
        elif state == "shutdown":
            self._set("shutdown", "the guest powered itself off")
        else:
            self._set("paused", f"the guest's CPUs are stopped ({state})")

    async def refresh(self) -> None:
        """Ask QEMU for its run state now (after a command that changes it)."""
        with contextlib.suppress(GuestOffline, QmpCommandError):
            await self._refresh()

    async def _drop_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.disconnect()


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the appliance dies, however it dies (a SIGKILL,
    an OOM kill), so a restarted appliance never finds its old guests still running."""
    import ctypes
    import signal

    PR_SET_PDEATHSIG = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _escape(path: Path) -> str:
    """A path inside a QEMU option value: commas are doubled."""
    return os.fspath(path).replace(",", ",,")


def _subscribe(callbacks: list[Any], callback: Any) -> Callable[[], None]:
    callbacks.append(callback)

    def unsubscribe() -> None:
        if callback in callbacks:
            callbacks.remove(callback)

    return unsubscribe
