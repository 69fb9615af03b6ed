"""``[hid]``, ``[hid.otg]``, ``[hid.ch9329]`` and ``[gadget]``: how keys and mouse reach the target.

Read by ``appliance.runtime.build_output`` (which output, which devices) and the HID API (layout,
pacing).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from appliance.config import checks
from appliance.config.context import Context
from appliance.config.options import option

HidOutput = Literal["demo", "otg", "ch9329", "qemu"]
MouseMode = Literal["absolute", "relative"]


def _output_for(context: Context) -> HidOutput:
    """For "auto": the demo target has a simulated keyboard; hardware is driven as a USB gadget."""
    if context.target == "qemu":
        return "qemu"
    return "demo" if context.target == "demo" else "otg"


@dataclass(frozen=True, slots=True, kw_only=True)
class OtgConfig:
    keyboard: Path = option(Path("/dev/hidg0"), doc="keyboard hidg device")
    mouse: Path = option(Path("/dev/hidg1"), doc="absolute mouse hidg device")
    mouse_rel: Path = option(Path("/dev/hidg2"), doc="relative mouse hidg device")


@dataclass(frozen=True, slots=True, kw_only=True)
class Ch9329Config:
    port: Path = option(Path("/dev/ttyUSB0"), doc="serial port of the CH9329")
    baud: int = option(
        9600, check=checks.int_range(1200, 921600), doc="serial speed (factory default 9600)"
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class HidConfig:
    output: HidOutput = option(
        "auto", derive=_output_for, doc="auto: demo, qemu or otg following target.kind"
    )
    """Resolved: the file may say "auto", the loaded value never does."""
    layout: str = option(
        "us", check=checks.layout, doc="keyboard layout the target expects (for typing text)"
    )
    pacing_ms: float = option(
        12.0, check=checks.number(0, 1000), doc="key press hold time and gap when typing"
    )
    mouse: MouseMode = option("absolute", doc="default mouse mode")
    otg: OtgConfig
    """``[hid.otg]``: a field typed as a section is a nested table."""
    ch9329: Ch9329Config
    """``[hid.ch9329]``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GadgetConfig:
    root: Path = option(Path("/sys/kernel/config/usb_gadget"), doc="configfs usb_gadget directory")
    name: str = option("ipkvm", check=checks.simple_name, doc="gadget directory name under root")
    udc: str = option(
        "auto", check=checks.simple_name, doc="UDC to bind; auto: the only one in udc_dir"
    )
    udc_dir: Path = option(Path("/sys/class/udc"), doc="where UDCs are listed")
    mass_storage: bool = option(False, doc="add a mass-storage function (virtual media)")
