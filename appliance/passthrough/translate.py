"""evdev events → HidController calls for one local device, under that device's client name.

Why a client per device: the controller keeps what each client holds, so when a keyboard is
unplugged with Shift down, releasing *its* client lets go of exactly its keys and leaves a
browser user's keys alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

from appliance.passthrough.keycodes import (
    BUTTON_TO_NAME,
    EV_KEY,
    EV_REL,
    EV_SYN,
    KEY_REPEAT,
    KEY_TO_CODE,
    REL_HWHEEL,
    REL_WHEEL,
    REL_X,
    REL_Y,
    SYN_DROPPED,
    SYN_REPORT,
)

log = logging.getLogger(__name__)


class HidSink(Protocol):
    """The part of :class:`hid.controller.HidController` passthrough drives."""

    def key(self, client: str, key: str | int, down: bool) -> None: ...
    def release_client(self, client: str) -> None: ...
    def mouse_rel(self, dx: int, dy: int) -> None: ...
    def mouse_button(self, client: str, button: str, down: bool) -> None: ...
    def mouse_wheel(self, dy: int, dx: int = 0) -> None: ...


@dataclass
class Translator:
    """Relative motion and wheel are summed until ``SYN_REPORT`` (the kernel's frame boundary),
    so one physical movement is one HID report, as the device meant it. Auto-repeat (value 2)
    is dropped: the target repeats a held key itself."""

    hid: HidSink
    client: str
    _dx: int = 0
    _dy: int = 0
    _wheel: int = 0
    _pan: int = 0
    _dropping: bool = False
    held: set[str] = field(default_factory=set)
    """``KeyboardEvent.code`` names down on the local keyboard (hotkey chords look at them)."""

    def key(self, code: int, value: int) -> None:
        """A key or button event (EV_KEY) that the hotkey detector let through."""
        if value == KEY_REPEAT:
            return
        down = bool(value)
        name = KEY_TO_CODE.get(code)
        if name is not None:
            self.hid.key(self.client, name, down)
            return
        button = BUTTON_TO_NAME.get(code)
        if button is not None:
            self.hid.mouse_button(self.client, button, down)
        else:
            log.debug("passthrough: key code %d has no HID usage; dropped", code)

    def track(self, code: int, value: int) -> str | None:
        """Note a key's local state (before the hotkey detector sees it); its code name."""
        name = KEY_TO_CODE.get(code)
        if name is not None and value != KEY_REPEAT:
            (self.held.add if value else self.held.discard)(name)
        return name

    def other(self, type_: int, code: int, value: int) -> None:
        """Everything that is not a key: relative axes and the frame boundaries."""
        if type_ == EV_SYN:
            if code == SYN_DROPPED:
                # The kernel's buffer overflowed: key states are unknown until resynced. Letting
                # go of everything is safe (the user presses again); a stuck key is not.
                self._dropping = True
                self.release()
            elif code == SYN_REPORT:
                if self._dropping:
                    self._dropping = False
                else:
                    self._flush()
        elif type_ == EV_REL and not self._dropping:
            if code == REL_X:
                self._dx += value
            elif code == REL_Y:
                self._dy += value
            elif code == REL_WHEEL:
                self._wheel += value
            elif code == REL_HWHEEL:
                self._pan += value

    def _flush(self) -> None:
        if self._dx or self._dy:
            self.hid.mouse_rel(self._dx, self._dy)
        if self._wheel or self._pan:
            self.hid.mouse_wheel(self._wheel, self._pan)
        self._dx = self._dy = self._wheel = self._pan = 0

    def release(self) -> None:
        """The device is gone or let go: everything it held is released on the target."""
        self.held.clear()
        self._dx = self._dy = self._wheel = self._pan = 0
        self.hid.release_client(self.client)


__all__ = ["EV_KEY", "HidSink", "Translator"]
