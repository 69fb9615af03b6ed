"""One machine's ATX wiring, and the small interface every ATX backend implements.

:class:`AtxWiring` is plain data (no config import) so a KVM switch can hold one per port;
:func:`wiring_from_config` builds the appliance's own from ``[atx]``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from appliance.atx.status import Led

if TYPE_CHECKING:
    from appliance.config import AtxConfig, WiringConfig

Output = Literal["power", "reset"]


@dataclass(frozen=True, slots=True)
class PressTimes:
    """Press durations in seconds (PROTOCOLS.md, "ATX power")."""

    short: float = 0.15
    """Power on, or an ACPI shutdown request: 100-200 ms on the boards we know."""
    long: float = 6.0
    """Forced off: the ATX override needs the button held ≥ 4 s; 6 s leaves a margin."""
    reset: float = 0.15
    max_press: float = 15.0
    """The longest ``press`` a client may ask for (a stuck output must not hold a board)."""


@dataclass(frozen=True, slots=True)
class AtxWiring:
    """Where one machine's ATX header is wired: a GPIO chip, line offsets (None: not wired),
    per-line polarity (an optocoupler or an inverting buffer makes a line active-low), press
    durations and the LED debounce."""

    chip: str
    power: int
    reset: int | None = None
    power_led: int | None = None
    hdd_led: int | None = None
    active_low: frozenset[str] = frozenset()
    """Names of the lines ("power", "reset", "power_led", "hdd_led") that are active-low."""
    times: PressTimes = PressTimes()
    debounce: float = 0.1
    """Seconds a power LED level must hold before it counts (PROTOCOLS.md: ~100 ms)."""

    def outputs(self) -> dict[Output, int]:
        found: dict[Output, int] = {"power": self.power}
        if self.reset is not None:
            found["reset"] = self.reset
        return found

    def leds(self) -> dict[Led, int]:
        found: dict[Led, int] = {}
        if self.power_led is not None:
            found["power"] = self.power_led
        if self.hdd_led is not None:
            found["hdd"] = self.hdd_led
        return found

    def is_active_low(self, line: str) -> bool:
        return line in self.active_low


def wiring_from_config(atx: AtxConfig, lines: WiringConfig | None = None) -> AtxWiring:
    """``[atx]`` as an :class:`AtxWiring` (offset -1 means "not wired"); with *lines*, that
    ``[atx.wirings.NAME]`` entry's chip and lines with ``[atx]``'s press times and debounce."""

    def wired(offset: int) -> int | None:
        return None if offset < 0 else offset

    where: AtxConfig | WiringConfig = atx if lines is None else lines
    flags = {
        "power": where.power_active_low,
        "reset": where.reset_active_low,
        "power_led": where.power_led_active_low,
        "hdd_led": where.hdd_led_active_low,
    }
    return AtxWiring(
        chip=where.chip,
        power=where.power_line,
        reset=wired(where.reset_line),
        power_led=wired(where.power_led_line),
        hdd_led=wired(where.hdd_led_line),
        active_low=frozenset(name for name, low in flags.items() if low),
        times=PressTimes(
            short=atx.press_ms / 1000,
            long=atx.long_press_ms / 1000,
            reset=atx.reset_ms / 1000,
            max_press=atx.max_press_ms / 1000,
        ),
        debounce=atx.debounce_ms / 1000,
    )


def named_wirings(atx: AtxConfig) -> dict[str, AtxWiring]:
    """Every wiring a switch port may name: "default" (``[atx]``, when its chip is set) and
    each ``[atx.wirings.NAME]``."""
    from appliance.config.power import DEFAULT_WIRING

    found = {DEFAULT_WIRING: wiring_from_config(atx)} if atx.chip else {}
    for lines in atx.wirings:
        found[lines.name] = wiring_from_config(atx, lines)
    return found


@dataclass(frozen=True, slots=True)
class LedEdge:
    """One edge on an LED input, as the kernel reports it: the logical level after the edge
    (polarity already applied) and a CLOCK_MONOTONIC timestamp (the gpiod default event clock,
    the same clock as ``time.monotonic_ns``)."""

    led: Led
    active: bool
    timestamp_ns: int


EdgeSink = Callable[[Sequence[LedEdge]], None]
"""Where a backend delivers edges, in the event loop, in kernel order."""


class AtxLines(Protocol):
    """The kernel side of ATX: drive the button outputs, read the LED inputs.

    Deliberately dumb: press timing, LED filtering and every rule live above it, in
    :class:`~appliance.atx.control.AtxPower`, so they run (and are tested) the same over the
    simulated board as over real GPIO lines.
    """

    async def open(self, sink: EdgeSink) -> dict[Led, bool]:
        """Claim the lines (outputs released) and start delivering LED edges to ``sink``.
        Returns the wired LEDs' current logical levels."""

    def set_output(self, line: Output, active: bool) -> None:
        """Press (``active``) or release a button output. Must not block."""

    async def close(self) -> None:
        """Release the outputs and the lines."""
