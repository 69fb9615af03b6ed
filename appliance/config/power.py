"""``[atx]`` and ``[wol]``: the target's power wiring and its Wake-on-LAN address.

Read by ``appliance.targets.hardware`` (an ATX power facet when ``atx.chip`` is set), the demo
target (press durations) and ``appliance.api.wol``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from appliance.config import checks
from appliance.config.errors import ConfigError
from appliance.config.options import option

_OFFSET = checks.int_range(-1, 1023)
"""A line offset on the chip; -1: not wired."""

DEFAULT_WIRING = "default"
"""The name a switch port gives ``[atx]``'s own lines (``atx = "default"``)."""
SIM_CHIP = "sim"
"""``chip = "sim"``: a simulated motherboard instead of GPIO lines (no hardware needed)."""


@dataclass(frozen=True, slots=True)
class WiringConfig:
    """One ``[atx.wirings.NAME]`` table: another machine's ATX header on GPIO lines (a KVM switch
    port names it with ``atx = "NAME"``). Press times and debounce are ``[atx]``'s."""

    name: str
    chip: str
    power_line: int
    reset_line: int = -1
    power_led_line: int = -1
    hdd_led_line: int = -1
    power_active_low: bool = False
    reset_active_low: bool = False
    power_led_active_low: bool = False
    hdd_led_active_low: bool = False


_LINE_KEYS = ("reset_line", "power_led_line", "hdd_led_line")
_LOW_KEYS = ("power_active_low", "reset_active_low", "power_led_active_low", "hdd_led_active_low")
_WIRING_KEYS = ("chip", "power_line", *_LINE_KEYS, *_LOW_KEYS)


def wirings(key: str, value: Any) -> tuple[WiringConfig, ...]:
    """``[atx.wirings.NAME]`` tables: chip and power_line required, the rest as in ``[atx]``
    (but not wired unless given); no GPIO line used twice on one chip."""
    if value == []:  # how ``ipkvm config defaults`` writes "none"
        return ()
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise ConfigError(key, "must be tables of wirings ([atx.wirings.NAME])")
    found: list[WiringConfig] = []
    used: dict[tuple[str, int], str] = {}
    for name, table in value.items():
        where = f"{key}.{name}"
        checks.simple_name(where, name)
        if name == DEFAULT_WIRING:
            raise ConfigError(where, f'"{DEFAULT_WIRING}" is the name of [atx]\'s own lines')
        for k in table:
            if k not in _WIRING_KEYS:
                raise ConfigError(
                    f"{where}.{k}", f"unknown key (a wiring has {', '.join(_WIRING_KEYS)})"
                )
        for required in ("chip", "power_line"):
            if required not in table:
                raise ConfigError(
                    f"{where}.{required}", "missing (a wiring needs chip and power_line)"
                )
        chip = checks.text(f"{where}.chip", table["chip"])
        if not chip:
            raise ConfigError(f"{where}.chip", 'must name a GPIO chip, e.g. "/dev/gpiochip1"')
        kwargs: dict[str, Any] = {
            "power_line": checks.int_range(0, 1023)(f"{where}.power_line", table["power_line"])
        }
        for k in _LINE_KEYS:
            if k in table:
                kwargs[k] = _OFFSET(f"{where}.{k}", table[k])
        for k in _LOW_KEYS:
            if k in table:
                kwargs[k] = checks.boolean(f"{where}.{k}", table[k])
        wiring = WiringConfig(name, chip, **kwargs)
        for k in ("power_line", *_LINE_KEYS):
            offset = getattr(wiring, k)
            if offset < 0 or chip == SIM_CHIP:
                continue
            other = used.get((chip, offset))
            if other is not None:
                raise ConfigError(f"{where}.{k}", f"line {offset} of {chip} is already {other}")
            used[(chip, offset)] = f"{name}.{k}"
        found.append(wiring)
    return tuple(found)


@dataclass(frozen=True, slots=True, kw_only=True)
class AtxConfig:
    """PROTOCOLS.md, "ATX power": short press 100-200 ms, long press ≥ 5 s, LED debounce ~100 ms."""

    chip: str = option(
        "",
        doc='GPIO chip of the ATX wiring, e.g. "/dev/gpiochip0"; "sim": simulated; empty: none',
    )
    power_line: int = option(17, check=checks.int_range(0, 1023), doc="power button output")
    reset_line: int = option(27, check=_OFFSET, doc="reset button output; -1: not wired")
    power_led_line: int = option(22, check=_OFFSET, doc="power LED input; -1: not wired")
    hdd_led_line: int = option(23, check=_OFFSET, doc="HDD LED input; -1: not wired")
    power_active_low: bool = option(False, doc="the power output is active-low")
    reset_active_low: bool = option(False, doc="the reset output is active-low")
    power_led_active_low: bool = option(False, doc="the power LED input is active-low")
    hdd_led_active_low: bool = option(False, doc="the HDD LED input is active-low")
    press_ms: int = option(
        150, check=checks.int_range(50, 2000), doc="short press (on, ACPI off), ms"
    )
    long_press_ms: int = option(
        6000, check=checks.int_range(4000, 30000), doc="long press (forced off), ms"
    )
    reset_ms: int = option(150, check=checks.int_range(50, 2000), doc="reset press, ms")
    max_press_ms: int = option(
        15000, check=checks.int_range(100, 60000), doc="longest press a client may ask for, ms"
    )
    debounce_ms: int = option(
        100, check=checks.int_range(0, 1000), doc="LED debounce (power) and activity hold (HDD), ms"
    )
    wirings: tuple[WiringConfig, ...] = option(
        (),
        check=wirings,
        doc="[atx.wirings.NAME]: more machines' lines (chip, power_line, ...) for switch ports",
    )

    def wiring_names(self) -> tuple[str, ...]:
        """What a switch port's ``atx`` may name: "default" (when ``chip`` is set) and each
        ``[atx.wirings.NAME]``."""
        own = (DEFAULT_WIRING,) if self.chip else ()
        return own + tuple(w.name for w in self.wirings)


@dataclass(frozen=True, slots=True, kw_only=True)
class WolConfig:
    mac: str = option("", check=checks.mac, doc="the target's MAC for Wake-on-LAN; empty: none")
    address: str = option(
        "255.255.255.255", check=checks.ip_address, doc="where magic packets go (broadcast)"
    )
    port: int = option(9, check=checks.int_range(1, 65535), doc="UDP port of magic packets")
