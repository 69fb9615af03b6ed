"""HostKeyboard: boot keyboard reports in, key events and text out, as a real host sees them."""

# ruff: noqa: RUF001 - the acute accent U+00B4 is test data, not a typo for a backquote

from __future__ import annotations

import pytest

from hid.host import HostKeyboard, KeyEvent, decode_reports
from hid.layouts import get_layout
from hid.reports import abs_mouse_report, keyboard_report
from hid.text import ALTGR, LALT, LCTRL, LSHIFT, RSHIFT, Stroke

A, B, C, E, N, Q, X = 0x04, 0x05, 0x06, 0x08, 0x11, 0x14, 0x1B
SPACE, ENTER, TAB, BACKSPACE, CAPS, NUM, SCROLL = 0x2C, 0x28, 0x2B, 0x2A, 0x39, 0x53, 0x47
GRAVE_KEY, EQUAL_KEY, BRACKET_LEFT, DIGIT2 = 0x35, 0x2E, 0x2F, 0x1F
KP1, KP_DECIMAL, KP_PLUS, KP_ENTER = 0x59, 0x63, 0x57, 0x58


def kbd(mods: int, *keys: int) -> bytes:
    return bytes([mods, 0, *keys, *([0] * (6 - len(keys)))])


def tap(*keys: int, mods: int = 0) -> list[bytes]:
    """Press *keys* with *mods* held, then release everything."""
    return [kbd(mods, *keys), kbd(0)]


def typed(host: HostKeyboard, *reports: bytes) -> str:
    for report in reports:
        host.feed(report)
    return host.text


def test_key_down_and_up_events() -> None:
    host = HostKeyboard("us")
    assert host.feed(kbd(LSHIFT)) == [KeyEvent(0xE1, "ShiftLeft", True, LSHIFT)]
    assert host.feed(kbd(LSHIFT, A)) == [KeyEvent(A, "KeyA", True, LSHIFT, "A")]
    assert host.feed(kbd(LSHIFT, A, B)) == [KeyEvent(B, "KeyB", True, LSHIFT, "B")]
    assert host.feed(kbd(0, B)) == [
        KeyEvent(0xE1, "ShiftLeft", False, 0),
        KeyEvent(A, "KeyA", False, 0),
    ]
    assert host.feed(kbd(0)) == [KeyEvent(B, "KeyB", False, 0)]
    assert host.text == "AB"
    assert host.pressed == []


def test_same_report_again_changes_nothing() -> None:
    host = HostKeyboard("us")
    host.feed(kbd(0, A))
    assert host.feed(kbd(0, A)) == []
    assert host.text == "a"


def test_key_order_in_the_report_does_not_matter() -> None:
    host = HostKeyboard("us")
    host.feed(kbd(0, A, B))
    assert host.feed(kbd(0, B, A)) == []
    assert [e.usage for e in host.feed(kbd(0, C, B))] == [A, C]
    assert host.text == "abc"


def test_error_rollover_keeps_the_previous_keys() -> None:
    host = HostKeyboard("us")
    host.feed(kbd(0, A))
    events = host.feed(kbd(LSHIFT, *([1] * 6)))
    assert events == [KeyEvent(0xE1, "ShiftLeft", True, LSHIFT)]  # modifiers still count
    assert host.pressed == [A]
    events = host.feed(kbd(LSHIFT, A, B))
    assert events == [KeyEvent(B, "KeyB", True, LSHIFT, "B")]
    host.feed(kbd(0))
    assert host.text == "aB"


def test_report_must_be_eight_bytes() -> None:
    with pytest.raises(ValueError, match="8 bytes"):
        HostKeyboard().feed(b"\0" * 7)
    with pytest.raises(ValueError, match="not a keyboard report"):
        HostKeyboard().feed(abs_mouse_report(0, 1, 1))


def test_enter_tab_backspace_space() -> None:
    host = HostKeyboard("de")
    text = typed(host, *tap(ENTER), *tap(TAB), *tap(SPACE, mods=ALTGR), *tap(BACKSPACE))
    assert text == "\n\t \b"
    assert typed(HostKeyboard(), *tap(KP_ENTER)) == "\n"


def test_non_character_keys_give_none() -> None:
    host = HostKeyboard("us")
    down = host.feed(kbd(0, 0x4F))  # ArrowRight
    assert down == [KeyEvent(0x4F, "ArrowRight", True, 0, None)]
    host.feed(kbd(0, 0x29))  # Escape
    host.feed(kbd(0, 0x3A))  # F1
    assert host.text == ""


def test_shortcuts_produce_no_text() -> None:
    host = HostKeyboard("us")
    typed(host, *tap(C, mods=LCTRL), *tap(A, mods=LALT), *tap(Q, mods=ALTGR))
    assert host.text == ""  # on us RightAlt is Alt, not AltGr
    assert typed(HostKeyboard("de"), *tap(Q, mods=ALTGR)) == "@"


def test_right_shift_is_shift() -> None:
    assert typed(HostKeyboard("us"), *tap(DIGIT2, mods=RSHIFT)) == "@"


# ----------------------------------------------------------------- locks
def test_lock_keys_toggle_leds_on_press() -> None:
    host = HostKeyboard("us")
    host.feed(kbd(0, CAPS))
    assert host.leds == 0x02
    host.feed(kbd(0))
    assert host.leds == 0x02
    for usage in (NUM, SCROLL):
        host.feed(kbd(0, usage))
        host.feed(kbd(0))
    assert host.leds == 0x07
    host.feed(kbd(0, CAPS))
    assert host.leds == 0x05


def test_caps_lock_affects_letters_only() -> None:
    host = HostKeyboard("us")
    text = typed(host, *tap(CAPS), *tap(A), *tap(A, mods=LSHIFT), *tap(DIGIT2), *tap(0x33))
    assert text == "Aa2;"


def test_caps_lock_on_national_letters() -> None:
    # de: ü is a letter key; XKB also upper-cases fr é (Windows would give 2, see docs).
    assert typed(HostKeyboard("de", leds=0x02), *tap(BRACKET_LEFT)) == "Ü"
    assert typed(HostKeyboard("fr", leds=0x02), *tap(DIGIT2)) == "É"
    assert typed(HostKeyboard("fr", leds=0x02), *tap(DIGIT2, mods=LSHIFT)) == "2"


def test_keypad_follows_num_lock_and_layout() -> None:
    host = HostKeyboard("us")
    typed(host, *tap(KP1), *tap(KP_DECIMAL), *tap(KP_PLUS))
    assert host.text == "+"  # Num Lock off: End and Delete, no text
    host.leds = 0x01  # the host's LED state, set from outside
    assert typed(host, *tap(KP1), *tap(KP_DECIMAL), *tap(KP1, mods=LSHIFT)) == "+1."
    assert typed(HostKeyboard("de", leds=0x01), *tap(KP_DECIMAL)) == ","


# ----------------------------------------------------------------- AltGr
def test_altgr_on_a_key_without_altgr_characters_types_the_plain_character() -> None:
    assert typed(HostKeyboard("de"), *tap(A, mods=ALTGR)) == "a"


def test_shift_altgr_without_a_fourth_level_types_nothing() -> None:
    host = HostKeyboard("de")
    assert typed(host, *tap(Q, mods=LSHIFT | ALTGR)) == ""
    assert typed(HostKeyboard("it"), *tap(BRACKET_LEFT, mods=LSHIFT | ALTGR)) == "{"


# ----------------------------------------------------------------- dead keys
@pytest.mark.parametrize(
    ("reports", "text"),
    [
        ([*tap(GRAVE_KEY), *tap(A)], "â"),
        ([*tap(GRAVE_KEY), *tap(A, mods=LSHIFT)], "Â"),
        ([*tap(GRAVE_KEY), *tap(SPACE)], "^"),
        ([*tap(GRAVE_KEY), *tap(X)], "^x"),
        ([*tap(GRAVE_KEY), *tap(GRAVE_KEY)], "^^"),
        ([*tap(EQUAL_KEY), *tap(GRAVE_KEY)], "´^"),
        ([*tap(EQUAL_KEY), *tap(E, mods=LSHIFT)], "É"),
        ([*tap(EQUAL_KEY, mods=LSHIFT), *tap(E)], "è"),
        ([*tap(EQUAL_KEY), *tap(ENTER)], "´\n"),
        ([*tap(GRAVE_KEY), *tap(BACKSPACE), *tap(A)], "a"),
        ([*tap(GRAVE_KEY, mods=LSHIFT), *tap(A)], "°a"),
    ],
)
def test_dead_keys_de(reports: list[bytes], text: str) -> None:
    assert typed(HostKeyboard("de"), *reports) == text


def test_dead_key_event_has_no_char_and_the_base_key_carries_the_result() -> None:
    host = HostKeyboard("es")
    assert host.feed(kbd(0, 0x34)) == [KeyEvent(0x34, "Quote", True, 0, None)]
    host.feed(kbd(0))
    assert host.feed(kbd(0, N)) == [KeyEvent(N, "KeyN", True, 0, "´n")]
    host.feed(kbd(0))
    host.feed(kbd(LSHIFT, 0x34))
    host.feed(kbd(LSHIFT))
    assert host.feed(kbd(LSHIFT, 0x18)) == [KeyEvent(0x18, "KeyU", True, LSHIFT, "Ü")]


def test_modifiers_do_not_consume_a_pending_dead_key() -> None:
    host = HostKeyboard("fr")
    assert typed(host, *tap(BRACKET_LEFT), kbd(LSHIFT), kbd(LSHIFT, Q), kbd(0)) == "Â"


# ----------------------------------------------------------------- ISO keys
def test_non_us_hash_is_the_backslash_key() -> None:
    for usage in (0x31, 0x32):
        host = HostKeyboard("de")
        events = host.feed(kbd(0, usage))
        assert events == [KeyEvent(usage, "Backslash", True, 0, "#")]
        assert typed(host, kbd(0), *tap(usage, mods=LSHIFT)) == "#'"
    assert typed(HostKeyboard("gb"), *tap(0x32, mods=LSHIFT)) == "~"


def test_iso_key_next_to_left_shift() -> None:
    assert typed(HostKeyboard("de"), *tap(0x64), *tap(0x64, mods=ALTGR)) == "<|"
    assert typed(HostKeyboard("gb"), *tap(0x64), *tap(0x64, mods=LSHIFT)) == "\\|"
    assert typed(HostKeyboard("us"), *tap(0x64)) == ""  # ANSI boards have no such key


def test_modifier_usage_in_the_key_array_counts_as_held() -> None:
    host = HostKeyboard("us")
    host.feed(kbd(0, 0xE1))
    assert host.modifiers == LSHIFT
    host.feed(kbd(0, 0xE1, A))
    assert host.text == "A"


# ----------------------------------------------------------------- helpers
def test_decode_reports_accepts_report_objects_and_skips_mouse() -> None:
    reports = [
        keyboard_report(LSHIFT, [A]),
        abs_mouse_report(0, 100, 100),
        keyboard_report(0, []),
        keyboard_report(0, [B]),
        keyboard_report(0, []),
    ]
    assert decode_reports(reports, "us") == "Ab"
    assert decode_reports(reports, get_layout("de")) == "Ab"


def test_host_needs_a_table_layout() -> None:
    class Custom:
        name = "custom"
        description = "not a table"

        def strokes(self, char: str) -> tuple[Stroke, ...] | None:
            return None

    with pytest.raises(TypeError, match="key table layout"):
        HostKeyboard(Custom())
    with pytest.raises(KeyError):
        HostKeyboard("nope")
