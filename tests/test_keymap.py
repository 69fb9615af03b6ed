"""Every KeyboardEvent.code a PC keyboard sends maps to the right HID usage.

The code lists are the W3C UI Events KeyboardEvent code values of the standard 101/104 (US),
105 (ISO), 106 (JIS) and 107 (ABNT2 Brazilian) layouts, plus the keypad and function rows.
"""

from __future__ import annotations

import pytest

from hid.keymap import CODE_TO_USAGE, USAGE_TO_CODE, UnknownKey, usage_for
from hid.keynames import key_code, parse_chords

ALPHANUMERIC_104 = [
    "Backquote", *[f"Digit{d}" for d in range(10)], "Minus", "Equal", "Backspace",
    "Tab", *[f"Key{c}" for c in "QWERTYUIOP"], "BracketLeft", "BracketRight", "Backslash",
    "CapsLock", *[f"Key{c}" for c in "ASDFGHJKL"], "Semicolon", "Quote", "Enter",
    "ShiftLeft", *[f"Key{c}" for c in "ZXCVBNM"], "Comma", "Period", "Slash", "ShiftRight",
    "ControlLeft", "MetaLeft", "AltLeft", "Space", "AltRight", "MetaRight", "ContextMenu",
    "ControlRight",
]  # fmt: skip
ISO_105_EXTRA = ["IntlBackslash"]
JIS_106_EXTRA = ["IntlYen", "IntlRo", "NonConvert", "Convert", "KanaMode", "Lang1", "Lang2"]
ABNT2_107_EXTRA = ["IntlRo", "NumpadComma"]
CONTROL_PAD = ["Insert", "Delete", "Home", "End", "PageUp", "PageDown"]
ARROWS = ["ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight"]
NUMPAD = [
    "NumLock", "NumpadDivide", "NumpadMultiply", "NumpadSubtract", "NumpadAdd", "NumpadEnter",
    "NumpadDecimal", *[f"Numpad{d}" for d in range(10)],
]  # fmt: skip
FUNCTION = ["Escape", *[f"F{n}" for n in range(1, 25)], "PrintScreen", "ScrollLock", "Pause"]
EXTRA = ["Power"]

ALL = sorted(
    set(ALPHANUMERIC_104 + ISO_105_EXTRA + JIS_106_EXTRA + ABNT2_107_EXTRA)
    | set(CONTROL_PAD + ARROWS + NUMPAD + FUNCTION + EXTRA)
)

# Usages from the HID Usage Tables, Keyboard/Keypad page (0x07), for spot checks.
KNOWN = {
    "KeyA": 0x04, "KeyZ": 0x1D, "Digit1": 0x1E, "Digit0": 0x27, "Enter": 0x28, "Escape": 0x29,
    "Backspace": 0x2A, "Tab": 0x2B, "Space": 0x2C, "Minus": 0x2D, "Backquote": 0x35,
    "Slash": 0x38, "CapsLock": 0x39, "F1": 0x3A, "F12": 0x45, "PrintScreen": 0x46,
    "ScrollLock": 0x47, "Pause": 0x48, "Insert": 0x49, "Home": 0x4A, "PageUp": 0x4B,
    "Delete": 0x4C, "End": 0x4D, "PageDown": 0x4E, "ArrowRight": 0x4F, "ArrowLeft": 0x50,
    "ArrowDown": 0x51, "ArrowUp": 0x52, "NumLock": 0x53, "NumpadDivide": 0x54,
    "NumpadEnter": 0x58, "Numpad1": 0x59, "Numpad0": 0x62, "NumpadDecimal": 0x63,
    "IntlBackslash": 0x64, "ContextMenu": 0x65, "Power": 0x66, "F13": 0x68, "F24": 0x73,
    "NumpadComma": 0x85, "IntlRo": 0x87, "KanaMode": 0x88, "IntlYen": 0x89, "Convert": 0x8A,
    "NonConvert": 0x8B, "Lang1": 0x90, "Lang2": 0x91, "ControlLeft": 0xE0, "ShiftLeft": 0xE1,
    "AltLeft": 0xE2, "MetaLeft": 0xE3, "ControlRight": 0xE4, "ShiftRight": 0xE5,
    "AltRight": 0xE6, "MetaRight": 0xE7,
}  # fmt: skip


@pytest.mark.parametrize("code", ALL)
def test_every_standard_layout_code_has_a_usage(code: str) -> None:
    assert 0x04 <= usage_for(code) <= 0xE7


def test_known_usages() -> None:
    assert {code: CODE_TO_USAGE[code] for code in KNOWN} == KNOWN


def test_distinct_keys_never_share_a_usage() -> None:
    keys = [c for c in ALL if c != "NumpadStar"]
    usages = [usage_for(c) for c in keys]
    assert len(set(usages)) == len(usages)


def test_reverse_map_names_every_usage() -> None:
    for code in ALL:
        assert usage_for(USAGE_TO_CODE[usage_for(code)]) == usage_for(code)


def test_legacy_browser_names() -> None:
    assert usage_for("OSLeft") == 0xE3 and usage_for("OSRight") == 0xE7


@pytest.mark.parametrize("bad", ["", "keya", "KeyÄ", "F25", 0x03, 0xE8, True])
def test_unknown_keys_are_refused(bad: str | int) -> None:
    with pytest.raises(UnknownKey):
        usage_for(bad)


def test_friendly_names_and_chords() -> None:
    assert parse_chords("ctrl+alt+del") == [["ControlLeft", "AltLeft", "Delete"]]
    assert parse_chords("CTRL+ALT+F2 enter") == [["ControlLeft", "AltLeft", "F2"], ["Enter"]]
    assert key_code("altgr") == "AltRight" and key_code("win") == "MetaLeft"
    assert key_code("a") == "KeyA" and key_code("7") == "Digit7" and key_code("keyb") == "KeyB"
    for bad in ["ctrl+", "ctrl++a", "", "ctrl+hyper"]:
        with pytest.raises(UnknownKey):
            parse_chords(bad)
