"""The input/state WebSocket (``/api/ws``): the browser console's low-latency input channel.

Each connection is a HID client: what it holds is released when it goes away, however it goes
away (close, network loss, server shutdown, its credentials revoked: then it is closed with code
4401, see :mod:`.connections`). Bad messages get an ``error`` event; nothing a client sends
can take down the service or disturb other clients.

Each connection may send ``server.ws_rate`` messages a second (``server.ws_burst`` at once):
above that, the socket is simply read no faster. Why: with no limit, three sockets sending key
presses as fast as TCP takes them kept the event loop busy enough that ``/api/health`` took
0.55 s (median) and another client's key press 0.4 s to reach the target (tests/test_ws_flood.py
on a 2-core x86 box; a Pi is slower). Reading slower pushes back through TCP (aiohttp stops
reading the transport when its 64 KiB queue is full), so a flooder costs bounded memory and its
own messages are delayed, never dropped: a dropped key release would leave a key held.
A throttled client gets an ``error`` event with ``"limit": "ws_rate"`` (at most one per
:data:`RATE_NOTICE_INTERVAL` seconds). One that stays over the limit for :data:`FLOOD_CLOSE_AFTER`
seconds is closed with code 1008: by then its backlog (in aiohttp's queue and the kernel's socket
buffers, up to megabytes of messages) would take minutes to work through, and aiohttp's heartbeat
would cut it anyway (its pongs wait behind that backlog); closing releases what it holds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from appliance.api.connections import CLOSE_CODE, CLOSE_REASON, CONNECTIONS
from appliance.runtime import APPLIANCE, Appliance
from hid.keymap import UnknownKey
from hid.reports import ABS_MAX, BUTTONS

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

MAX_MESSAGE = 16 * 1024
SEND_QUEUE = 256
RATE_NOTICE_INTERVAL = 5.0
"""Seconds between two ``ws_rate`` error events to one client (a flood is one event, not many)."""
FLOOD_CLOSE_AFTER = 8.0
"""Seconds of being over ``ws_rate`` without a break before the socket is closed (code 1008):
below the 10 s heartbeat, far above any burst a console sends (a paste goes over REST)."""
FLOOD_CLOSE_CODE = 1008


@dataclass(slots=True)
class MessageRate:
    """A token bucket: *rate* messages a second on average, *burst* at once (0 rate: no limit).

    :meth:`take` never refuses: it says how long to wait before handling the message, so a
    client over the limit is slowed down, with every message kept and in order.
    """

    rate: float
    burst: int
    tokens: float = field(init=False)
    stamp: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self.tokens = float(self.burst)
        self.stamp = time.monotonic()

    def take(self, now: float) -> float:
        """Take one message's token; the seconds to wait before handling it (0.0: none)."""
        if self.rate <= 0:
            return 0.0
        self.tokens = min(float(self.burst), self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= 1.0
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


class BadMessage(ValueError):
    pass


class TooFast(Exception):
    """The client stayed over ``server.ws_rate`` for :data:`FLOOD_CLOSE_AFTER` seconds."""


def _num(msg: dict[str, Any], name: str, lo: float, hi: float) -> float:
    v = msg.get(name)
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise BadMessage(f"field {name!r} must be a number")
    if not lo <= v <= hi:
        raise BadMessage(f"field {name!r} must be between {lo:g} and {hi:g}")
    return v


def _int(msg: dict[str, Any], name: str, lo: int, hi: int, default: int | None = None) -> int:
    if default is not None and name not in msg:
        return default
    v = msg.get(name)
    if isinstance(v, bool) or not isinstance(v, int):
        raise BadMessage(f"field {name!r} must be an integer")
    if not lo <= v <= hi:
        raise BadMessage(f"field {name!r} must be between {lo} and {hi}")
    return v


def _bool(msg: dict[str, Any], name: str) -> bool:
    v = msg.get(name)
    if not isinstance(v, bool):
        raise BadMessage(f"field {name!r} must be true or false")
    return v


def handle_message(appliance: Appliance, client: str, msg: dict[str, Any]) -> dict[str, Any] | None:
    """Apply one client message; return a reply event or None. Raises BadMessage/UnknownKey."""
    hid = appliance.hid
    kind = msg.get("type")
    if kind == "key":
        code = msg.get("code")
        if not isinstance(code, str):
            raise BadMessage("field 'code' must be a string")
        hid.key(client, code, _bool(msg, "down"))
    elif kind == "mouse":
        x = _num(msg, "x", 0, 1)
        y = _num(msg, "y", 0, 1)
        hid.mouse_abs(round(x * ABS_MAX), round(y * ABS_MAX))
    elif kind == "mouse_rel":
        hid.mouse_rel(_int(msg, "dx", -10_000, 10_000, 0), _int(msg, "dy", -10_000, 10_000, 0))
    elif kind == "button":
        button = msg.get("button")
        if button not in BUTTONS:
            raise BadMessage(f"field 'button' must be one of {', '.join(BUTTONS)}")
        hid.mouse_button(client, button, _bool(msg, "down"))
    elif kind == "wheel":
        hid.mouse_wheel(_int(msg, "dy", -100, 100, 0), _int(msg, "dx", -100, 100, 0))
    elif kind == "release_all":
        hid.release_client(client)
    elif kind == "mouse_mode":
        mode = msg.get("mode")
        if mode not in ("absolute", "relative"):
            raise BadMessage("field 'mode' must be 'absolute' or 'relative'")
        hid.set_mouse_mode(mode)
    elif kind == "ping":
        return {"type": "pong", "t": msg.get("t")}
    else:
        raise BadMessage(f"unknown message type {kind!r}")
    return None


@routes.get("/api/ws")
async def websocket(request: web.Request) -> web.WebSocketResponse:
    appliance = request.app[APPLIANCE]
    # aiohttp's own limit closes the socket; ours answers with an error event instead.
    ws = web.WebSocketResponse(heartbeat=10.0, max_msg_size=1 << 20)
    await ws.prepare(request)
    client = appliance.new_client("ws")
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue(SEND_QUEUE)

    def enqueue(event: dict[str, Any]) -> None:
        if event.get("type") == "state" and outbox.full():
            return  # a slow client gets the newest state later, not a backlog of old ones
        try:
            outbox.put_nowait(event)
        except asyncio.QueueFull:
            pass

    async def sender() -> None:
        while True:
            event = await outbox.get()
            await ws.send_str(json.dumps(event))

    server = appliance.config.server
    limit = MessageRate(server.ws_rate, server.ws_burst)
    noticed = -RATE_NOTICE_INTERVAL
    throttled_since: float | None = None

    async def receive_input() -> None:
        nonlocal noticed, throttled_since
        async for message in ws:
            now = time.monotonic()
            delay = limit.take(now)
            if delay <= 0:
                throttled_since = None
            else:
                transport = request.transport
                if transport is None or transport.is_closing():
                    return  # gone: its backlog is not acted on seconds later
                if throttled_since is None:
                    throttled_since = now
                elif now - throttled_since >= FLOOD_CLOSE_AFTER:
                    raise TooFast
                if now - noticed >= RATE_NOTICE_INTERVAL:
                    noticed = now
                    enqueue(
                        {
                            "type": "error",
                            "message": f"more than {limit.rate:g} messages a second: "
                            "slowed down (server.ws_rate)",
                            "request": None,
                            "limit": "ws_rate",
                        }
                    )
                await asyncio.sleep(delay)
            if message.type is not WSMsgType.TEXT:
                if message.type is WSMsgType.BINARY:
                    enqueue({"type": "error", "message": "binary messages are not accepted"})
                continue
            if len(message.data) > MAX_MESSAGE:
                enqueue({"type": "error", "message": f"message larger than {MAX_MESSAGE} bytes"})
                continue
            msg: Any = None
            try:
                msg = json.loads(message.data)
                if not isinstance(msg, dict):
                    raise BadMessage("a message must be a JSON object")
                reply = handle_message(appliance, client, msg)
            except (BadMessage, UnknownKey, ValueError) as exc:
                request_type = msg.get("type") if isinstance(msg, dict) else None
                enqueue({"type": "error", "message": str(exc), "request": request_type})
                continue
            if reply is not None:
                enqueue(reply)

    appliance.clients += 1
    unsubscribe = appliance.events.add(enqueue)
    send_task = asyncio.create_task(sender(), name=f"{client}-send")
    try:
        with appliance.stream():
            # Revocation cancels receive_input() where it waits for the next message, so nothing
            # the client sends afterwards is acted on; then we close (ourselves: aiohttp drops the
            # TCP connection without waiting for the client's answer when close() interrupts a
            # receive() in another task, and the client would see 1006 instead of our code).
            connections = request.app[CONNECTIONS]
            try:
                revoked = await connections.run_until_revoked(request, client, receive_input())
            except TooFast:
                log.warning(
                    "closing %s: over server.ws_rate (%g messages/s) for %g s",
                    client,
                    limit.rate,
                    FLOOD_CLOSE_AFTER,
                )
                appliance.hid.release_client(client)
                send_task.cancel()
                await ws.close(code=FLOOD_CLOSE_CODE, message=b"message rate limit (ws_rate)")
                revoked = False
            if revoked:
                appliance.hid.release_client(client)  # now, not after the closing handshake
                send_task.cancel()
                await ws.close(code=CLOSE_CODE, message=CLOSE_REASON.encode())
    finally:
        appliance.hid.release_client(client)
        unsubscribe()
        appliance.clients -= 1
        appliance.events.state_changed()
        send_task.cancel()
    return ws
