"""``[switch]`` and ``[[switch.ports]]``: the rack's multi-port KVM switch and its machines.

Read by :mod:`appliance.switch` (which driver, which wire, how fast) and the demo target (a
``demo`` switch makes the demo target a rack of machines). Each ``[[switch.ports]]`` entry is the
remembered settings of one port, in port order; ports without an entry get the defaults (named
"port N", the ``[hid]`` layout and mouse mode). The API may rename ports at run time; those
changes live in the state directory and win over these defaults.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from appliance.config import checks
from appliance.config.errors import ConfigError
from appliance.config.options import option

SwitchDriverName = Literal[
    "none", "demo", "qemu", "tesmart", "ezcoo", "xh-hk4401", "extron", "pway", "hotkey"
]
EzcooCommands = Literal["set", "ezs"]
MAX_PORTS = 16
PORT_NAME_MAX = 32

# A port name is shown in the console and typed on the CLI: printable, no leading/trailing space,
# not all digits (a number means a port number on the CLI and in DuckyScript).
_NAME_RE = re.compile(r"[^\x00-\x1f\x7f]{1,32}")
_MAC_RE = re.compile(r"[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(\1[0-9A-Fa-f]{2}){4}")


def port_name_problem(value: object) -> str | None:
    """Why *value* cannot be a port name (None: it can). Shared with the API's PATCH."""
    if not isinstance(value, str):
        return f"must be a string, not {value!r}"
    if not _NAME_RE.fullmatch(value) or value != value.strip():
        return (
            f"must be 1..{PORT_NAME_MAX} printable characters without leading or trailing "
            f"spaces, not {value!r}"
        )
    if value.isdigit():
        return f"must not be all digits ({value!r} would read as a port number)"
    return None


def mac_problem(value: object) -> str | None:
    """Why *value* is not a MAC address ``aa:bb:cc:dd:ee:ff`` (None: it is)."""
    if not isinstance(value, str) or not _MAC_RE.fullmatch(value):
        return f"must be a MAC address such as '52:54:00:12:34:56', not {value!r}"
    return None


@dataclass(frozen=True, slots=True)
class PortConfig:
    """One ``[[switch.ports]]`` entry. None: follow ``[hid]`` (layout, mouse) or not set."""

    name: str | None = None
    layout: str | None = None
    mouse: Literal["absolute", "relative"] | None = None
    wol_mac: str | None = None
    """Stored for Wake-on-LAN (built elsewhere); normalised to lower case with colons."""
    atx: str | None = None
    """Which ATX wiring powers this machine (stored; the ATX subsystem reads it)."""


_PORT_KEYS = ("name", "layout", "mouse", "wol_mac", "atx")


def ports(key: str, value: Any) -> tuple[PortConfig, ...]:
    """A list of port tables (``[[switch.ports]]``), at most MAX_PORTS, names unique."""
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ConfigError(key, "must be a list of tables ([[switch.ports]] entries)")
    if len(value) > MAX_PORTS:
        raise ConfigError(key, f"{len(value)} entries; a switch has at most {MAX_PORTS} ports")
    found: list[PortConfig] = []
    seen: dict[str, int] = {}
    for n, table in enumerate(value, start=1):
        where = f"{key}[{n}]"
        for name in table:
            if name not in _PORT_KEYS:
                raise ConfigError(
                    f"{where}.{name}", f"unknown key (a port has {', '.join(_PORT_KEYS)})"
                )
        name = table.get("name")
        if name is not None:
            problem = port_name_problem(name)
            if problem:
                raise ConfigError(f"{where}.name", problem)
            if name.casefold() in seen:
                first = seen[name.casefold()]
                raise ConfigError(f"{where}.name", f"{name!r} already names port {first}")
            seen[name.casefold()] = n
        layout = table.get("layout")
        if layout is not None:
            layout = checks.layout(f"{where}.layout", layout)
        mouse = table.get("mouse")
        if mouse is not None:
            mouse = checks.choice("absolute", "relative")(f"{where}.mouse", mouse)
        mac = table.get("wol_mac")
        if mac is not None:
            problem = mac_problem(mac)
            if problem:
                raise ConfigError(f"{where}.wol_mac", problem)
            mac = mac.lower().replace("-", ":")
        atx = table.get("atx")
        if atx is not None:
            atx = checks.simple_name(f"{where}.atx", atx)
        found.append(PortConfig(name, layout, mouse, mac, atx))
    return tuple(found)


@dataclass(frozen=True, slots=True, kw_only=True)
class SwitchConfig:
    driver: SwitchDriverName = option(
        "none", doc="KVM switch in front of the targets: none, demo, or a model (docs/switch.md)"
    )
    count: int = option(
        0, check=checks.int_range(0, MAX_PORTS), doc="number of ports; 0: [[switch.ports]] or 4"
    )
    device: Path = option(Path("/dev/ttyUSB1"), doc="serial port of the switch's control port")
    baud: int = option(
        0, check=checks.int_range(0, 921600), doc="serial speed; 0: the model's factory speed"
    )
    host: str = option("", doc='TCP address of a networked switch (tesmart); "": use device')
    tcp_port: int = option(
        5000, check=checks.int_range(1, 65535), doc="TCP port of a networked switch"
    )
    reply_timeout: float = option(
        1.0, check=checks.number(0.05, 30), doc="seconds to wait for each reply"
    )
    settle: float = option(
        1.0, check=checks.number(0, 10), doc="seconds after a switch before a query is believed"
    )
    gap: float = option(
        0.0,
        check=checks.number(0, 10),
        doc="seconds between commands, at least the model's own minimum (TESmart 1)",
    )
    poll_interval: float = option(
        5.0, check=checks.number(0, 3600), doc="seconds between active-port queries; 0: never"
    )
    ezcoo_commands: EzcooCommands = option(
        "set", doc='ezCoo firmware: "set" (SET/GET) or "ezs" (EZS/EZG)'
    )
    xh_protocol: int = option(1, check=checks.int_range(1, 2), doc="XH-HK4401 protocol (1 or 2)")
    hotkey: str = option(
        "scrolllock scrolllock {n}",
        check=checks.text,
        doc="hotkey driver: chords pressed in turn, {n} is the port number",
    )
    hotkey_gap_ms: float = option(
        100.0, check=checks.number(10, 5000), doc="hotkey driver: ms between presses"
    )
    ports: tuple[PortConfig, ...] = option(
        (), check=ports, doc="[[switch.ports]]: name, layout, mouse, wol_mac, atx per port"
    )

    def __post_init__(self) -> None:
        if self.count and len(self.ports) > self.count:
            raise ConfigError(
                "switch.ports", f"{len(self.ports)} entries for a switch of {self.count} ports"
            )

    @property
    def port_count(self) -> int:
        """How many ports the switch has: ``count``, else one per entry, else 4 (the common
        size of rack KVM switches, and of every model in docs/switch.md but TESmart's 8/16)."""
        return self.count or len(self.ports) or 4
