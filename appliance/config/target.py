"""``[target]`` and ``[demo]``: which machine is on the other end, and the simulated one.

``target.kind`` is also what "auto" HID output and video source follow (see ``Context``).
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance.config import checks
from appliance.config.context import TargetKind
from appliance.config.options import option


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetConfig:
    kind: TargetKind = option("demo", doc="demo (simulated), hardware, or qemu (guests, [qemu])")


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoConfig:
    """The simulated target (``appliance.runtime`` builds a DemoMachine from it)."""

    width: int = option(1280, check=checks.int_range(160, 7680), doc="demo screen width")
    height: int = option(720, check=checks.int_range(120, 4320), doc="demo screen height")
    stamp: bool = option(False, doc="stamp a frame counter/timestamp (latency tests)")
    layout: str = option("us", check=checks.layout, doc="the demo host's keyboard layout")
