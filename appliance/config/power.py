"""``[atx]`` and ``[wol]``: the target's power wiring and its Wake-on-LAN address.

Read by ``appliance.targets.hardware`` (an ATX power facet when ``atx.chip`` is set), the demo
target (press durations) and ``appliance.api.wol``.
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance.config import checks
from appliance.config.options import option

_OFFSET = checks.int_range(-1, 1023)
"""A line offset on the chip; -1: not wired."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AtxConfig:
    """PROTOCOLS.md, "ATX power": short press 100-200 ms, long press ≥ 5 s, LED debounce ~100 ms."""

    chip: str = option(
        "", doc='GPIO chip of the ATX wiring, e.g. "/dev/gpiochip0"; empty: no ATX power'
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


@dataclass(frozen=True, slots=True, kw_only=True)
class WolConfig:
    mac: str = option("", check=checks.mac, doc="the target's MAC for Wake-on-LAN; empty: none")
    address: str = option(
        "255.255.255.255", check=checks.ip_address, doc="where magic packets go (broadcast)"
    )
    port: int = option(9, check=checks.int_range(1, 65535), doc="UDP port of magic packets")
