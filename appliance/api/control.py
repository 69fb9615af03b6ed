"""Who is connected, who is typing, and who has exclusive control (``/api/control``).

Several people may have the console open at once; without coordination two of them type into the
same BIOS screen. So every input WebSocket joins a presence list (user, role, typing or not), and a
user with the ``input`` right may take **exclusive control**: until they release it or their last
console connection goes away, everyone else loses ``input``, ``switch`` and ``power`` (they become
viewers; ``appliance.api.rights`` refuses their requests and WebSocket messages with 403 /
an ``error`` event naming the holder). Another user may not take it over, except an admin
(``force``), so a holder who walked away can always be displaced.

Control belongs to one login (the :class:`~appliance.auth.Credential` that took it: a browser
session, a token, a Basic password), not to a user name, so the same user in another browser is
a viewer too. A holder's connections closing, their logout or their credential's revocation all
release it (:meth:`Control.leave`). Changes are pushed to every WebSocket as a ``presence`` event.

"Typing" is any input message in the last :data:`TYPING_SECONDS`; the flag is cleared by a timer
(one per client, re-armed only when it flips), so a busy typist costs no timers per key.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from aiohttp import web

from appliance.auth import Credential

TYPING_SECONDS: Final = 2.0


@dataclass(slots=True)
class Presence:
    client: str
    user: str
    role: str
    credential: Credential | None
    since: float
    typing: bool = False
    last_input: float = 0.0
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Holder:
    user: str
    credential: Credential | None
    since: float  # wall clock, for display


class ControlTaken(Exception):
    def __init__(self, holder: Holder) -> None:
        super().__init__(f"{holder.user} has exclusive control")
        self.holder = holder


class Control:
    """Presence and exclusive control of one application (``app[CONTROL]``)."""

    def __init__(self, publish: Callable[[dict[str, Any]], None]) -> None:
        self._publish = publish
        self.clients: dict[str, Presence] = {}
        self.holder: Holder | None = None

    # -- presence
    def join(self, client: str, user: str, role: str, credential: Credential | None) -> None:
        self.clients[client] = Presence(client, user, role, credential, time.time())
        self.changed()

    def leave(self, client: str) -> None:
        """A console connection went away; the holder's last one releases control."""
        presence = self.clients.pop(client, None)
        if presence is None:
            return
        if presence.timer is not None:
            presence.timer.cancel()
        holder = self.holder
        if (
            holder is not None
            and presence.credential == holder.credential
            and not any(p.credential == holder.credential for p in self.clients.values())
        ):
            self.holder = None
        self.changed()

    def activity(self, client: str, credential: Credential | None = None) -> None:
        """An input message from ``client``: it is typing (for the next 2 s). Input from a
        WebRTC data channel (not a presence entry of its own) marks the console connections of
        the same login (``credential``)."""
        presence = self.clients.get(client)
        if presence is None:
            if credential is not None:
                for other in [p for p in self.clients.values() if p.credential == credential]:
                    self.activity(other.client)
            return
        presence.last_input = time.monotonic()
        if presence.typing:
            return
        presence.typing = True
        self._arm(presence)
        self.changed()

    def _arm(self, presence: Presence) -> None:
        loop = asyncio.get_running_loop()
        presence.timer = loop.call_later(TYPING_SECONDS, self._idle_check, presence)

    def _idle_check(self, presence: Presence) -> None:
        presence.timer = None
        if presence.client not in self.clients or not presence.typing:
            return
        left = presence.last_input + TYPING_SECONDS - time.monotonic()
        if left > 0.01:
            loop = asyncio.get_running_loop()
            presence.timer = loop.call_later(left, self._idle_check, presence)
            return
        presence.typing = False
        self.changed()

    # -- exclusive control
    def blocked_by(self, credential: Credential | None) -> Holder | None:
        """The holder, if someone other than this login has exclusive control."""
        holder = self.holder
        if holder is None or (credential is not None and holder.credential == credential):
            return None
        return holder

    def take(self, user: str, credential: Credential | None, *, force: bool) -> Holder:
        current = self.blocked_by(credential)
        if current is not None and not force:
            raise ControlTaken(current)
        if self.holder is None or self.holder.credential != credential:
            self.holder = Holder(user, credential, time.time())
            self.changed()
        return self.holder

    def release(self, credential: Credential | None, *, force: bool) -> bool:
        """Release control held by this login (or anyone's, with ``force``); True if released."""
        holder = self.holder
        if holder is None:
            return False
        if holder.credential != credential and not force:
            raise ControlTaken(holder)
        self.holder = None
        self.changed()
        return True

    def revoked(self, still_valid: Callable[[Credential], bool]) -> None:
        """Credentials were revoked (logout, password change): a dead holder loses control."""
        holder = self.holder
        if (
            holder is not None
            and holder.credential is not None
            and not still_valid(holder.credential)
        ):
            self.holder = None
            self.changed()

    # -- view
    def snapshot(self, credential: Credential | None = None) -> dict[str, Any]:
        holder = self.holder
        return {
            "holder": None
            if holder is None
            else {
                "user": holder.user,
                "since": round(holder.since, 3),
                "you": credential is not None and holder.credential == credential,
            },
            "clients": [
                {
                    "client": p.client,
                    "user": p.user,
                    "role": p.role,
                    "typing": p.typing,
                    "control": holder is not None and p.credential == holder.credential,
                }
                for p in sorted(self.clients.values(), key=lambda p: p.since)
            ],
        }

    def changed(self) -> None:
        self._publish({"type": "presence", **self.snapshot()})


CONTROL: web.AppKey[Control] = web.AppKey("ipkvm_control", Control)
