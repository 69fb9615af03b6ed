"""The hardware target: the board's capture device (V4L2) and HID output (USB OTG gadget or a
CH9329 serial chip). Power is ATX over GPIO when ``[atx]`` names a chip (:mod:`appliance.atx`);
media is the USB gadget's mass-storage LUN when ``[gadget] mass_storage`` is on.

A hardware appliance may still borrow one demo facet for bring-up (``video.source = "demo"``
while the capture card is missing); the simulated machine is then created on demand.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from appliance.targets import Target, hid_output, video_source
from appliance.targets.facets import MediaFacet, NullMedia, NullPower, PowerFacet

if TYPE_CHECKING:
    from appliance.config import Config


def build(config: Config) -> Target:
    from appliance.targets.demo import make_machine

    machine = cache(lambda: make_machine(config))
    return Target(
        kind="hardware",
        video=video_source(config, machine),
        hid=hid_output(config, machine),
        power=atx_power(config),
        media=gadget_media(config),
    )


def atx_power(config: Config) -> PowerFacet:
    """ATX power on the configured GPIO lines, or none when ``atx.chip`` is empty."""
    if not config.atx.chip:
        return NullPower("no ATX wiring is configured ([atx] chip)")
    from appliance.atx.control import AtxPower
    from appliance.atx.gpio import GpiodLines
    from appliance.atx.wiring import wiring_from_config

    wiring = wiring_from_config(config.atx)
    return AtxPower(
        GpiodLines(wiring),
        wiring.times,
        debounce=wiring.debounce,
        has_reset=wiring.reset is not None,
    )


def gadget_media(config: Config) -> MediaFacet:
    """The gadget's mass-storage LUN, or none in "HID only" mode (``[gadget] mass_storage``)."""
    if not config.gadget.mass_storage:
        return NullMedia('the USB gadget is "HID only" ([gadget] mass_storage = false)')
    from appliance.targets.lun import LunMedia
    from hid.gadget import MASS_STORAGE

    g = config.gadget
    return LunMedia(
        g.root / g.name / "functions" / MASS_STORAGE / "lun.0",
        cdrom_cap=config.media.cdrom_size_cap,
    )
