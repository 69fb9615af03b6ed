"""HID reports → QMP ``input-send-event`` events: what changed since the previous report.

Why decode reports rather than take key names from the API: every producer of input (REST,
WebSocket, WebRTC, DuckyScript, local passthrough) already ends in the HidController's reports,
with their order, coalescing and "all released" guarantee. Decoding the same bytes a USB host
would receive makes a QEMU guest one more HID output, and one report becomes one QMP command
whose events QEMU applies in order (releases before presses, so a chord's rollover is exact).

Keys are QEMU qcodes (qapi/ui.json ``QKeyCode``); the pointer is QEMU's absolute range 0..32767,
which is the HID tablet's range too, so coordinates pass unchanged. The wheel is a press and
release of ``wheel-up``/``wheel-down`` per notch. Horizontal wheel (AC Pan) has no button in
QEMU 7.2 (``wheel-left``/``wheel-right`` arrived in 8.1) and is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hid.keymap import ERROR_ROLLOVER
from hid.reports import Report, ReportKind

Event = dict[str, Any]


def _table() -> dict[int, str]:
    table = {0x04 + i: chr(ord("a") + i) for i in range(26)}
    table.update({0x1E + i: str((i + 1) % 10) for i in range(10)})  # 1..9, 0
    table.update({0x3A + i: f"f{i + 1}" for i in range(12)})
    table.update({0x68 + i: f"f{i + 13}" for i in range(12)})
    table.update({0x59 + i: f"kp_{i + 1}" for i in range(9)})
    table.update(
        {
            0x28: "ret",
            0x29: "esc",
            0x2A: "backspace",
            0x2B: "tab",
            0x2C: "spc",
            0x2D: "minus",
            0x2E: "equal",
            0x2F: "bracket_left",
            0x30: "bracket_right",
            0x31: "backslash",
            0x32: "backslash",  # Non-US # ~: the same scancode on PS/2
            0x33: "semicolon",
            0x34: "apostrophe",
            0x35: "grave_accent",
            0x36: "comma",
            0x37: "dot",
            0x38: "slash",
            0x39: "caps_lock",
            0x46: "print",
            0x47: "scroll_lock",
            0x48: "pause",
            0x49: "insert",
            0x4A: "home",
            0x4B: "pgup",
            0x4C: "delete",
            0x4D: "end",
            0x4E: "pgdn",
            0x4F: "right",
            0x50: "left",
            0x51: "down",
            0x52: "up",
            0x53: "num_lock",
            0x54: "kp_divide",
            0x55: "kp_multiply",
            0x56: "kp_subtract",
            0x57: "kp_add",
            0x58: "kp_enter",
            0x62: "kp_0",
            0x63: "kp_decimal",
            0x64: "less",
            0x65: "compose",
            0x66: "power",
            0x67: "kp_equals",
            0x85: "kp_comma",
            0x87: "ro",
            0x88: "katakanahiragana",
            0x89: "yen",
            0x8A: "henkan",
            0x8B: "muhenkan",
            0x90: "lang1",
            0x91: "lang2",
        }
    )
    return table


USAGE_TO_QCODE: dict[int, str] = _table()
MODIFIER_QCODES = ("ctrl", "shift", "alt", "meta_l", "ctrl_r", "shift_r", "alt_r", "meta_r")
"""Bits 0..7 of the boot report's modifier byte (LeftCtrl … RightGUI)."""
BUTTON_NAMES = ("left", "right", "middle", "side", "extra")
"""HID button bits 0..4 as QEMU's InputButton names (back = side, forward = extra)."""


def key_event(qcode: str, down: bool) -> Event:
    return {"type": "key", "data": {"down": down, "key": {"type": "qcode", "data": qcode}}}


def _button(name: str, down: bool) -> Event:
    return {"type": "btn", "data": {"down": down, "button": name}}


def _axis(kind: str, axis: str, value: int) -> Event:
    return {"type": kind, "data": {"axis": axis, "value": value}}


def _signed(byte: int) -> int:
    return byte - 256 if byte > 127 else byte


@dataclass
class InputDecoder:
    """The previous report of each kind, so each new one becomes the events that differ.

    One decoder per guest: a guest's keyboard holds its own keys (switching ports does not
    release or re-press anything in the guest left behind, as a physical switch would not).
    """

    modifiers: int = 0
    keys: tuple[int, ...] = ()
    buttons: int = 0
    abs_pos: tuple[int, int] | None = None
    unknown: set[int] = field(default_factory=set)
    """Usages with no qcode that were dropped (shown in logs and tests)."""

    def events(self, report: Report) -> list[Event]:
        if report.kind is ReportKind.KEYBOARD:
            return self._keyboard(report.data)
        if report.kind is ReportKind.MOUSE_ABS:
            return self._mouse_abs(report.data)
        return self._mouse_rel(report.data)

    def release_all(self) -> list[Event]:
        """Events that let go of everything this decoder holds (a guest left powered off)."""
        events = [key_event(q, False) for q in self._qcodes(self.keys)]
        events += [
            key_event(MODIFIER_QCODES[b], False) for b in range(8) if self.modifiers >> b & 1
        ]
        events += [_button(BUTTON_NAMES[b], False) for b in range(5) if self.buttons >> b & 1]
        self.modifiers, self.keys, self.buttons = 0, (), 0
        return events

    def _qcodes(self, usages: tuple[int, ...]) -> list[str]:
        found = []
        for usage in usages:
            qcode = USAGE_TO_QCODE.get(usage)
            if qcode is None:
                self.unknown.add(usage)
            else:
                found.append(qcode)
        return found

    def _keyboard(self, data: bytes) -> list[Event]:
        modifiers = data[0]
        slots = data[2:8]
        if all(k == ERROR_ROLLOVER for k in slots):
            keys = self.keys  # rollover: the keys held stay as they were (HID 1.11 §C)
        else:
            keys = tuple(k for k in slots if k)
        events: list[Event] = []
        released = tuple(k for k in self.keys if k not in keys)
        pressed = tuple(k for k in keys if k not in self.keys)
        events += [key_event(q, False) for q in self._qcodes(released)]
        for bit in range(8):
            was, now = self.modifiers >> bit & 1, modifiers >> bit & 1
            if was and not now:
                events.append(key_event(MODIFIER_QCODES[bit], False))
        for bit in range(8):
            was, now = self.modifiers >> bit & 1, modifiers >> bit & 1
            if now and not was:
                events.append(key_event(MODIFIER_QCODES[bit], True))
        events += [key_event(q, True) for q in self._qcodes(pressed)]
        self.modifiers, self.keys = modifiers, keys
        return events

    def _buttons(self, buttons: int) -> list[Event]:
        events = []
        for bit, name in enumerate(BUTTON_NAMES):
            was, now = self.buttons >> bit & 1, buttons >> bit & 1
            if was != now:
                events.append(_button(name, bool(now)))
        self.buttons = buttons & 0x1F
        return events

    @staticmethod
    def _wheel(wheel: int) -> list[Event]:
        name = "wheel-up" if wheel > 0 else "wheel-down"
        events = []
        for _ in range(abs(wheel)):
            events += [_button(name, True), _button(name, False)]
        return events

    def _mouse_abs(self, data: bytes) -> list[Event]:
        x = data[1] | data[2] << 8
        y = data[3] | data[4] << 8
        events: list[Event] = []
        if (x, y) != self.abs_pos:
            events += [_axis("abs", "x", x), _axis("abs", "y", y)]
            self.abs_pos = (x, y)
        events += self._buttons(data[0])
        events += self._wheel(_signed(data[5]) if len(data) > 5 else 0)
        return events

    def _mouse_rel(self, data: bytes) -> list[Event]:
        dx, dy = _signed(data[1]), _signed(data[2])
        events: list[Event] = []
        if dx:
            events.append(_axis("rel", "x", dx))
        if dy:
            events.append(_axis("rel", "y", dy))
        events += self._buttons(data[0])
        events += self._wheel(_signed(data[3]) if len(data) > 3 else 0)
        return events
