"""Map browser ``KeyboardEvent.code`` values to USB HID usages (Keyboard/Keypad page 0x07).

``code`` names a physical key position, independent of the user's layout, which is exactly what
a USB keyboard sends: the *target* applies its own layout. So the browser console, the REST API
and DuckyScript all speak ``code`` names (or raw usages) and never characters.
"""

from __future__ import annotations

from typing import Final

# Modifier usages 0xE0..0xE7 map onto bits 0..7 of the boot report's first byte.
MODIFIER_USAGES: Final = range(0xE0, 0xE8)
ERROR_ROLLOVER: Final = 0x01


def _letters_and_digits() -> dict[str, int]:
    table = {f"Key{chr(ord('A') + i)}": 0x04 + i for i in range(26)}
    table.update({f"Digit{d}": 0x1E + (d - 1) for d in range(1, 10)})
    table["Digit0"] = 0x27
    table.update({f"F{n}": 0x3A + (n - 1) for n in range(1, 13)})
    table.update({f"F{n}": 0x68 + (n - 13) for n in range(13, 25)})
    table.update({f"Numpad{d}": 0x59 + (d - 1) for d in range(1, 10)})
    table["Numpad0"] = 0x62
    return table


CODE_TO_USAGE: Final[dict[str, int]] = {
    **_letters_and_digits(),
    # Writing-system keys
    "Enter": 0x28,
    "Escape": 0x29,
    "Backspace": 0x2A,
    "Tab": 0x2B,
    "Space": 0x2C,
    "Minus": 0x2D,
    "Equal": 0x2E,
    "BracketLeft": 0x2F,
    "BracketRight": 0x30,
    "Backslash": 0x31,
    # 0x32 (Non-US # and ~) is where ISO keyboards put the key browsers report as Backslash.
    "Semicolon": 0x33,
    "Quote": 0x34,
    "Backquote": 0x35,
    "Comma": 0x36,
    "Period": 0x37,
    "Slash": 0x38,
    "CapsLock": 0x39,
    # Function / control block
    "PrintScreen": 0x46,
    "ScrollLock": 0x47,
    "Pause": 0x48,
    "Insert": 0x49,
    "Home": 0x4A,
    "PageUp": 0x4B,
    "Delete": 0x4C,
    "End": 0x4D,
    "PageDown": 0x4E,
    "ArrowRight": 0x4F,
    "ArrowLeft": 0x50,
    "ArrowDown": 0x51,
    "ArrowUp": 0x52,
    # Keypad
    "NumLock": 0x53,
    "NumpadDivide": 0x54,
    "NumpadMultiply": 0x55,
    "NumpadSubtract": 0x56,
    "NumpadAdd": 0x57,
    "NumpadEnter": 0x58,
    "NumpadDecimal": 0x63,
    "NumpadEqual": 0x67,
    "NumpadComma": 0x85,
    "NumpadParenLeft": 0xB6,
    "NumpadParenRight": 0xB7,
    "NumpadBackspace": 0xBB,
    "NumpadHash": 0xCC,
    "NumpadStar": 0x55,
    "NumpadMemoryStore": 0xD0,
    "NumpadMemoryRecall": 0xD1,
    "NumpadMemoryClear": 0xD2,
    "NumpadMemoryAdd": 0xD3,
    "NumpadMemorySubtract": 0xD4,
    "NumpadClear": 0xD8,
    "NumpadClearEntry": 0xD9,
    # ISO / JIS / Korean extras
    "IntlBackslash": 0x64,
    "IntlRo": 0x87,
    "KanaMode": 0x88,
    "IntlYen": 0x89,
    "Convert": 0x8A,
    "NonConvert": 0x8B,
    "Lang1": 0x90,
    "Lang2": 0x91,
    "Lang3": 0x92,
    "Lang4": 0x93,
    "Lang5": 0x94,
    # Misc
    "ContextMenu": 0x65,
    "Power": 0x66,
    "Help": 0x75,
    "Again": 0x79,
    "Undo": 0x7A,
    "Cut": 0x7B,
    "Copy": 0x7C,
    "Paste": 0x7D,
    "Find": 0x7E,
    "Props": 0x76,
    "Select": 0x77,
    "Open": 0x74,
    "AudioVolumeMute": 0x7F,
    "AudioVolumeUp": 0x80,
    "AudioVolumeDown": 0x81,
    # Modifiers
    "ControlLeft": 0xE0,
    "ShiftLeft": 0xE1,
    "AltLeft": 0xE2,
    "MetaLeft": 0xE3,
    "ControlRight": 0xE4,
    "ShiftRight": 0xE5,
    "AltRight": 0xE6,
    "MetaRight": 0xE7,
}

# Legacy names some browsers still emit (Firefox < 118 on Linux, old Chrome).
CODE_ALIASES: Final[dict[str, str]] = {
    "OSLeft": "MetaLeft",
    "OSRight": "MetaRight",
    "VolumeMute": "AudioVolumeMute",
    "VolumeUp": "AudioVolumeUp",
    "VolumeDown": "AudioVolumeDown",
}

USAGE_TO_CODE: Final[dict[int, str]] = {}
for _code, _usage in CODE_TO_USAGE.items():
    USAGE_TO_CODE.setdefault(_usage, _code)


class UnknownKey(ValueError):
    """A key name that maps to no HID usage; the message names it."""


def usage_for(key: str | int) -> int:
    """Resolve a ``code`` name (or a raw usage 0x04..0xE7) to a HID usage."""
    if isinstance(key, bool):
        raise UnknownKey(f"unknown key {key!r}")
    if isinstance(key, int):
        if 0x04 <= key <= 0xE7:
            return key
        raise UnknownKey(f"HID usage {key:#x} is outside 0x04..0xE7")
    code = CODE_ALIASES.get(key, key)
    try:
        return CODE_TO_USAGE[code]
    except KeyError:
        raise UnknownKey(f"unknown key code {key!r}") from None


def is_modifier(usage: int) -> bool:
    return usage in MODIFIER_USAGES


def modifier_bit(usage: int) -> int:
    return 1 << (usage - 0xE0)
