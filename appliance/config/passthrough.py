"""``[passthrough]``: keyboards and mice plugged into the appliance, forwarded to the target.

Read by :mod:`appliance.passthrough` (docs/passthrough.md). The hotkey's key names are checked
when the service builds it (the key tables live in ``hid``, which this package does not import).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from appliance.config import checks
from appliance.config.errors import ConfigError
from appliance.config.options import option


def patterns(key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(
            key,
            "must be a list of device names or /dev/input paths (wildcards allowed) such as "
            f'["*Keyboard*", "/dev/input/by-id/usb-*-kbd"], not {value!r}',
        )
    return tuple(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class PassthroughConfig:
    enabled: bool = option(False, doc="forward local USB keyboards and mice to the target")
    devices: tuple[str, ...] = option(
        (),
        check=patterns,
        doc="only these: device-name wildcards, or /dev/input paths; []: every keyboard and mouse",
    )
    hotkey: str = option(
        "scrolllock scrolllock",
        check=checks.text,
        doc='keys tapped on a local keyboard before a port digit (needs [switch]); "": none',
    )
    hotkey_timeout: float = option(
        2.0, check=checks.number(0.2, 10), doc="seconds allowed between hotkey steps"
    )
