"""ATX power: the target's power and reset buttons and its power/HDD LEDs, wired to GPIO lines.

PROTOCOLS.md ("ATX power"): optocoupler or relay outputs across the motherboard's power and reset
headers, inputs from its power and HDD LEDs. Short press 100-200 ms (on, or an ACPI shutdown
request), long press ≥ 5 s (forced off), reset 100-200 ms; LED inputs debounced (~100 ms); "on"
presses only when the power LED says off, "off" only when it says on.

- :mod:`.status` — the power vocabulary (states, actions, status, refusal) the power facet uses;
- :mod:`.wiring` — :class:`~.wiring.AtxWiring` (one machine's lines, polarities and press times:
  what a KVM switch holds per port) and :class:`~.wiring.AtxLines`, the small interface a
  backend implements (drive an output, report LED edges);
- :mod:`.leds` — LED filtering from timestamped edge events (debounce, activity stretch);
- :mod:`.control` — :class:`~.control.AtxPower`, the power facet over any ``AtxLines``: press
  timing, "on only when off", one action at a time;
- :mod:`.gpio` — the libgpiod v2 backend (imported only when ``[atx]`` names a chip);
- :mod:`.sim` — a simulated motherboard (the demo target and the tests).
"""
