"""The small interface every HID output backend implements (otg, ch9329, qemu, demo).

A backend only moves one report at a time to the target and reports back what the target says
(online or not, keyboard LEDs). Ordering, coalescing, retry and the "all released" guarantee live
once, in :class:`hid.controller.HidController`, so every backend gets them for free.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass

from hid.reports import Report


class TargetOffline(Exception):
    """The target is not listening (no host, powered off, cable out, port gone).

    The report was *not* delivered; the controller keeps it and retries in order.
    """


class OutputError(Exception):
    """A backend failure that is not "offline": bad configuration, unexpected errno."""


@dataclass(frozen=True, slots=True)
class Leds:
    """Keyboard LED output report from the host (bit0 Num, bit1 Caps, bit2 Scroll...)."""

    value: int = 0

    @property
    def num_lock(self) -> bool:
        return bool(self.value & 0x01)

    @property
    def caps_lock(self) -> bool:
        return bool(self.value & 0x02)

    @property
    def scroll_lock(self) -> bool:
        return bool(self.value & 0x04)

    def as_dict(self) -> dict[str, bool]:
        return {"num": self.num_lock, "caps": self.caps_lock, "scroll": self.scroll_lock}


LedListener = Callable[[Leds], None]
OnlineListener = Callable[[bool, str | None], None]


class HidOutput(abc.ABC):
    """Deliver reports to the target and surface LEDs.

    The controller calls :meth:`write` one at a time per device, but the keyboard's and the
    mouse's writes may overlap: a backend with one shared channel (a serial chip, a QMP socket)
    serialises them itself.
    """

    name: str = "output"

    def __init__(self) -> None:
        self.leds = Leds()
        self._led_listeners: list[LedListener] = []
        self._online_listeners: list[OnlineListener] = []

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Acquire devices. Must not raise for a missing target: that is TargetOffline later."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release devices; called after the controller sent its final release reports."""

    @abc.abstractmethod
    async def write(self, report: Report) -> None:
        """Deliver *report*, or raise :class:`TargetOffline` (not delivered), in bounded time."""

    def on_leds(self, listener: LedListener) -> None:
        self._led_listeners.append(listener)

    def on_online(self, listener: OnlineListener) -> None:
        self._online_listeners.append(listener)

    def _set_online(self, online: bool, reason: str | None = None) -> None:
        """Report what the backend learned between writes (a keep-alive, a device event), so the
        UI shows "target offline" without waiting for the next key press to fail."""
        for listener in list(self._online_listeners):
            listener(online, reason)

    def _set_leds(self, value: int) -> None:
        leds = Leds(value & 0xFF)
        if leds == self.leds:
            return
        self.leds = leds
        for listener in list(self._led_listeners):
            listener(leds)


class MemoryOutput(HidOutput):
    """Collects reports in a list: the output for unit tests and for dry runs."""

    name = "memory"

    def __init__(self) -> None:
        super().__init__()
        self.reports: list[Report] = []
        self.offline = False

    async def write(self, report: Report) -> None:
        if self.offline:
            raise TargetOffline("memory output set offline")
        self.reports.append(report)
