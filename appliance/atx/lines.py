"""Which backend drives a wiring's lines: the GPIO character device, or the simulated board.

A registry by chip name rather than a flag: ``chip = "sim"`` (the one name that is not a device)
gives a :class:`~appliance.atx.sim.SimLines` over a fresh :class:`~appliance.atx.sim.SimBoard`,
anything else is a gpiochip for :class:`~appliance.atx.gpio.GpiodLines`. Both import lazily: an
appliance without ATX never loads gpiod.
"""

from __future__ import annotations

from appliance.atx.control import AtxPower
from appliance.atx.wiring import AtxLines, AtxWiring
from appliance.config.power import SIM_CHIP


def build_lines(wiring: AtxWiring) -> AtxLines:
    if wiring.chip == SIM_CHIP:
        from appliance.atx.sim import SimBoard, SimLines

        return SimLines(SimBoard())
    from appliance.atx.gpio import GpiodLines

    return GpiodLines(wiring)


def atx_power(wiring: AtxWiring) -> AtxPower:
    """The power facet of one machine wired as *wiring*."""
    return AtxPower(
        build_lines(wiring),
        wiring.times,
        debounce=wiring.debounce,
        has_reset=wiring.reset is not None,
    )
