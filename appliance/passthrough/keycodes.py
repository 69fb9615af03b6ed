"""Linux evdev key codes (``KEY_*``, ``BTN_*`` of ``linux/input-event-codes.h``) as the names the
HID controller takes: ``KeyboardEvent.code`` for keys, ``hid.reports.BUTTONS`` for mouse buttons.

Both ends name a physical key position, not a character: the kernel's ``KEY_Q`` is the key left of
``KEY_W`` whatever the local layout says, and the target applies its own layout to the USB usage.
So the translation is position for position, and no layout is involved here.

Written from the kernel header's numbering (regular runs: ``KEY_1``..``KEY_0`` are 2..11, the
letter rows follow the QWERTY rows) and the names in :data:`hid.keymap.CODE_TO_USAGE`. Linux key
codes are a stable kernel ABI, so plain integers are used and this module needs no evdev.
"""

from __future__ import annotations

from typing import Final


def _rows() -> dict[int, str]:
    """The alphanumeric block: the kernel numbers it row by row, left to right."""
    table: dict[int, str] = {}
    # KEY_1 (2) .. KEY_9 (10), KEY_0 (11)
    for i, digit in enumerate("1234567890"):
        table[2 + i] = f"Digit{digit}"
    # KEY_Q (16) .. KEY_P (25), KEY_A (30) .. KEY_L (38), KEY_Z (44) .. KEY_M (50)
    for start, letters in ((16, "QWERTYUIOP"), (30, "ASDFGHJKL"), (44, "ZXCVBNM")):
        for i, letter in enumerate(letters):
            table[start + i] = f"Key{letter}"
    # KEY_F1 (59) .. KEY_F10 (68), KEY_F11 (87), KEY_F12 (88), KEY_F13 (183) .. KEY_F24 (194)
    for n in range(1, 11):
        table[58 + n] = f"F{n}"
    table[87], table[88] = "F11", "F12"
    for n in range(13, 25):
        table[170 + n] = f"F{n}"
    return table


KEY_TO_CODE: Final[dict[int, str]] = {
    **_rows(),
    1: "Escape",  # KEY_ESC
    12: "Minus",  # KEY_MINUS
    13: "Equal",  # KEY_EQUAL
    14: "Backspace",  # KEY_BACKSPACE
    15: "Tab",  # KEY_TAB
    26: "BracketLeft",  # KEY_LEFTBRACE
    27: "BracketRight",  # KEY_RIGHTBRACE
    28: "Enter",  # KEY_ENTER
    29: "ControlLeft",  # KEY_LEFTCTRL
    39: "Semicolon",  # KEY_SEMICOLON
    40: "Quote",  # KEY_APOSTROPHE
    41: "Backquote",  # KEY_GRAVE
    42: "ShiftLeft",  # KEY_LEFTSHIFT
    43: "Backslash",  # KEY_BACKSLASH
    51: "Comma",  # KEY_COMMA
    52: "Period",  # KEY_DOT
    53: "Slash",  # KEY_SLASH
    54: "ShiftRight",  # KEY_RIGHTSHIFT
    55: "NumpadMultiply",  # KEY_KPASTERISK
    56: "AltLeft",  # KEY_LEFTALT
    57: "Space",  # KEY_SPACE
    58: "CapsLock",  # KEY_CAPSLOCK
    69: "NumLock",  # KEY_NUMLOCK
    70: "ScrollLock",  # KEY_SCROLLLOCK
    # The keypad: KEY_KP7 (71) .. KEY_KPDOT (83), in the kernel's row order
    71: "Numpad7",
    72: "Numpad8",
    73: "Numpad9",
    74: "NumpadSubtract",  # KEY_KPMINUS
    75: "Numpad4",
    76: "Numpad5",
    77: "Numpad6",
    78: "NumpadAdd",  # KEY_KPPLUS
    79: "Numpad1",
    80: "Numpad2",
    81: "Numpad3",
    82: "Numpad0",
    83: "NumpadDecimal",  # KEY_KPDOT
    86: "IntlBackslash",  # KEY_102ND: the extra key left of Z on ISO keyboards
    89: "IntlRo",  # KEY_RO
    90: "KanaMode",  # KEY_KATAKANA
    92: "Convert",  # KEY_HENKAN
    94: "NonConvert",  # KEY_MUHENKAN
    95: "NumpadComma",  # KEY_KPJPCOMMA
    96: "NumpadEnter",  # KEY_KPENTER
    97: "ControlRight",  # KEY_RIGHTCTRL
    98: "NumpadDivide",  # KEY_KPSLASH
    99: "PrintScreen",  # KEY_SYSRQ (the same key; Alt+it is SysRq)
    100: "AltRight",  # KEY_RIGHTALT
    102: "Home",  # KEY_HOME
    103: "ArrowUp",  # KEY_UP
    104: "PageUp",  # KEY_PAGEUP
    105: "ArrowLeft",  # KEY_LEFT
    106: "ArrowRight",  # KEY_RIGHT
    107: "End",  # KEY_END
    108: "ArrowDown",  # KEY_DOWN
    109: "PageDown",  # KEY_PAGEDOWN
    110: "Insert",  # KEY_INSERT
    111: "Delete",  # KEY_DELETE
    113: "AudioVolumeMute",  # KEY_MUTE
    114: "AudioVolumeDown",  # KEY_VOLUMEDOWN
    115: "AudioVolumeUp",  # KEY_VOLUMEUP
    116: "Power",  # KEY_POWER
    117: "NumpadEqual",  # KEY_KPEQUAL
    119: "Pause",  # KEY_PAUSE
    121: "NumpadComma",  # KEY_KPCOMMA
    122: "Lang1",  # KEY_HANGEUL
    123: "Lang2",  # KEY_HANJA
    124: "IntlYen",  # KEY_YEN
    125: "MetaLeft",  # KEY_LEFTMETA
    126: "MetaRight",  # KEY_RIGHTMETA
    127: "ContextMenu",  # KEY_COMPOSE (the menu key)
    129: "Again",  # KEY_AGAIN
    130: "Props",  # KEY_PROPS
    131: "Undo",  # KEY_UNDO
    133: "Copy",  # KEY_COPY
    134: "Open",  # KEY_OPEN
    135: "Paste",  # KEY_PASTE
    136: "Find",  # KEY_FIND
    137: "Cut",  # KEY_CUT
    138: "Help",  # KEY_HELP
}
"""evdev ``KEY_*`` code → ``KeyboardEvent.code``. Keys missing here (media, launcher keys) have no
usage on the boot keyboard page and are not forwarded."""

BUTTON_TO_NAME: Final[dict[int, str]] = {
    0x110: "left",  # BTN_LEFT
    0x111: "right",  # BTN_RIGHT
    0x112: "middle",  # BTN_MIDDLE
    0x113: "back",  # BTN_SIDE
    0x114: "forward",  # BTN_EXTRA
    0x115: "forward",  # BTN_FORWARD
    0x116: "back",  # BTN_BACK
}
"""evdev mouse button → ``hid.reports.BUTTONS`` name."""

# Event types and the codes of them that matter here (linux/input-event-codes.h).
EV_SYN: Final = 0x00
EV_KEY: Final = 0x01
EV_REL: Final = 0x02
SYN_REPORT: Final = 0
SYN_DROPPED: Final = 3
REL_X: Final = 0x00
REL_Y: Final = 0x01
REL_HWHEEL: Final = 0x06
REL_WHEEL: Final = 0x08
KEY_RELEASE, KEY_PRESS, KEY_REPEAT = 0, 1, 2
