"""Friendly key names and chords ("ctrl+alt+delete") → ``KeyboardEvent.code`` names.

Shared by the REST API, the CLI and DuckyScript so a name means the same key everywhere.
"""

from __future__ import annotations

from hid.keymap import CODE_TO_USAGE, UnknownKey, is_modifier

# A boot keyboard report carries the 8 modifiers and 6 other keys: a chord with more than that
# cannot be held on the target at once (a seventh key turns the report into ErrorRollOver).
MAX_CHORD_KEYS = 6
MAX_CHORD_MODIFIERS = 8


class ChordTooLong(UnknownKey):
    """A chord names more keys than one keyboard report can hold, or a request more chords than
    its caller allows. A subclass of :class:`UnknownKey`: callers that catch that see it too."""


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


def _short(text: str, limit: int = 40) -> str:
    """*text* for an error message: a 25 kB chord must not come back in full."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text)} chars)"


def parse_chord(chord: str) -> list[str]:
    """``"ctrl+alt+delete"`` → ``["ControlLeft", "AltLeft", "Delete"]`` (press order).

    At most :data:`MAX_CHORD_MODIFIERS` modifiers and :data:`MAX_CHORD_KEYS` other keys
    (:class:`ChordTooLong` otherwise), checked before any name is looked up.
    """
    parts = chord.split("+")
    if len(parts) > MAX_CHORD_KEYS + MAX_CHORD_MODIFIERS:
        raise ChordTooLong(
            f"key combination {_short(chord)} has {len(parts)} keys; at most "
            f"{MAX_CHORD_KEYS} keys plus {MAX_CHORD_MODIFIERS} modifiers can be held at once"
        )
    # "ctrl++" means Ctrl and the key named "+"... which is not a code: keep it an error.
    if any(not p.strip() for p in parts):
        raise UnknownKey(f"malformed key combination {_short(chord)}")
    codes = [key_code(p) for p in parts]
    keys = sum(1 for c in codes if not is_modifier(CODE_TO_USAGE[c]))
    if keys > MAX_CHORD_KEYS or len(codes) - keys > MAX_CHORD_MODIFIERS:
        raise ChordTooLong(
            f"key combination {_short(chord)} has {keys} keys and {len(codes) - keys} "
            f"modifiers; at most {MAX_CHORD_KEYS} keys plus {MAX_CHORD_MODIFIERS} modifiers "
            "can be held at once"
        )
    return codes


def parse_chords(text: str, max_chords: int | None = None) -> list[list[str]]:
    """Whitespace-separated chords: ``"ctrl+alt+f2 enter"`` → two chords, pressed in turn.

    With *max_chords*, more chords than that raise :class:`ChordTooLong` before any is parsed.
    """
    specs = text.split()
    if max_chords is not None and len(specs) > max_chords:
        raise ChordTooLong(f"{len(specs)} key combinations; at most {max_chords} per request")
    chords = [parse_chord(c) for c in specs]
    if not chords:
        raise UnknownKey("no keys given")
    return chords
