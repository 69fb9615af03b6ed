"""Small helpers shared by the fault-matrix tests (``tests/test_fault_*.py``, docs/reliability.md).

Why a module: every row needs the same few tools — a raw TCP client that can vanish with a reset
instead of a close, a stopwatch whose figures end up in the matrix, and a bounded wait on the
appliance's own events (no sleeps where an event can be awaited).
"""

from __future__ import annotations

import base64
import os
import socket
import struct
import time
from collections.abc import Callable
from typing import Any

from tests.conftest import until

MEASURED: dict[str, float] = {}
"""Figures measured by the fault tests this run (row → seconds); printed with ``-s``."""


def record(row: str, seconds: float) -> float:
    """Remember and print one measured recovery time for the matrix."""
    MEASURED[row] = seconds
    print(f"\n[fault-matrix] {row}: {seconds * 1000:.0f} ms")
    return seconds


def note(row: str, value: float, unit: str) -> float:
    """Print a measured figure that is not a time (a rate, a byte count)."""
    print(f"\n[fault-matrix] {row}: {value:.0f} {unit}")
    return value


class Stopwatch:
    """Monotonic seconds since construction (or the last :meth:`reset`)."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def reset(self) -> None:
        self.t0 = time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.t0


async def events_until(
    appliance: Any, condition: Callable[[], bool], what: str, timeout: float = 5.0
) -> None:
    """Wait until *condition* holds, re-checked on every event the appliance publishes (state
    changes, job progress); fails the test after *timeout*."""
    await until(appliance.events.add, condition, what, timeout)


def raw_request(
    url: str, password: str, head: str, body: bytes = b"", *, rcvbuf: int | None = None
) -> socket.socket:
    """Open a plain TCP connection to the test server and send one HTTP/1.1 request (Basic auth)
    by hand, so the test can later make the client vanish without any close handshake."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect((host, int(port)))
    token = base64.b64encode(f"admin:{password}".encode()).decode()
    request = f"{head}\r\nHost: {host}:{port}\r\nAuthorization: Basic {token}\r\n"
    if body:
        request += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    sock.sendall(request.encode() + b"\r\n" + body)
    return sock


def raw_websocket(url: str, password: str, path: str) -> socket.socket:
    """A WebSocket opened by hand on a raw socket (upgrade done, 101 read)."""
    key = base64.b64encode(os.urandom(16)).decode()
    sock = raw_request(
        url,
        password,
        f"GET {path} HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13",
    )
    sock.settimeout(5)
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        assert chunk, "server closed during the upgrade"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def ws_text_frame(text: str) -> bytes:
    """One masked (client-to-server) WebSocket text frame."""
    payload = text.encode()
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    assert len(payload) < 126
    return bytes([0x81, 0x80 | len(payload)]) + mask + masked


def reset(sock: socket.socket) -> None:
    """Vanish: SO_LINGER 0 then close sends a TCP RST — no FIN, no WebSocket close frame."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
