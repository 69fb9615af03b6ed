"""The hardware target: the board's capture device (V4L2) and HID output (USB OTG gadget or a
CH9329 serial chip). Power and media stay null until ATX and virtual media are configured.

A hardware appliance may still borrow one demo facet for bring-up (``video.source = "demo"``
while the capture card is missing); the simulated machine is then created on demand.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from appliance.targets import Target, hid_output, video_source

if TYPE_CHECKING:
    from appliance.config import Config


def build(config: Config) -> Target:
    from appliance.targets.demo import make_machine

    machine = cache(lambda: make_machine(config))
    return Target(
        kind="hardware",
        video=video_source(config, machine),
        hid=hid_output(config, machine),
    )
