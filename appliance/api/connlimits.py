"""Connection limits for the web server: a header time-out, an idle time-out and a connection cap.

Why: aiohttp closes idle keep-alive connections (``keepalive_timeout``) but has no time-out for a
client that connects and then sends its request headers slowly or never (slowloris), and no cap
on open connections. Every open socket is a file descriptor; with ``LimitNOFILE`` reached,
``accept()`` fails with EMFILE, asyncio retries and logs a traceback per attempt (thousands a
second), and the appliance stops answering anyone, including ``/api/health`` and the admin.

What this module adds, without touching aiohttp's request handling:

* :class:`GuardedHandler`: aiohttp's :class:`~aiohttp.web_protocol.RequestHandler` with a timer
  armed when the connection is made and disarmed when the first request's headers have been
  parsed. A connection that has not sent complete headers within ``header_timeout`` is closed.
  Later requests on a kept-alive connection are bounded by aiohttp's own keep-alive timer, which
  only fires while no request is being handled (so WebSockets and streams are never cut).
* :class:`ConnectionGuard`: counts connections from ``accept()`` to ``connection_lost``. At the
  cap, a new connection first evicts the oldest one that has not yet sent a request (an idle or
  slow client, not a user) and otherwise gets a bare 503 and is closed. Connections that are
  serving requests, WebSockets or streams are never touched, so a logged-in admin keeps working
  and ``/api/health`` answers again as soon as any slot is free.
* :class:`GuardedSite`: like :class:`aiohttp.web.TCPSite`, but it serves through the guard and
  gives asyncio a TLS handshake time-out equal to the header time-out.
* :class:`AcceptErrorLog`: an event-loop exception handler that turns asyncio's "socket.accept()
  out of system resource" tracebacks into one warning line per interval.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from ssl import SSLContext
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger(__name__)

BASE_FDS = 48
"""File descriptors kept for the process itself: stdio, the event loop's epoll and self-pipe, the
listening sockets, the capture device, three hidg endpoints or a serial port, the journal, the
state files and the executor's threads (a demo process uses about 20)."""
FDS_PER_PEER = 4
"""A WebRTC peer's UDP sockets: one per local address for ICE host candidates, plus STUN/TURN."""
AUTO_MAX = 512
"""Upper bound of the derived cap: enough for any KVM's users, little memory (~10 KiB each)."""
MIN_CONNECTIONS = 8
REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
    b"Connection: close\r\nContent-Length: 28\r\n\r\ntoo many connections, retry\n"
)


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """The server's limits (``[server]`` keys of the same names)."""

    header_timeout: float = 10.0
    keepalive_timeout: float = 30.0
    max_connections: int = 0
    """0: :func:`derive_max_connections` from RLIMIT_NOFILE."""


def derive_max_connections(fd_limit: int, max_peers: int = 16) -> int:
    """The connection cap that keeps the process below *fd_limit* descriptors.

    Halved because a connection serving a static file holds the file open too; what the process
    and the WebRTC peers need comes off first.
    """
    spare = fd_limit - BASE_FDS - FDS_PER_PEER * max_peers
    return max(MIN_CONNECTIONS, min(AUTO_MAX, spare // 2))


def resolve_max_connections(limits: ConnectionLimits, max_peers: int = 16) -> int:
    """The cap to enforce: the configured one, lowered if the fd limit could not bear it."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    derived = derive_max_connections(soft, max_peers) if soft != resource.RLIM_INFINITY else 0
    if limits.max_connections == 0:
        return derived or AUTO_MAX
    if derived and limits.max_connections > derived:
        log.warning(
            "server.max_connections = %d does not fit RLIMIT_NOFILE %d; using %d "
            "(raise LimitNOFILE to allow more)",
            limits.max_connections,
            soft,
            derived,
        )
        return derived
    return limits.max_connections


class ConnectionGuard:
    """Counts the server's connections, admits, evicts or refuses them (see the module doc)."""

    def __init__(self, max_connections: int, header_timeout: float) -> None:
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self.open = 0
        """Connections holding a slot: accepted and not yet lost."""
        self.refused = 0
        self.evicted = 0
        self._waiting: OrderedDict[GuardedHandler, None] = OrderedDict()
        """Accepted, no request headers yet: oldest first, the ones evicted at the cap."""

    def admit(self) -> bool:
        """Called on accept: take a slot, evicting a request-less connection if need be."""
        if self.open >= self.max_connections and self._waiting:
            oldest, _ = self._waiting.popitem(last=False)
            self.evicted += 1
            oldest.slot_released = True
            self.open -= 1
            oldest.force_close()  # or, not yet connected, its connection_made closes it
        if self.open >= self.max_connections:
            self.refused += 1
            return False
        self.open += 1
        return True

    def release(self, handler: GuardedHandler) -> None:
        self._waiting.pop(handler, None)
        if not handler.slot_released:
            handler.slot_released = True
            self.open -= 1

    def waiting(self, handler: GuardedHandler) -> None:
        self._waiting[handler] = None

    def requested(self, handler: GuardedHandler) -> None:
        self._waiting.pop(handler, None)


class GuardedHandler(RequestHandler):
    """aiohttp's request handler with a header time-out and a slot in a :class:`ConnectionGuard`."""

    __slots__ = ("_guard", "_header_timer", "_tls_deadline", "slot_released")

    def __init__(self, manager: web.Server, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = guard
        self._header_timer: asyncio.TimerHandle | None = None
        self._tls_deadline: asyncio.TimerHandle | None = None
        self.slot_released = False

    def expect_tls_handshake(self, loop: asyncio.AbstractEventLoop) -> None:
        """Give the slot back if the TLS handshake never completes.

        asyncio does not tell the application protocol about a failed or timed-out handshake (no
        connection_made, so no connection_lost); it aborts it after ``ssl_handshake_timeout``.
        """
        self._tls_deadline = loop.call_later(
            self._guard.header_timeout + 1.0, self._guard.release, self
        )

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._tls_deadline is not None:
            self._tls_deadline.cancel()
            self._tls_deadline = None
        super().connection_made(transport)
        if self.slot_released:  # evicted between accept() and now (a burst of connections)
            self.force_close()
            return
        loop = asyncio.get_running_loop()
        self._header_timer = loop.call_later(self._guard.header_timeout, self._headers_late)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # aiohttp counts a request once its line and headers are parsed (or found malformed,
        # which it answers with a 400): from then on, aiohttp's own timers apply.
        if self._header_timer is not None and self._request_count:
            self._header_timer.cancel()
            self._header_timer = None
            self._guard.requested(self)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        self._guard.release(self)
        super().connection_lost(exc)

    def _headers_late(self) -> None:
        self._header_timer = None
        log.debug(
            "closing %s: no request headers within %g s", self.peername, self._guard.header_timeout
        )
        self.force_close()


class _Refused(asyncio.Protocol):
    """A connection over the cap gets a 503 (curl, browsers, health checks read it), closed."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(REFUSAL)
        transport.close()


class GuardedSite(web.BaseSite):
    """:class:`aiohttp.web.TCPSite` with the limits of :class:`ConnectionLimits`.

    The runner must have been made with ``keepalive_timeout=limits.keepalive_timeout``
    (:func:`runner_kwargs`): aiohttp's handler takes it from there.
    """

    __slots__ = ("_host", "_limits", "_port", "_refusals", "guard")

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        limits: ConnectionLimits,
        max_connections: int,
        *,
        ssl_context: SSLContext | None = None,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context)
        self._host = host
        self._port = port
        self._limits = limits
        self.guard = ConnectionGuard(max_connections, limits.header_timeout)
        self._refusals = RateLimitedLog(log, 10.0)

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{self._host}:{self._port}"

    @property
    def port(self) -> int:
        """The bound port (the one asked for until started; useful with port 0)."""
        if self._server is not None and self._server.sockets:  # type: ignore[attr-defined]
            return int(self._server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]
        return self._port

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._factory(server, loop),
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            ssl_handshake_timeout=self._limits.header_timeout if self._ssl_context else None,
        )

    def _factory(
        self, server: web.Server, loop: asyncio.AbstractEventLoop
    ) -> Callable[[], asyncio.BaseProtocol]:
        guard = self.guard
        # The handler arguments aiohttp's Server would use (keep-alive, access log, limits...):
        # Server.__call__ builds a plain RequestHandler from the same dict.
        kwargs: dict[str, Any] = dict(server._kwargs)
        tls = self._ssl_context is not None

        def factory() -> asyncio.BaseProtocol:
            if not guard.admit():
                self._refusals.warning(
                    "connection refused: %d connections open (server.max_connections)",
                    guard.max_connections,
                )
                return _Refused()
            handler = GuardedHandler(server, guard, loop=loop, **kwargs)
            guard.waiting(
                handler
            )  # evictable from accept() on: bursts arrive before connection_made
            if tls:
                handler.expect_tls_handshake(loop)
            return handler

        return factory


def runner_kwargs(limits: ConnectionLimits) -> dict[str, Any]:
    """Handler arguments for :class:`aiohttp.web.AppRunner` that implement *limits*."""
    return {"keepalive_timeout": limits.keepalive_timeout}


class RateLimitedLog:
    """One log line per *interval* seconds at most; the next says how many were left out."""

    def __init__(self, logger: logging.Logger, interval: float) -> None:
        self.logger = logger
        self.interval = interval
        self._last = -float("inf")
        self.suppressed = 0

    def warning(self, msg: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last < self.interval:
            self.suppressed += 1
            return
        self._last = now
        if self.suppressed:
            msg += f" ({self.suppressed} more like it since the last report)"
            self.suppressed = 0
        self.logger.warning(msg, *args)


class AcceptErrorLog:
    """Event-loop exception handler: asyncio's accept() resource errors as one line per interval.

    asyncio logs "socket.accept() out of system resource" with a traceback for every failed
    accept, and on Linux schedules a retry per failure (the listening socket stays readable), so
    at the fd limit the log grows by thousands of tracebacks a second, which costs CPU and
    journal space when they are least affordable. Everything else goes to the default handler.
    """

    MESSAGE = "socket.accept() out of system resource"

    def __init__(self, interval: float = 10.0) -> None:
        self._log = RateLimitedLog(log, interval)

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") == self.MESSAGE:
            self._log.warning(
                "accept() failed: %s (file descriptors exhausted?)", context.get("exception")
            )
            return
        loop.default_exception_handler(context)
