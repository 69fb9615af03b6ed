"""A simulated host: turns boot keyboard reports into key events and characters.

It reads the 8-byte reports exactly as a USB host's keyboard driver does (what changed since the
previous report is what was pressed or released) and applies a target layout the way an OS does
(Shift, AltGr, Caps Lock, Num Lock, dead keys). Tests use it to check that what the appliance
sends *means* the intended text on the target; the demo target uses it to show typed text.

Host choices, where Windows and Linux/XKB differ, are documented in docs/layouts.md:
- HID usage 0x32 (Non-US #) is the same key as 0x31 (Backslash), as on Linux and Windows.
- AltGr (RightAlt) on a key with no AltGr characters gives the plain character (XKB); Shift+AltGr
  on a key that has an AltGr but no Shift+AltGr character gives nothing (XKB: NoSymbol).
- A dead key then Space gives the accent; then a character it does not compose with gives the
  accent followed by that character; two dead keys give both accents (Windows).
- Caps Lock inverts Shift on letter keys and upper-cases a lone lower-case letter elsewhere (fr
  ``é`` → ``É``), as XKB does. Ctrl, Alt (left, or right on layouts without AltGr) or GUI turn a
  key into a shortcut: no character.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from hid.keymap import ERROR_ROLLOVER, USAGE_TO_CODE, is_modifier, modifier_bit
from hid.layouts import KeyOutput, KeyTableLayout, get_layout
from hid.reports import Report, ReportKind
from hid.text import LALT, LCTRL, LGUI, LSHIFT, RALT, RCTRL, RGUI, RSHIFT, Layout

NUM_LOCK_LED, CAPS_LOCK_LED, SCROLL_LOCK_LED = 0x01, 0x02, 0x04

_NON_US_HASH = 0x32
_BACKSLASH = 0x31
_LOCK_KEYS = {0x53: NUM_LOCK_LED, 0x39: CAPS_LOCK_LED, 0x47: SCROLL_LOCK_LED}
# Keys that type the same character on every layout and with any Shift/AltGr state.
_FIXED = {0x28: "\n", 0x58: "\n", 0x2B: "\t", 0x2C: " "}
_BACKSPACE = 0x2A
_KEYPAD_OPERATORS = {0x54: "/", 0x55: "*", 0x56: "-", 0x57: "+"}
_KEYPAD_DIGITS = {0x59 + i: str(i + 1) for i in range(9)} | {0x62: "0"}
_KEYPAD_DECIMAL = 0x63


@dataclass(frozen=True, slots=True)
class KeyEvent:
    """One key going down or up, as the host saw it.

    ``char`` is what the key down produced: one character, the accent plus a character after a
    dead key that did not compose, or None (modifier, dead key, navigation, shortcut, key up).
    ``modifiers`` is the modifier byte in effect after this event.
    """

    usage: int
    code: str | None
    down: bool
    modifiers: int
    char: str | None = None


def _as_table(layout: str | Layout) -> KeyTableLayout:
    if isinstance(layout, str):
        return get_layout(layout)
    if isinstance(layout, KeyTableLayout):
        return layout
    raise TypeError(f"HostKeyboard needs a key table layout (hid.layouts), not {layout!r}")


def _is_letter_key(base: KeyOutput | None, shifted: KeyOutput | None) -> bool:
    """A key Caps Lock treats as a letter: its Shift level is its base, upper-cased."""
    return (
        base is not None
        and shifted is not None
        and not base.dead
        and not shifted.dead
        and base.char.islower()
        and base.char.upper() == shifted.char
    )


@dataclass(init=False, eq=False)
class HostKeyboard:
    """Feed it keyboard reports in order; it keeps the host-side state and emits key events."""

    layout: KeyTableLayout
    leds: int = 0
    modifiers: int = 0
    _byte_modifiers: int = 0
    pressed: list[int] = field(default_factory=list)
    dead: str | None = None
    text: str = ""

    def __init__(self, layout: str | Layout = "us", leds: int = 0) -> None:
        self.layout = _as_table(layout)
        self.leds = leds  # bit0 Num, bit1 Caps, bit2 Scroll; set it to mirror the host's LEDs
        self.modifiers = 0  # modifier bits in effect: the report's byte plus array modifiers
        self._byte_modifiers = 0
        self.pressed = []  # usages held in the key array, in press order
        self.dead = None  # accent of a pending dead key
        self.text = ""  # every character produced so far, "\b" for Backspace included

    def feed(self, data: bytes | Report) -> list[KeyEvent]:
        """Apply one boot keyboard report; return its events in the order Linux reports them:
        modifier changes, then released keys, then pressed keys."""
        if isinstance(data, Report):
            if data.kind is not ReportKind.KEYBOARD:
                raise ValueError(f"not a keyboard report: {data.kind.value}")
            data = data.data
        if len(data) != 8:
            raise ValueError(f"boot keyboard report must be 8 bytes, got {len(data)}")
        events: list[KeyEvent] = []
        mods = data[0]
        for bit in range(8):
            mask = 1 << bit
            if (mods ^ self._byte_modifiers) & mask:
                self._byte_modifiers ^= mask
                self._update_modifiers()
                usage = 0xE0 + bit
                events.append(
                    KeyEvent(usage, USAGE_TO_CODE.get(usage), bool(mods & mask), self.modifiers)
                )
        slots = data[2:]
        if ERROR_ROLLOVER in slots:
            # Phantom state: the keyboard cannot tell which keys are down. Keep the old ones.
            return events
        now: list[int] = []
        for usage in slots:
            if usage and usage not in now:
                now.append(usage)
        for usage in [u for u in self.pressed if u not in now]:
            self.pressed.remove(usage)
            self._update_modifiers()
            events.append(KeyEvent(usage, self._code(usage), False, self.modifiers))
        for usage in [u for u in now if u not in self.pressed]:
            self.pressed.append(usage)
            events.append(self._key_down(usage))
        return events

    def _update_modifiers(self) -> None:
        # Some keyboards also list modifier usages in the key array; either way they are held.
        held = [modifier_bit(u) for u in self.pressed if is_modifier(u)]
        self.modifiers = self._byte_modifiers | sum(held)

    def _code(self, usage: int) -> str | None:
        return USAGE_TO_CODE.get(_BACKSLASH if usage == _NON_US_HASH else usage)

    def _key_down(self, usage: int) -> KeyEvent:
        self._update_modifiers()
        if is_modifier(usage):
            return KeyEvent(usage, self._code(usage), True, self.modifiers)
        if usage in _LOCK_KEYS:
            self.leds ^= _LOCK_KEYS[usage]
        char = self._char(usage)
        if char is not None:
            self.text += char
        return KeyEvent(usage, self._code(usage), True, self.modifiers, char)

    # ----------------------------------------------------------------- characters
    def _char(self, usage: int) -> str | None:
        mods = self.modifiers
        shortcut = LCTRL | RCTRL | LALT | LGUI | RGUI
        if not self.layout.has_altgr:
            shortcut |= RALT
        if mods & shortcut:
            return None
        if usage == _BACKSPACE:
            if self.dead is not None:
                self.dead = None  # Backspace cancels a pending dead key and is used up
                return None
            return "\b"
        shift = bool(mods & (LSHIFT | RSHIFT))
        out = self._output(usage, shift, altgr=bool(mods & RALT))
        if out is None:
            return None
        if out.dead:
            if self.dead is None:
                self.dead = out.char
                return None
            pending, self.dead = self.dead, None
            return pending + out.char
        if self.dead is not None:
            pending, self.dead = self.dead, None
            return self.layout.compose(pending, out.char)
        return out.char

    def _output(self, usage: int, shift: bool, altgr: bool) -> KeyOutput | None:
        if usage in _FIXED:
            return KeyOutput(_FIXED[usage])
        if usage in _KEYPAD_OPERATORS:
            return KeyOutput(_KEYPAD_OPERATORS[usage])
        if usage in _KEYPAD_DIGITS or usage == _KEYPAD_DECIMAL:
            # Num Lock on: digits; off, or Shift held: navigation keys (no character).
            if not self.leds & NUM_LOCK_LED or shift:
                return None
            if usage == _KEYPAD_DECIMAL:
                return KeyOutput(self.layout.keypad_decimal)
            return KeyOutput(_KEYPAD_DIGITS[usage])
        levels = self.layout.keys.get(_BACKSLASH if usage == _NON_US_HASH else usage)
        if levels is None:
            return None
        base, shifted, third, fourth = levels
        if altgr and (third or fourth):
            return fourth if shift else third
        caps = bool(self.leds & CAPS_LOCK_LED)
        if caps and _is_letter_key(base, shifted):
            return base if shift else shifted
        out = shifted if shift else base
        if caps and out is not None and not out.dead and out.char.islower():
            upper = out.char.upper()
            if len(upper) == 1:
                return KeyOutput(upper)
        return out


def decode_reports(reports: Iterable[bytes | Report], layout: str | Layout = "us") -> str:
    """The text a fresh host with *layout* shows after *reports* (mouse reports are skipped)."""
    host = HostKeyboard(layout)
    for report in reports:
        if isinstance(report, Report) and report.kind is not ReportKind.KEYBOARD:
            continue
        host.feed(report)
    return host.text
