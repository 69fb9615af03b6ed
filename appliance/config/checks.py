"""Value checks: each takes (dotted key, raw TOML value) and returns the typed value or raises.

They are plain functions (or factories of them, for ranges) so an option declaration can name its
check next to its default, and every message can name the dotted key it is about: an appliance
without a screen is debugged from ``ipkvm config check`` output alone.

Checks for ``bool``, ``str``, ``Path`` and ``Literal`` options are picked from the field's type
(see :mod:`appliance.config.options`); the ones here that need a range or a format are named
explicitly in the declarations.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from appliance.config.errors import ConfigError

T = TypeVar("T")

Check = Callable[[str, Any], T]
"""A value check: (dotted key, raw TOML value) → typed value, or :class:`ConfigError`."""

ProxyNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def path(key: str, value: Any) -> Path:
    if not isinstance(value, str) or not value or "\0" in value:
        raise ConfigError(key, "must be a string path")
    return Path(value)


def optional_path(key: str, value: Any) -> Path | None:
    """A path, or ``""`` for "not set" (the option then derives its value)."""
    if value == "":
        return None
    return path(key, value)


def boolean(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(key, f"must be true or false, not {value!r}")
    return value


def text(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(key, f"must be a string, not {value!r}")
    return value


def int_range(lo: int, hi: int) -> Check[int]:
    """An integer in ``lo..hi``; ``true`` is not 1 (TOML has both, a typo should not pass)."""

    def check(key: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, f"must be an integer, not {value!r}")
        if not lo <= value <= hi:
            raise ConfigError(key, f"{value} out of range ({lo}..{hi})")
        return value

    return check


def number(lo: float, hi: float, *, lo_open: bool = False) -> Check[float]:
    """An integer or float in range, returned as float (``lo_open``: ``lo`` itself is refused)."""

    def check(key: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(key, f"must be a number, not {value!r}")
        if isinstance(value, float) and math.isnan(value):
            # TOML has nan, and nan fails every comparison: the range check alone let it through.
            raise ConfigError(key, f"must be a number, not {value!r}")
        too_low = value <= lo if lo_open else value < lo
        if too_low or value > hi:
            bound = f"> {lo}" if lo_open else f">= {lo}"
            raise ConfigError(key, f"{value} out of range (must be {bound} and <= {hi})")
        return float(value)

    return check


def choice(*options: str) -> Check[str]:
    """One of ``options`` (built from a ``Literal`` type by the option walker)."""

    def check(key: str, value: Any) -> str:
        if not isinstance(value, str) or value not in options:
            listed = ", ".join(repr(o) for o in options)
            raise ConfigError(key, f"must be one of {listed}, not {value!r}")
        return value

    return check


# Used with fullmatch: "$" would also match before a trailing newline ("ipkvm\n" passed).
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_LAYOUT_RE = re.compile(r"[a-z][a-z0-9_-]{0,31}")


def simple_name(key: str, value: Any) -> str:
    """A name that is safe as one directory entry (no ``/``, no leading ``.``)."""
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value):
        raise ConfigError(key, f"must be a simple name (letters, digits, . _ -), not {value!r}")
    return value


def layout(key: str, value: Any) -> str:
    """A keyboard layout name; whether it exists is checked when a layout is loaded."""
    if not isinstance(value, str) or not _LAYOUT_RE.fullmatch(value):
        raise ConfigError(key, f"must be a layout name such as 'us' or 'de', not {value!r}")
    return value


def parse_listen(key: str, value: Any) -> tuple[str, int]:
    """``"host:port"`` or ``"[v6]:port"`` → (host, port). Port 0 asks the OS for a free port."""
    if not isinstance(value, str) or not value:
        raise ConfigError(key, 'must be a string "host:port"')
    host, sep, port_text = value.rpartition(":")
    if not sep or not host:
        raise ConfigError(key, f'{value!r} is not "host:port" (e.g. "0.0.0.0:443")')
    if host.startswith("["):
        if not host.endswith("]"):
            raise ConfigError(key, f"{value!r}: unbalanced brackets around the IPv6 address")
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ConfigError(key, f"{host!r} is not an IPv6 address") from None
    elif ":" in host:
        raise ConfigError(key, f'{value!r}: write IPv6 addresses in brackets, "[::]:443"')
    # ASCII digits only: str.isdigit() is also true for "²" (int() then raised ValueError) and
    # for other scripts' digits ("٣" was port 3).
    if not (port_text.isascii() and port_text.isdigit()):
        raise ConfigError(key, f"port {port_text!r} is not a number")
    port = int(port_text)
    if port > 65535:
        raise ConfigError(key, f"port {port} out of range (0..65535)")
    return host, port


def listen_address(key: str, value: Any) -> str:
    """The ``"host:port"`` text as written; host and port are read from it when needed."""
    parse_listen(key, value)
    return str(value)


def ice_urls(key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(
            key, f'must be a list of URLs such as ["stun:stun.example:3478"], not {value!r}'
        )
    for url in value:
        if not url.startswith(("stun:", "stuns:", "turn:", "turns:")):
            raise ConfigError(key, f"{url!r} is not a stun:, stuns:, turn: or turns: URL")
    return tuple(value)


def networks(key: str, value: Any) -> tuple[ProxyNetwork, ...]:
    """IP addresses or CIDR networks; an address is its own /32 or /128.

    Host bits set (``10.0.0.1/8``) are refused as a likely typo, and so is a network holding every
    address: trusting all peers would let any client choose the address it is throttled under.
    """
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(
            key, f'must be a list of IP addresses or networks such as ["10.0.0.0/8"], not {value!r}'
        )
    found: list[ProxyNetwork] = []
    for entry in value:
        try:
            network = ipaddress.ip_network(entry.strip(), strict=True)
        except ValueError as exc:
            raise ConfigError(key, f"{entry!r} is not an IP address or network: {exc}") from None
        if network.prefixlen == 0:
            raise ConfigError(
                key,
                f"{entry!r} trusts every address, so any client could pick its own; list the "
                "proxies' addresses",
            )
        found.append(network)
    return tuple(found)


def mac(key: str, value: Any) -> str:
    """A MAC address (aa:bb:.., aa-bb-.., aabb.ccdd.eeff), kept as written; "" for none."""
    from appliance.wol import BadMac, parse_mac

    if value == "":
        return ""
    try:
        parse_mac(value)
    except BadMac as exc:
        raise ConfigError(key, str(exc)) from None
    return str(value)


def ip_address(key: str, value: Any) -> str:
    """An IPv4 or IPv6 address (no host names: a broadcast target is never looked up)."""
    try:
        if not isinstance(value, str):
            raise TypeError(value)
        ipaddress.ip_address(value)
    except (ValueError, TypeError):
        raise ConfigError(key, f"must be an IP address, not {value!r}") from None
    return str(value)
