"""Wake-on-LAN: the magic packet (6 x 0xFF, then the target's MAC 16 times) sent over UDP.

A leaf module of the standard library only, at the bottom of the layers: the configuration checks
``wol.mac`` with :func:`parse_mac`, the API and the KVM switch (a MAC per port) send with
:func:`send_magic_packet`. Broadcast to 255.255.255.255 port 9 ("discard") by default, the
address and port most network cards and routers expect; a directed broadcast (192.168.1.255)
reaches a target behind a router that forwards it.
"""

from __future__ import annotations

import re
import socket

DEFAULT_ADDRESS = "255.255.255.255"
DEFAULT_PORT = 9

# aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff, aabb.ccdd.eeff (Cisco), each case-insensitive; fullmatch
# so a trailing newline or a seventh octet is refused.
_COLONS = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}", re.IGNORECASE)
_DASHES = re.compile(r"[0-9a-f]{2}(?:-[0-9a-f]{2}){5}", re.IGNORECASE)
_DOTS = re.compile(r"[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}", re.IGNORECASE)


class BadMac(ValueError):
    """Not a MAC address in one of the accepted notations (the message says which they are)."""


def parse_mac(text: str) -> bytes:
    """The six bytes of a MAC written ``aa:bb:cc:dd:ee:ff``, ``aa-bb-..`` or ``aabb.ccdd.eeff``."""
    if not isinstance(text, str) or not (
        _COLONS.fullmatch(text) or _DASHES.fullmatch(text) or _DOTS.fullmatch(text)
    ):
        raise BadMac(
            f"{text!r} is not a MAC address "
            "(aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff or aabb.ccdd.eeff)"
        )
    return bytes.fromhex(re.sub(r"[:.-]", "", text))


def format_mac(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


def magic_packet(mac: bytes) -> bytes:
    if len(mac) != 6:
        raise BadMac("a MAC address has 6 bytes")
    return b"\xff" * 6 + mac * 16


def send_magic_packet(
    mac: str | bytes, address: str = DEFAULT_ADDRESS, port: int = DEFAULT_PORT
) -> bytes:
    """Send one magic packet for ``mac`` to ``address``:``port``; returns the bytes sent.

    Non-blocking in practice (one UDP datagram of 102 bytes), so callers in the event loop may
    call it directly.
    """
    raw = parse_mac(mac) if isinstance(mac, str) else mac
    packet = magic_packet(raw)
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        if family == socket.AF_INET:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.sendto(packet, (address, port))
    return packet
