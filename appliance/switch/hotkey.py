"""Hotkey switching: the switch listens on its keyboard port for a key sequence such as
``ScrollLock ScrollLock <n>``, ``Ctrl Ctrl <n>`` or ``* <n>`` (per model), sent through the
appliance's own HID path. About 100 ms between presses is reliable; 50 ms is not (field
reports), hence the default gap. The switch cannot be asked which port is active.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from appliance.switch.driver import SwitchOffline
from hid.keymap import UnknownKey
from hid.keynames import parse_chords

if TYPE_CHECKING:
    from hid.controller import HidController

CLIENT = "switch"
"""The HID client name the presses are made under (released as one, like any client)."""


def chords_for(template: str, port: int) -> list[list[str]]:
    """The chords of *template* with ``{n}`` replaced by *port* (UnknownKey/ValueError if bad)."""
    if "{n}" not in template:
        raise ValueError("the hotkey sequence must contain {n} (the port number)")
    return parse_chords(template.replace("{n}", str(port)))


def check_template(template: str) -> str | None:
    """Why *template* cannot switch ports (None: it can)."""
    try:
        chords_for(template, 1)
    except (UnknownKey, ValueError) as exc:
        return str(exc).strip("'\"")
    return None


class HotkeySwitch:
    name = "hotkey"
    can_query = False
    settles = False
    min_gap = 0.2  # a switch needs a moment after a sequence before it reads the next

    def __init__(self, hid: HidController, template: str, gap: float = 0.1) -> None:
        problem = check_template(template)
        if problem:
            raise ValueError(f"switch.hotkey {template!r}: {problem}")
        self.hid = hid
        self.template = template
        self.gap = gap

    async def select(self, port: int) -> int | None:
        if self.hid.online is False:
            raise SwitchOffline(f"keyboard offline: {self.hid.last_error or 'not answering'}")
        await self.hid.press_chords(CLIENT, chords_for(self.template, port), gap=self.gap)
        return None

    async def query(self) -> int:
        raise NotImplementedError("a hotkey switch cannot be queried")

    async def close(self) -> None:
        return None
