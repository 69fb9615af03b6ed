"""Friendly key names and chords ("ctrl+alt+delete") → ``KeyboardEvent.code`` names.

Shared by the REST API, the CLI and DuckyScript so a name means the same key everywhere.
"""

from __future__ import annotations

from hid.keymap import CODE_TO_USAGE, UnknownKey

FRIENDLY: dict[str, str] = {
    "ctrl": "ControlLeft",
    "control": "ControlLeft",
    "lctrl": "ControlLeft",
    "rctrl": "ControlRight",
    "shift": "ShiftLeft",
    "lshift": "ShiftLeft",
    "rshift": "ShiftRight",
    "alt": "AltLeft",
    "lalt": "AltLeft",
    "ralt": "AltRight",
    "altgr": "AltRight",
    "win": "MetaLeft",
    "windows": "MetaLeft",
    "gui": "MetaLeft",
    "meta": "MetaLeft",
    "super": "MetaLeft",
    "cmd": "MetaLeft",
    "command": "MetaLeft",
    "rwin": "MetaRight",
    "del": "Delete",
    "delete": "Delete",
    "esc": "Escape",
    "escape": "Escape",
    "enter": "Enter",
    "return": "Enter",
    "tab": "Tab",
    "space": "Space",
    "spacebar": "Space",
    "backspace": "Backspace",
    "bksp": "Backspace",
    "up": "ArrowUp",
    "uparrow": "ArrowUp",
    "down": "ArrowDown",
    "downarrow": "ArrowDown",
    "left": "ArrowLeft",
    "leftarrow": "ArrowLeft",
    "right": "ArrowRight",
    "rightarrow": "ArrowRight",
    "home": "Home",
    "end": "End",
    "pgup": "PageUp",
    "pageup": "PageUp",
    "pgdn": "PageDown",
    "pagedown": "PageDown",
    "ins": "Insert",
    "insert": "Insert",
    "prtsc": "PrintScreen",
    "printscreen": "PrintScreen",
    "sysrq": "PrintScreen",
    "pause": "Pause",
    "break": "Pause",
    "capslock": "CapsLock",
    "numlock": "NumLock",
    "scrolllock": "ScrollLock",
    "menu": "ContextMenu",
    "app": "ContextMenu",
    "contextmenu": "ContextMenu",
    "power": "Power",
    "minus": "Minus",
    "equal": "Equal",
    "comma": "Comma",
    "period": "Period",
    "slash": "Slash",
    "backslash": "Backslash",
    "semicolon": "Semicolon",
    "quote": "Quote",
    "backquote": "Backquote",
    "grave": "Backquote",
}

_CODES_LOWER = {code.lower(): code for code in CODE_TO_USAGE}


def key_code(name: str) -> str:
    """Resolve one key name: a ``code`` (any case), a friendly name, a letter, digit or Fn."""
    raw = name.strip()
    low = raw.lower()
    if not low:
        raise UnknownKey("empty key name")
    if low in FRIENDLY:
        return FRIENDLY[low]
    if low in _CODES_LOWER:
        return _CODES_LOWER[low]
    if len(low) == 1 and low.isascii():
        if low.isalpha():
            return f"Key{low.upper()}"
        if low.isdigit():
            return f"Digit{low}"
    raise UnknownKey(f"unknown key name {raw!r}")


def parse_chord(chord: str) -> list[str]:
    """``"ctrl+alt+delete"`` → ``["ControlLeft", "AltLeft", "Delete"]`` (press order)."""
    parts = chord.split("+")
    # "ctrl++" means Ctrl and the key named "+"... which is not a code: keep it an error.
    if any(not p.strip() for p in parts):
        raise UnknownKey(f"malformed key combination {chord!r}")
    return [key_code(p) for p in parts]


def parse_chords(text: str) -> list[list[str]]:
    """Whitespace-separated chords: ``"ctrl+alt+f2 enter"`` → two chords, pressed in turn."""
    chords = [parse_chord(c) for c in text.split()]
    if not chords:
        raise UnknownKey("no keys given")
    return chords
