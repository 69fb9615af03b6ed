"""The boot override of each machine: what it boots from next, set by Redfish, taken at boot.

Why here, in the targets layer, and not with the Redfish routes: the machine is what consumes
the override (the demo machine "boots" from the inserted CD when it says ``Cd``; a QEMU target
would map it onto its boot order), and a ``Once`` override must revert the moment the machine
boots, whoever switched it on (Redfish, the console's power button, the front panel, a reset).
Redfish only sets and reports it. On hardware driven through ATX the appliance cannot reach into
the firmware's boot order, so there the override is stored and reported only (docs/redfish.md).

Names follow the Redfish ComputerSystem schema (``BootSourceOverrideTarget`` and friends), so
the API passes them through without a mapping table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal, get_args

BootSource = Literal["None", "Pxe", "Cd", "Usb", "Hdd", "BiosSetup"]
BootEnabled = Literal["Disabled", "Once", "Continuous"]
BootMode = Literal["Legacy", "UEFI"]
BOOT_SOURCES: tuple[BootSource, ...] = get_args(BootSource)
BOOT_ENABLED: tuple[BootEnabled, ...] = get_args(BootEnabled)
BOOT_MODES: tuple[BootMode, ...] = get_args(BootMode)


@dataclass(frozen=True, slots=True)
class BootOverride:
    """One machine's override: the device, whether it applies (once, always, not at all), and
    the firmware mode to boot it in."""

    source: BootSource = "None"
    enabled: BootEnabled = "Disabled"
    mode: BootMode = "UEFI"


class BootSettings:
    """The override of one machine; :meth:`take` is called by the machine as it boots."""

    def __init__(self) -> None:
        self.override = BootOverride()
        self.boots = 0  # how often the machine booted (the tests and the demo screen read it)
        self.last: BootSource = "None"
        """What the machine booted from the last time (as the override said)."""
        self._listeners: list[Callable[[BootOverride], None]] = []

    def set(self, override: BootOverride) -> None:
        self.override = override
        self._changed()

    def take(self) -> BootSource:
        """The machine boots now: the device the override names ("None": its normal order).

        A ``Once`` override is used up: it reverts to ``Disabled`` (the device stays named, as
        Redfish services report it)."""
        o = self.override
        source: BootSource = o.source if o.enabled != "Disabled" else "None"
        self.boots += 1
        self.last = source
        if o.enabled == "Once":
            self.override = replace(o, enabled="Disabled")
        self._changed()
        return source

    def subscribe(self, listener: Callable[[BootOverride], None]) -> Callable[[], None]:
        """Call ``listener`` on every change (a set, a boot); returns the unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _changed(self) -> None:
        for listener in list(self._listeners):
            listener(self.override)


class BootTable:
    """The boot settings of every machine of a target: one, or one per switch port (index 0 is
    port 1). Entries are made on first use, so a hardware target with a switch of any size costs
    nothing until a port's override is set; a demo target hands in its machines' own settings."""

    def __init__(self, settings: Sequence[BootSettings] = ()) -> None:
        self._settings = list(settings)

    def get(self, index: int) -> BootSettings:
        if index < 0:
            raise IndexError(index)
        while len(self._settings) <= index:
            self._settings.append(BootSettings())
        return self._settings[index]
