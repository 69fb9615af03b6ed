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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from appliance import fields
from appliance.api.auth import AUTH_STORE, get_auth
from appliance.api.connections import CLOSE_CODE, CLOSE_REASON, CONNECTIONS
from appliance.api.control import CONTROL
from appliance.api.openapi import Operation, describe, ok
from appliance.api.outbox import Outbox
from appliance.api.rights import connection_check, effective_role
from appliance.jsondecode import JsonError, decode_json
from appliance.roles import Permission
from appliance.runtime import APPLIANCE, Appliance
from hid.keymap import UnknownKey
from hid.reports import ABS_MAX, BUTTONS

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

MAX_MESSAGE = 16 * 1024
SEND_QUEUE = 256  # events waiting for a slow client; see appliance.api.outbox for what then
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


BadMessage = fields.FieldError
"""A message refused as a whole or for one of its fields: answered with an ``error`` event."""


class TooFast(Exception):
    """The client stayed over ``server.ws_rate`` for :data:`FLOOD_CLOSE_AFTER` seconds."""


def decode_message(data: str | bytes) -> dict[str, Any]:
    """One message from a client as a JSON object, or :class:`BadMessage` saying why not.

    Shared by the WebSocket and the WebRTC data channel. Binary frames are refused; JSON nested
    too deeply (``[[[[...``: 16 KB of brackets would otherwise overflow the decoder's recursion)
    is a bad message like any other, never a crash (:mod:`appliance.jsondecode`).
    """
    if isinstance(data, bytes):
        raise BadMessage("binary messages are not accepted")
    try:
        msg = decode_json(data)
    except JsonError as exc:
        raise BadMessage(str(exc)) from None
    if not isinstance(msg, dict):
        raise BadMessage("a message must be a JSON object")
    return msg


INPUT_MESSAGES = frozenset({"key", "mouse", "mouse_rel", "button", "wheel", "mouse_mode"})
"""Messages that need the ``input`` right (``release_all`` and ``ping`` need none: letting go of
keys is always allowed)."""

Check = Callable[[Permission], str | None]
"""Why the connection may not use a right now (None: it may): ``appliance.api.rights.denial``
for the connection's credential, asked per message because roles and control change."""


class Forbidden(Exception):
    def __init__(self, reason: str, permission: Permission) -> None:
        super().__init__(reason)
        self.permission = permission


def handle_message(
    appliance: Appliance, client: str, msg: dict[str, Any], check: Check | None = None
) -> dict[str, Any] | None:
    """Apply one client message; return a reply event or None. Raises BadMessage/UnknownKey,
    or Forbidden when ``check`` refuses the right the message needs."""
    hid = appliance.hid
    kind = msg.get("type")
    if check is not None and kind in INPUT_MESSAGES:
        reason = check("input")
        if reason is not None:
            raise Forbidden(reason, "input")
    if kind == "key":
        code = msg.get("code")
        if not isinstance(code, str):
            raise BadMessage("field 'code' must be a string")
        hid.key(client, code, fields.boolean(msg, "down"))
    elif kind == "mouse":
        x = fields.number(msg, "x", 0, 1)
        y = fields.number(msg, "y", 0, 1)
        hid.mouse_abs(round(x * ABS_MAX), round(y * ABS_MAX))
    elif kind == "mouse_rel":
        hid.mouse_rel(
            fields.integer(msg, "dx", -10_000, 10_000, 0),
            fields.integer(msg, "dy", -10_000, 10_000, 0),
        )
    elif kind == "button":
        button = msg.get("button")
        if button not in BUTTONS:
            raise BadMessage(f"field 'button' must be one of {', '.join(BUTTONS)}")
        hid.mouse_button(client, button, fields.boolean(msg, "down"))
    elif kind == "wheel":
        hid.mouse_wheel(
            fields.integer(msg, "dy", -100, 100, 0), fields.integer(msg, "dx", -100, 100, 0)
        )
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


def handle_text(
    appliance: Appliance, client: str, text: str, check: Check | None = None
) -> dict[str, Any] | None:
    """Decode and apply one text message (``/api/ws`` and the WebRTC data channels alike).

    Returns the reply event, an ``error`` event for any bad message (malformed, too deeply
    nested, not an object, unknown type or key), or None.
    """
    msg: Any = None
    try:
        msg = decode_message(text)
        return handle_message(appliance, client, msg, check)
    except Forbidden as exc:
        return {
            "type": "error",
            "message": f"refused: {exc}",
            "request": msg.get("type"),
            "forbidden": True,
            "permission": exc.permission,
        }
    except (BadMessage, UnknownKey, ValueError) as exc:  # JsonError is a ValueError
        request_type = msg.get("type") if isinstance(msg, dict) else None
        return {"type": "error", "message": str(exc), "request": request_type}


@routes.get("/api/ws")
@describe(
    Operation(
        permission="view",
        summary="WebSocket: input and state events (JSON text messages)",
        description="Client messages: key, mouse, mouse_rel, button, wheel, release_all, "
        "mouse_mode, ping (at most 16 KiB each); input messages need the `input` right "
        "(refused with an error event `forbidden: true`). Server events: hello, state, "
        "presence, pong, error, type_progress, script_progress, job, dropped. "
        "Formats: docs/api.md#websocket-get-apiws. "
        "Closed with code 4401 when the credentials that opened it are revoked.",
        tag="websocket",
        replies={101: ok("switching to the WebSocket protocol")},
        errors={400: "not a WebSocket upgrade request"},
        extensions={
            "x-websocket": True,
            "x-websocket-max-message": MAX_MESSAGE,
            "x-websocket-close-codes": {str(CLOSE_CODE): CLOSE_REASON},
            "x-docs": "docs/api.md#websocket-get-apiws",
        },
    )
)
async def websocket(request: web.Request) -> web.WebSocketResponse:
    appliance = request.app[APPLIANCE]
    # aiohttp's own limit closes the socket; ours answers with an error event instead.
    ws = web.WebSocketResponse(heartbeat=10.0, max_msg_size=1 << 20)
    await ws.prepare(request)
    client = appliance.new_client("ws")
    outbox = Outbox(SEND_QUEUE)
    enqueue = outbox.put
    check = connection_check(request, client)

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
            reply = handle_text(appliance, client, message.data, check)
            if reply is not None:
                enqueue(reply)

    appliance.clients += 1
    unsubscribe = appliance.events.add(enqueue)
    send_task = asyncio.create_task(sender(), name=f"{client}-send")
    control = request.app[CONTROL]
    auth = get_auth(request)
    left = False
    if auth is not None:
        role = effective_role(request.app[AUTH_STORE], auth) or "viewer"

        def join() -> None:
            if left:
                return  # closed before its first await: no stale presence entry
            enqueue({"type": "hello", "client": client, "user": auth.user, "role": role})
            control.join(client, auth.user, role, auth.credential)

        # after the first ``state`` event (queued by events.add with call_soon): clients may
        # rely on it coming first
        asyncio.get_running_loop().call_soon(join)
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
        left = True
        control.leave(client)
        appliance.hid.release_client(client)
        unsubscribe()
        appliance.clients -= 1
        appliance.events.state_changed()
        send_task.cancel()
    return ws
