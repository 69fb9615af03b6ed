"""ICE server settings shared by the offer route and the peers (kept apart so the route can hold
them without importing aiortc, and the peers without importing the route)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class IceServer:
    """A STUN or TURN server for peers behind NAT (none by default: LAN host candidates)."""

    urls: str
    username: str | None = None
    credential: str | None = None
