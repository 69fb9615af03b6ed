"""A WebSocket client's send queue: bounded, but never silent about what it could not keep.

Events are produced synchronously (HID callbacks, job progress, replies to a burst of messages
that arrived in one TCP read) and sent by one task that waits for the client to read. A client
that does not read, or floods us faster than it reads, must not grow our memory without bound,
so some events are not kept:

- ``state`` events are coalesced: when the queue is full, the newest state is kept aside and sent
  once the queue has drained (older states are worthless once a newer one exists, and the client
  always ends up with the current state, not the last one that happened to fit).
- the final progress event of a job (``type_progress``/``script_progress`` with ``"done": true``)
  is what a script waits for, and there is one per job: it may use a second ``limit`` of room.
- any other event (``pong``, ``error``, intermediate progress) is dropped and counted; the client
  is then told, at the place in the stream where the gap is, with
  ``{"type": "dropped", "count": n, "types": {"pong": n, ...}}``, so it knows what it missed
  instead of waiting forever for a reply.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from typing import Any

Event = dict[str, Any]


class Outbox:
    """Bounded FIFO of events for one client (single consumer: :meth:`get`)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._items: deque[Event] = deque()
        self._dropped: Counter[str] = Counter()
        self._state: Event | None = None  # newest state that did not fit
        self._ready = asyncio.Event()

    def put(self, event: Event) -> None:
        """Queue ``event`` unless the queue is full (see the module docstring for what then)."""
        kind = str(event.get("type"))
        full = len(self._items) >= (2 * self.limit if _is_final(event) else self.limit)
        if full:
            if kind == "state":
                self._state = event
            else:
                self._dropped[kind] += 1
            return
        if kind == "state":
            self._state = None  # superseded
        self._flush_dropped()
        self._items.append(event)
        self._ready.set()

    async def get(self) -> Event:
        """The next event to send, waiting for one; a pending notice or state once drained."""
        while not self._items:
            self._flush_dropped()
            if not self._items and self._state is not None:
                self._items.append(self._state)
                self._state = None
            if self._items:
                break
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()

    def _flush_dropped(self) -> None:
        """Queue the drop notice (may exceed ``limit`` by this one event)."""
        if self._dropped:
            count = sum(self._dropped.values())
            self._items.append({"type": "dropped", "count": count, "types": dict(self._dropped)})
            self._dropped.clear()


def _is_final(event: Event) -> bool:
    return event.get("done") is True and str(event.get("type")).endswith("_progress")
