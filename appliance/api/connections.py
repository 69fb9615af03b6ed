"""Long-lived connections and the credential each was opened with, so revoking it closes them.

Why: authentication happens once, on the HTTP request that opens a connection. The input
WebSocket, an MJPEG response, the H.264 WebSocket and a WebRTC peer then live for hours; without
this module a revoked token, a logout or a new password would stop new requests while the
connections already open kept pressing keys and showing the screen.

How: each such connection registers the :class:`~appliance.auth.Credential` of its request and a
``revoke`` callback (close the socket with :data:`CLOSE_CODE`, end the response, close the peer;
release the keys it holds). The registry re-checks the credentials of the open connections

- at once when this process revoked something (``AuthStore.add_listener``: a logout, or a token
  revocation or password change made through this process's store), and
- every :data:`RECHECK_SECONDS` while any connection is open, which finds what the CLI changed in
  another process (``ipkvm token revoke``, ``ipkvm passwd``) and sessions that expired.

A re-check is one ``stat`` of a small file per distinct credential (the file is re-read only when
it changed), i.e. microseconds; nothing runs while no connection is open, and requests never pay
for it. One registry per application (``create_app`` builds it, handlers find it under
:data:`CONNECTIONS`); no module-level state.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web

from appliance.api.auth import get_auth
from appliance.auth import AuthStore, Credential

log = logging.getLogger(__name__)

CLOSE_CODE: Final = 4401
"""WebSocket close code for "your credentials were revoked or expired" (4000-4999: private use;
4401 mirrors HTTP 401). A client should log in again rather than reconnect with the same ones."""
CLOSE_REASON: Final = "credentials revoked"
RECHECK_SECONDS: Final = 1.0
"""Longest time a connection outlives a credential changed by another process or expired."""

Revoke = Callable[[], object]
"""Ends one connection; may return an awaitable (closing a WebRTC peer), which the registry runs."""


@dataclass(eq=False, slots=True)
class Connection:
    """One open connection as the registry sees it (``revoked`` is set before ``revoke`` runs)."""

    what: str  # for the log: "ws:3", "mjpeg", "rtc:2"...
    credential: Credential | None
    revoke: Revoke
    revoked: bool = False


def credential_of(request: web.Request) -> Credential | None:
    """The credential the auth middleware recorded for ``request`` (None on a public route)."""
    auth = get_auth(request)
    return auth.credential if auth is not None else None


class ConnectionRegistry:
    """The open connections of one application, closed when their credential dies."""

    def __init__(self, store: AuthStore, *, recheck: float = RECHECK_SECONDS) -> None:
        self.store = store
        self.recheck = recheck
        self._open: set[Connection] = set()
        self._closing: set[asyncio.Future[Any]] = set()
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._unlisten: Callable[[], None] | None = None

    def __len__(self) -> int:
        return len(self._open)

    # ------------------------------------------------------------------ registration

    def register(self, credential: Credential | None, what: str, revoke: Revoke) -> Connection:
        """Track a connection until :meth:`unregister`; revoked at once if already invalid.

        The credential is checked here again because it may have been revoked between the
        request's authentication and now (the WebSocket handshake awaits). Without a credential
        (a public route) there is nothing that could be revoked, and the connection is not kept.
        """
        conn = Connection(what, credential, revoke)
        if credential is None:
            return conn
        self._open.add(conn)
        if not self._valid(credential):
            self._revoke(conn)
        else:
            self._wake.set()  # the watcher switches to periodic re-checks if it was idle
        return conn

    def unregister(self, conn: Connection) -> None:
        self._open.discard(conn)

    @contextlib.contextmanager
    def track(self, request: web.Request, what: str, revoke: Revoke) -> Iterator[Connection]:
        """:meth:`register` the connection of ``request`` for the duration of the block."""
        conn = self.register(credential_of(request), what, revoke)
        try:
            yield conn
        finally:
            self.unregister(conn)

    async def run_until_revoked(
        self, request: web.Request, what: str, work: Coroutine[Any, Any, None]
    ) -> bool:
        """Run ``work`` (a streaming or receiving loop) until it ends or the credential dies;
        True if it died.

        Revocation cancels ``work`` only, wherever it waits: the handler carries on and ends its
        response properly (finishes the MJPEG body, does the WebSocket closing handshake with
        :data:`CLOSE_CODE`). Cancellation of the handler itself (shutdown) still propagates.
        """
        task = asyncio.ensure_future(work)
        with self.track(request, what, task.cancel) as conn:
            try:
                await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if not conn.revoked or (current is not None and current.cancelling()):
                    raise
            finally:
                # A viewer that goes away ends ``work`` with an exception, which the task keeps
                # and whose traceback holds this frame, which held the task: a reference cycle
                # that kept the stream's last frame (2.7 MB at 720p) and JPEG alive until the
                # cyclic GC ran, often only in a rare full collection. Dropping the reference
                # lets plain reference counting free them at once (docs/reliability.md).
                del task
        return conn.revoked

    # ------------------------------------------------------------------ checking

    def _valid(self, credential: Credential) -> bool:
        try:
            return self.store.credential_valid(credential)
        except OSError as exc:
            # e.g. tokens.json became unreadable: requests fail then too, so fail closed.
            log.error("cannot re-check %s credentials (%s): closing", credential.kind, exc)
            return False

    def check(self) -> int:
        """Revoke every open connection whose credential is no longer valid; returns how many."""
        verdicts: dict[Credential, bool] = {}
        dead: list[Connection] = []
        for conn in list(self._open):
            credential = conn.credential
            assert credential is not None  # only those are kept
            if credential not in verdicts:
                verdicts[credential] = self._valid(credential)
            if not verdicts[credential]:
                dead.append(conn)
        for conn in dead:
            self._revoke(conn)
        return len(dead)

    def _revoke(self, conn: Connection) -> None:
        if conn.revoked:
            return
        conn.revoked = True
        self._open.discard(conn)
        kind = conn.credential.kind if conn.credential is not None else "?"
        log.info("closing %s: its %s credential was revoked or expired", conn.what, kind)
        try:
            result = conn.revoke()
        except Exception:
            log.exception("closing %s failed", conn.what)
            return
        if inspect.isawaitable(result):
            closing = asyncio.ensure_future(result)
            self._closing.add(closing)
            closing.add_done_callback(self._closed)

    def _closed(self, closing: asyncio.Future[Any]) -> None:
        self._closing.discard(closing)
        if not closing.cancelled() and closing.exception() is not None:
            log.warning("closing a revoked connection failed: %r", closing.exception())

    # ------------------------------------------------------------------ watcher

    def _poke(self) -> None:
        """AuthStore listener (any thread): re-check now."""
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nothing left to close
                loop.call_soon_threadsafe(self._wake.set)

    async def _watch(self) -> None:
        while True:
            if self._open:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.recheck):
                        await self._wake.wait()
            else:
                await self._wake.wait()  # idle: no timer at all
            self._wake.clear()
            try:
                self.check()
            except Exception:
                log.exception("re-checking the credentials of open connections failed")

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._unlisten = self.store.add_listener(self._poke)
        self._watcher = asyncio.create_task(self._watch(), name="ipkvm-credential-watch")

    async def stop(self) -> None:
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        tasks = [t for t in (self._watcher, *self._closing) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._watcher = None


CONNECTIONS: web.AppKey[ConnectionRegistry] = web.AppKey("connections", ConnectionRegistry)


def setup(
    app: web.Application, store: AuthStore, *, recheck: float = RECHECK_SECONDS
) -> ConnectionRegistry:
    """Create the application's registry; its watcher runs from startup to cleanup."""
    registry = ConnectionRegistry(store, recheck=recheck)
    app[CONNECTIONS] = registry

    async def start(app: web.Application) -> None:
        await registry.start()

    async def stop(app: web.Application) -> None:
        await registry.stop()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    return registry
