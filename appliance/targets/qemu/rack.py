"""QemuRack: the target's guests and which one is on the console (the qemu switch moves it).

Like the demo rack (:mod:`appliance.targets.demo.rack`): the display, HID output, power and media
facets each ask the rack for "the guest", so a switch changes what every facet reaches without
any of them knowing about switching. A single guest is a rack of one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from appliance.targets.qemu.guest import QemuGuest


class QemuRack:
    def __init__(self, guests: Sequence[QemuGuest]) -> None:
        if not guests:
            raise ValueError("a QEMU target needs at least one guest")
        self.guests = list(guests)
        self._active = 0
        self._select_listeners: list[Callable[[], None]] = []
        self._change_listeners: list[Callable[[], None]] = []
        self._led_listeners: list[Callable[[int], None]] = []
        self._input_listeners: list[Callable[[], None]] = []
        for guest in self.guests:
            guest.on_change(self._guest_changed(guest))
            guest.on_leds(self._guest_leds(guest))

    @property
    def active(self) -> int:
        """0-based index of the guest on the console."""
        return self._active

    @property
    def guest(self) -> QemuGuest:
        return self.guests[self._active]

    def select(self, index: int) -> None:
        if not 0 <= index < len(self.guests):
            raise ValueError(f"no guest {index + 1} among {len(self.guests)}")
        if index == self._active:
            return
        self._active = index
        for callback in list(self._select_listeners):
            callback()
        self._announce_leds(self.guest.leds)
        for callback in list(self._change_listeners):
            callback()

    def on_select(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call *callback()* after another guest came onto the console."""
        return _subscribe(self._select_listeners, callback)

    def on_change(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call *callback()* when the active guest's status changes or another one is selected."""
        return _subscribe(self._change_listeners, callback)

    def on_leds(self, callback: Callable[[int], None]) -> Callable[[], None]:
        """The active guest's keyboard LEDs (HID bits)."""
        return _subscribe(self._led_listeners, callback)

    def on_input(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call *callback()* after input reached the active guest (the display then looks
        harder for the change it causes)."""
        return _subscribe(self._input_listeners, callback)

    def input_sent(self) -> None:
        for callback in list(self._input_listeners):
            callback()

    async def start(self) -> None:
        for guest in self.guests:
            await guest.start()

    async def close(self) -> None:
        for guest in self.guests:
            await guest.close()

    def _guest_changed(self, guest: QemuGuest) -> Callable[[], None]:
        def changed() -> None:
            if guest is self.guest:
                for callback in list(self._change_listeners):
                    callback()

        return changed

    def _guest_leds(self, guest: QemuGuest) -> Callable[[int], None]:
        def changed(leds: int) -> None:
            if guest is self.guest:
                self._announce_leds(leds)

        return changed

    def _announce_leds(self, leds: int) -> None:
        for callback in list(self._led_listeners):
            callback(leds)


def _subscribe(callbacks: list[Any], callback: Any) -> Callable[[], None]:
    callbacks.append(callback)

    def unsubscribe() -> None:
        if callback in callbacks:
            callbacks.remove(callback)

    return unsubscribe
