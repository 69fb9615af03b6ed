"""The machines behind the switch's ports: their names and remembered settings.

Defaults come from ``[[switch.ports]]`` (and ``[hid]`` for layout and mouse mode); changes made
through the API are kept in ``STATE_DIR/switch.json`` and win over the defaults, so a port renamed
in the console stays renamed across restarts and upgrades while the config file stays the
admin's. The file is replaced atomically (a crash mid-write leaves the old one), and a damaged
file is logged and ignored rather than keeping the service from starting.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

from appliance.auth import write_private
from appliance.config.switch import PortConfig, mac_problem, port_name_problem

log = logging.getLogger(__name__)

MouseMode = Literal["absolute", "relative"]
SETTINGS = ("name", "layout", "mouse", "wol_mac", "atx")
STATE_FILE = "switch.json"


@dataclass(frozen=True, slots=True)
class PortSettings:
    port: int
    name: str
    layout: str
    """The target's keyboard layout: typing and scripts use it while this port is active."""
    mouse: MouseMode
    wol_mac: str | None = None
    atx: str | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class PortError(ValueError):
    """A port or a setting that does not exist or is not valid (the API answers 400)."""


def _check(
    name: str, value: Any, known_layouts: Sequence[str], known_wirings: Sequence[str] | None = None
) -> Any:
    """A setting's value as stored, or PortError naming what is wrong."""
    if name == "name":
        problem = port_name_problem(value)
    elif name == "layout":
        problem = None if value in known_layouts else f"unknown layout {value!r}"
    elif name == "mouse":
        problem = None if value in ("absolute", "relative") else "must be absolute or relative"
    elif name == "wol_mac":
        problem = None if value is None else mac_problem(value)
        value = value if value is None else str(value).lower().replace("-", ":")
    elif name == "atx":
        ok = value is None or (isinstance(value, str) and 0 < len(value) <= 63)
        problem = None if ok else f"must be a wiring name or null, not {value!r}"
        if ok and value is not None and known_wirings is not None and value not in known_wirings:
            have = ", ".join(repr(w) for w in known_wirings) or "none configured"
            problem = f"no ATX wiring named {value!r} (wirings: {have})"
    else:
        problem = f"unknown setting (a port has {', '.join(SETTINGS)})"
    if problem:
        raise PortError(f"{name}: {problem}")
    return value


class PortStore:
    """Settings of ports 1..count: config defaults, then the saved overrides."""

    def __init__(
        self,
        count: int,
        defaults: Sequence[PortConfig],
        *,
        layout: str,
        mouse: MouseMode,
        state_dir: Path | None,
        known_layouts: Sequence[str],
        known_wirings: Sequence[str] | None = None,
    ) -> None:
        """*known_wirings*: the ATX wiring names a port's ``atx`` may take (None: any name)."""
        self.count = count
        self.known_layouts = known_layouts
        self.known_wirings = known_wirings
        self.path = state_dir / STATE_FILE if state_dir is not None else None
        self._defaults: list[PortSettings] = []
        for n in range(1, count + 1):
            c = defaults[n - 1] if n <= len(defaults) else PortConfig()
            self._defaults.append(
                PortSettings(
                    n, c.name or f"port {n}", c.layout or layout, c.mouse or mouse, c.wol_mac, c.atx
                )
            )
        self._overrides: dict[int, dict[str, Any]] = {}
        self._load()

    # ------------------------------------------------------------------ reading
    def get(self, port: int) -> PortSettings:
        if not 1 <= port <= self.count:
            raise PortError(f"no port {port}: the switch has ports 1..{self.count}")
        return replace(self._defaults[port - 1], **self._overrides.get(port, {}))

    def all(self) -> list[PortSettings]:
        return [self.get(n) for n in range(1, self.count + 1)]

    def find(self, spec: int | str) -> int:
        """The port *spec* names: a number (as int or digits) or a port name (any case)."""
        if isinstance(spec, int) and not isinstance(spec, bool):
            self.get(spec)
            return spec
        if isinstance(spec, str):
            text = spec.strip()
            if text.isascii() and text.isdigit():
                return self.find(int(text))
            for settings in self.all():
                if settings.name.casefold() == text.casefold():
                    return settings.port
            names = ", ".join(repr(s.name) for s in self.all())
            raise PortError(f"no port named {spec!r} (ports: {names})")
        raise PortError(f"a port is a number or a name, not {spec!r}")

    # ------------------------------------------------------------------ changing
    def update(self, port: int, changes: Mapping[str, Any]) -> PortSettings:
        """Apply *changes* (a setting set to None goes back to its default for name, layout and
        mouse) and save. All are checked before any is applied."""
        self.get(port)
        checked: dict[str, Any] = {}
        for name, value in changes.items():
            if value is None and name in ("name", "layout", "mouse"):
                checked[name] = None
                continue
            checked[name] = _check(name, value, self.known_layouts, self.known_wirings)
        new_name = checked.get("name")
        if new_name is not None:
            for other in self.all():
                if other.port != port and other.name.casefold() == new_name.casefold():
                    raise PortError(f"name: {new_name!r} already names port {other.port}")
        override = dict(self._overrides.get(port, {}))
        default = self._defaults[port - 1]
        for name, value in checked.items():
            back_to_default = value is None and name in ("name", "layout", "mouse")
            if back_to_default or value == getattr(default, name):
                override.pop(name, None)
            else:
                override[name] = value
        previous = self._overrides.get(port)
        self._overrides[port] = override
        try:
            self._save()
        except OSError as exc:
            if previous is None:
                self._overrides.pop(port)
            else:
                self._overrides[port] = previous
            raise PortError(f"cannot save port settings: {exc.strerror or exc}") from None
        return self.get(port)

    # ------------------------------------------------------------------ the file
    def _load(self) -> None:
        if self.path is None or not self.path.exists():
            return
        try:
            data = json.loads(self.path.read_text())
            ports = data["ports"]
            assert isinstance(ports, dict)
            for key, settings in ports.items():
                port = int(key)
                if not 1 <= port <= self.count or not isinstance(settings, dict):
                    continue  # a port the switch no longer has (count lowered): ignored
                kept = {}
                for name, value in settings.items():
                    try:
                        kept[name] = _check(name, value, self.known_layouts, self.known_wirings)
                    except PortError as exc:
                        log.warning("%s: port %d: %s (ignored)", self.path, port, exc)
                self._overrides[port] = kept
        except (OSError, ValueError, KeyError, AssertionError, TypeError) as exc:
            log.warning("%s unreadable, using the configured port settings: %s", self.path, exc)
            self._overrides.clear()

    def _save(self) -> None:
        if self.path is None:
            return
        body = {"ports": {str(p): o for p, o in sorted(self._overrides.items()) if o}}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_private(self.path, (json.dumps(body, indent=2) + "\n").encode())
