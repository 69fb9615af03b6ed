"""Layouts: text typed through the real HidController comes back identical from a simulated host,
the physical keys are the right ones for each layout, and the tables agree with XKB."""

# ruff: noqa: RUF001 - the acute accent U+00B4 is test data, not a typo for a backquote

from __future__ import annotations

import ctypes
import ctypes.util
import random
from pathlib import Path

import pytest

from hid.controller import HidController, Pacing, TypeResult
from hid.host import decode_reports
from hid.keymap import USAGE_TO_CODE, UnknownKey, usage_for
from hid.layouts import LAYOUT_NAMES, KeyTableLayout, UnknownLayout, get_layout
from hid.output import MemoryOutput
from hid.reports import ReportKind
from hid.text import ALTGR, LSHIFT, Stroke

PRINTABLE_ASCII = "".join(chr(c) for c in range(0x20, 0x7F))
NATIONAL = {
    "us": "",
    "gb": "£€¬",
    "de": "äöüßÄÖÜ€§°µ²³âêîôûÂÊÎÔÛáéíóúýÁÉÍÓÚÝàèìòùÀÈÌÒÙ´",
    "fr": "éèçàù€£§²µ°¤âêîôûÂÊÎÔÛäëïöüÿÄËÏÖÜ¨",
    "es": "ñÑçÇ€ºª¡¿·¬áéíóúÁÉÍÓÚàèÀÈâÂäëïöüÄÖÜ´¨",
    "it": "àèéìòù€£§°ç",
    "ch-de": "äöüèéà€§°ç¢£¬ÄÖÜñÑãõÃÕÉÈ´¨",
    "se": "åäöÅÄÖ€£¤§½µéÉüÜñ´¨",
    "fi": "åäöÅÄÖ€£¤§½µ",
    "no": "æøåÆØÅ€£¤§µéÉ´¨",
    "dk": "æøåÆØÅ€£¤§½µéÉ´¨",
}

# What the controller sends: each stroke is (mods), (mods + key), (mods), (nothing held).
KBD = ReportKind.KEYBOARD


def kbd(mods: int, *keys: int) -> bytes:
    return bytes([mods, 0, *keys, *([0] * (6 - len(keys)))])


def settled(reports: list[bytes]) -> list[bytes]:
    """*reports* without the trailing "all released" reports the controller adds when done."""
    end = len(reports)
    while end > 1 and reports[end - 1] == reports[end - 2] == kbd(0):
        end -= 1
    return reports[:end]


async def type_and_decode(text: str, layout: str) -> tuple[TypeResult, list[bytes], str]:
    """Type *text* for *layout* through the real controller; decode what reached the wire."""
    out = MemoryOutput()
    ctl = HidController(out)
    await ctl.start()
    await ctl.drain()
    out.reports.clear()  # only what typing sent, not the start-up "all released"
    try:
        result = await ctl.type_text(text, get_layout(layout), Pacing.fast())
    finally:
        await ctl.close()
    reports = [r.data for r in out.reports if r.kind is KBD]
    return result, reports, decode_reports(reports, layout)


# ----------------------------------------------------------------- registry
def test_registry_names_and_aliases() -> None:
    assert set(LAYOUT_NAMES) >= {"us", "gb", "de", "fr", "es", "it", "ch-de", "se"}
    for alias, name in [
        ("DE", "de"),
        ("de-DE", "de"),
        ("de_de", "de"),
        ("en-us", "us"),
        ("EN_US", "us"),
        ("uk", "gb"),
        ("sv", "se"),
        ("de-ch", "ch-de"),
        ("CH-DE", "ch-de"),
        ("da", "dk"),
        ("nb", "no"),
    ]:
        assert get_layout(alias).name == name, alias


def test_unknown_layout_lists_valid_names() -> None:
    with pytest.raises(UnknownLayout) as info:
        get_layout("klingon")
    assert isinstance(info.value, KeyError)
    message = str(info.value)
    assert "klingon" in message
    for name in LAYOUT_NAMES:
        assert name in message


# ----------------------------------------------------------------- round trips
@pytest.mark.parametrize("layout", LAYOUT_NAMES)
async def test_ascii_and_national_characters_round_trip(layout: str) -> None:
    text = PRINTABLE_ASCII + NATIONAL[layout] + "\n\tend"
    result, _, decoded = await type_and_decode(text, layout)
    assert result.plan.untypable == []
    assert decoded == text


@pytest.mark.parametrize("layout", LAYOUT_NAMES)
async def test_every_typable_character_round_trips(layout: str) -> None:
    text = "".join(sorted(get_layout(layout).typable))
    _, _, decoded = await type_and_decode(text, layout)
    assert decoded == text


@pytest.mark.parametrize("layout", ["us", "gb", "de", "fr"])
async def test_ten_thousand_random_ascii_characters_round_trip(layout: str) -> None:
    rng = random.Random(20240607)
    text = "".join(rng.choice(PRINTABLE_ASCII + "\n\t") for _ in range(10_000))
    result, _, decoded = await type_and_decode(text, layout)
    assert result.plan.untypable == []
    assert decoded == text


@pytest.mark.parametrize(
    ("layout", "text", "missing"),
    [
        ("us", "5 €, 3 £", [(2, "€"), (7, "£")]),
        ("fr", "Straße É", [(4, "ß"), (7, "É")]),
        ("de", "naïve ÿ", [(2, "ï"), (6, "ÿ")]),
        ("it", "Größe", [(2, "ö"), (3, "ß")]),
        ("gb", "日本", [(0, "日"), (1, "本")]),
    ],
)
async def test_untypable_characters_are_listed_and_not_sent(
    layout: str, text: str, missing: list[tuple[int, str]]
) -> None:
    result, _, decoded = await type_and_decode(text, layout)
    assert [(u.index, u.char) for u in result.plan.untypable] == missing
    skipped = {index for index, _ in missing}
    assert decoded == "".join(c for i, c in enumerate(text) if i not in skipped)
    assert result.as_dict()["untypable"] == [
        {"index": i, "char": c, "codepoint": f"U+{ord(c):04X}"} for i, c in missing
    ]


def test_de_cannot_type_lone_diaeresis_but_composes_with_umlaut_keys() -> None:
    de = get_layout("de")
    assert de.strokes("¨") is None  # German has no ¨ dead key
    assert de.strokes("ÿ") is None
    assert de.strokes("ï") is None


# ----------------------------------------------------------------- physical facts
def one(layout: str, char: str) -> Stroke:
    strokes = get_layout(layout).strokes(char)
    assert strokes is not None and len(strokes) == 1, (layout, char, strokes)
    return strokes[0]


def key(code: str, mods: int = 0) -> Stroke:
    return Stroke(usage_for(code), mods)


@pytest.mark.parametrize(
    ("layout", "char", "stroke"),
    [
        # de: QWERTZ, AltGr characters
        ("de", "z", Stroke(0x1C, 0)),
        ("de", "Z", Stroke(0x1C, LSHIFT)),
        ("de", "y", Stroke(0x1D, 0)),
        ("de", "@", key("KeyQ", ALTGR)),
        ("de", "€", key("KeyE", ALTGR)),
        ("de", "{", key("Digit7", ALTGR)),
        ("de", "[", key("Digit8", ALTGR)),
        ("de", "]", key("Digit9", ALTGR)),
        ("de", "}", key("Digit0", ALTGR)),
        ("de", "\\", key("Minus", ALTGR)),
        ("de", "|", Stroke(0x64, ALTGR)),
        ("de", "~", key("BracketRight", ALTGR)),
        ("de", "µ", key("KeyM", ALTGR)),
        ("de", "²", key("Digit2", ALTGR)),
        ("de", "ß", key("Minus")),
        ("de", "#", key("Backslash")),
        ("de", "'", key("Backslash", LSHIFT)),
        ("de", "<", Stroke(0x64, 0)),
        ("de", "-", key("Slash")),
        # fr: AZERTY, digits on Shift, AltGr row
        ("fr", "1", key("Digit1", LSHIFT)),
        ("fr", "0", key("Digit0", LSHIFT)),
        ("fr", "&", key("Digit1")),
        ("fr", "é", key("Digit2")),
        ("fr", "a", Stroke(0x14, 0)),
        ("fr", "q", Stroke(0x04, 0)),
        ("fr", "z", key("KeyW")),
        ("fr", "w", key("KeyZ")),
        ("fr", "m", Stroke(0x33, 0)),
        ("fr", ",", key("KeyM")),
        ("fr", "@", key("Digit0", ALTGR)),
        ("fr", "#", key("Digit3", ALTGR)),
        ("fr", "{", key("Digit4", ALTGR)),
        ("fr", "[", key("Digit5", ALTGR)),
        ("fr", "|", key("Digit6", ALTGR)),
        ("fr", "\\", key("Digit8", ALTGR)),
        ("fr", "^", key("Digit9", ALTGR)),  # a direct key beats dead key + Space
        ("fr", "]", key("Minus", ALTGR)),
        ("fr", "}", key("Equal", ALTGR)),
        ("fr", "€", key("KeyE", ALTGR)),
        ("fr", "µ", key("Backslash", LSHIFT)),
        ("fr", "!", key("Slash")),
        # gb
        ("gb", '"', key("Digit2", LSHIFT)),
        ("gb", "@", key("Quote", LSHIFT)),
        ("gb", "£", key("Digit3", LSHIFT)),
        ("gb", "#", key("Backslash")),
        ("gb", "~", key("Backslash", LSHIFT)),
        ("gb", "\\", Stroke(0x64, 0)),
        ("gb", "|", Stroke(0x64, LSHIFT)),
        ("gb", "€", key("Digit4", ALTGR)),
        # us: the ANSI backslash key is usage 0x31
        ("us", "\\", Stroke(0x31, 0)),
        ("us", "|", Stroke(0x31, LSHIFT)),
        ("us", "A", key("KeyA", LSHIFT)),
        # es
        ("es", "ñ", key("Semicolon")),
        ("es", "@", key("Digit2", ALTGR)),
        ("es", "\\", key("Backquote", ALTGR)),
        ("es", "{", key("Quote", ALTGR)),
        ("es", "¿", key("Equal", LSHIFT)),
        # it: { and } exist only on Shift+AltGr
        ("it", "{", key("BracketLeft", LSHIFT | ALTGR)),
        ("it", "}", key("BracketRight", LSHIFT | ALTGR)),
        ("it", "[", key("BracketLeft", ALTGR)),
        ("it", "@", key("Semicolon", ALTGR)),
        ("it", "#", key("Quote", ALTGR)),
        ("it", "é", key("BracketLeft", LSHIFT)),
        # ch-de
        ("ch-de", "z", key("KeyY")),
        ("ch-de", "@", key("Digit2", ALTGR)),
        ("ch-de", "|", key("Digit7", ALTGR)),
        ("ch-de", "\\", Stroke(0x64, ALTGR)),
        ("ch-de", "è", key("BracketLeft", LSHIFT)),
        ("ch-de", "$", key("Backslash")),
        # se / no / dk
        ("se", "@", key("Digit2", ALTGR)),
        ("se", "$", key("Digit4", ALTGR)),
        ("se", "\\", key("Minus", ALTGR)),
        ("se", "|", Stroke(0x64, ALTGR)),
        ("se", "ö", key("Semicolon")),
        ("no", "\\", key("Equal")),
        ("no", "ø", key("Semicolon")),
        ("dk", "ø", key("Quote")),
        ("dk", "\\", Stroke(0x64, ALTGR)),
    ],
)
def test_physical_keys(layout: str, char: str, stroke: Stroke) -> None:
    assert one(layout, char) == stroke


@pytest.mark.parametrize(
    ("layout", "char", "strokes"),
    [
        ("de", "^", [key("Backquote"), key("Space")]),
        ("de", "â", [key("Backquote"), key("KeyA")]),
        ("de", "Â", [key("Backquote"), key("KeyA", LSHIFT)]),
        ("de", "´", [key("Equal"), key("Space")]),
        ("de", "`", [key("Equal", LSHIFT), key("Space")]),
        ("de", "é", [key("Equal"), key("KeyE")]),
        ("de", "È", [key("Equal", LSHIFT), key("KeyE", LSHIFT)]),
        ("fr", "ê", [key("BracketLeft"), key("KeyE")]),
        ("fr", "ë", [key("BracketLeft", LSHIFT), key("KeyE")]),
        ("fr", "¨", [key("BracketLeft", LSHIFT), key("Space")]),
        ("es", "á", [key("Quote"), key("KeyA")]),
        ("es", "Ü", [key("Quote", LSHIFT), key("KeyU", LSHIFT)]),
        ("es", "^", [key("BracketLeft", LSHIFT), key("Space")]),
        ("es", "`", [key("BracketLeft"), key("Space")]),
        ("ch-de", "~", [key("Equal", ALTGR), key("Space")]),
        ("ch-de", "´", [key("Minus", ALTGR), key("Space")]),
        ("ch-de", "Ä", [key("BracketRight"), key("KeyA", LSHIFT)]),
        ("ch-de", "ñ", [key("Equal", ALTGR), key("KeyN")]),
        ("se", "~", [key("BracketRight", ALTGR), key("Space")]),
        ("se", "^", [key("BracketRight", LSHIFT), key("Space")]),
        ("se", "é", [key("Equal"), key("KeyE")]),
        ("no", "´", [key("Equal", ALTGR), key("Space")]),
    ],
)
def test_dead_key_strokes(layout: str, char: str, strokes: list[Stroke]) -> None:
    assert list(get_layout(layout).strokes(char) or ()) == strokes


@pytest.mark.parametrize("layout", LAYOUT_NAMES)
def test_whitespace_keys_are_the_same_everywhere(layout: str) -> None:
    lay = get_layout(layout)
    assert lay.strokes("\n") == (Stroke(0x28),)
    assert lay.strokes("\t") == (Stroke(0x2B),)
    assert lay.strokes(" ") == (Stroke(0x2C),)


@pytest.mark.parametrize("layout", LAYOUT_NAMES)
def test_modifiers_are_only_left_shift_and_altgr(layout: str) -> None:
    """AltGr is RightAlt (0x40) alone; Shift joins it only for a Shift+AltGr-only character;
    capitals use Shift, never Caps Lock; no other modifier is ever used."""
    lay = get_layout(layout)
    for char in lay.typable:
        for stroke in lay.strokes(char) or ():
            assert stroke.modifiers in (0, LSHIFT, ALTGR, LSHIFT | ALTGR), (char, stroke)
            assert stroke.usage != usage_for("CapsLock")
            if stroke.modifiers == LSHIFT | ALTGR:
                third = lay.keys[stroke.usage][2]
                assert third is None or third.char != char
        if char.isalpha() and char.isupper():
            last = (lay.strokes(char) or ())[-1]
            assert last.modifiers & LSHIFT, char


async def test_at_after_capital_never_holds_shift_and_altgr_together() -> None:
    result, reports, decoded = await type_and_decode("A@A@", "de")
    assert decoded == "A@A@"
    assert result.plan.untypable == []
    assert all(not (r[0] & LSHIFT and r[0] & ALTGR) for r in reports)
    a, at = 0x04, 0x14
    one_a = [kbd(LSHIFT), kbd(LSHIFT, a), kbd(LSHIFT), kbd(0)]
    one_at = [kbd(ALTGR), kbd(ALTGR, at), kbd(ALTGR), kbd(0)]
    assert settled(reports) == [*one_a, *one_at, *one_a, *one_at]


async def test_dead_key_sequence_on_the_wire() -> None:
    _, reports, decoded = await type_and_decode("^â", "de")
    assert decoded == "^â"
    grave, space, a = 0x35, 0x2C, 0x04
    assert settled(reports) == [
        kbd(0, grave),
        kbd(0),
        kbd(0, space),
        kbd(0),
        kbd(0, grave),
        kbd(0),
        kbd(0, a),
        kbd(0),
    ]


async def test_crlf_types_one_enter() -> None:
    _, reports, decoded = await type_and_decode("a\r\nb\rc", "us")
    assert decoded == "a\nb\nc"
    assert sum(1 for r in reports if 0x28 in r[2:]) == 2


# ----------------------------------------------------------------- table format
def test_table_errors_name_the_layout_and_line() -> None:
    with pytest.raises(ValueError, match=r"layout 'x' line 2: level 'ab'"):
        KeyTableLayout("x", "test", "KeyA a A\nKeyB ab\n")
    with pytest.raises(ValueError, match="listed twice"):
        KeyTableLayout("x", "test", "KeyA a\nKeyA b\n")
    with pytest.raises(ValueError, match="unknown dead key accent"):
        KeyTableLayout("x", "test", "KeyA dead%\n")
    with pytest.raises(UnknownKey):
        KeyTableLayout("x", "test", "KeyÄ a\n")


def test_custom_table_layout() -> None:
    lay = KeyTableLayout("x", "test", "# comment\nKeyA a A\nKeyB # ~ dead^\n")
    assert lay.strokes("#") == (key("KeyB"),)
    assert lay.strokes("~") == (key("KeyB", LSHIFT),)
    assert lay.strokes("Â") == (key("KeyB", ALTGR), key("KeyA", LSHIFT))
    assert lay.strokes("^") == (key("KeyB", ALTGR), key("Space"))
    assert lay.strokes("b") is None
    assert lay.has_altgr


# ----------------------------------------------------------------- agreement with XKB
XKB_NAMES = {"ch-de": ("ch", "de")}
XKB_DEAD = {"dead_circumflex": "^", "dead_grave": "`", "dead_acute": "´"}
XKB_DEAD |= {"dead_diaeresis": "¨", "dead_tilde": "~"}
# Linux evdev keycode of each physical key (XKB keycode = evdev + 8).
EVDEV = {
    "Backquote": 41,
    "Minus": 12,
    "Equal": 13,
    "BracketLeft": 26,
    "BracketRight": 27,
    "Semicolon": 39,
    "Quote": 40,
    "Backslash": 43,
    "IntlBackslash": 86,
    "Comma": 51,
    "Period": 52,
    "Slash": 53,
}
EVDEV |= {f"Digit{d}": 1 + d for d in range(1, 10)} | {"Digit0": 11}
EVDEV |= {f"Key{c}": 16 + i for i, c in enumerate("QWERTYUIOP")}
EVDEV |= {f"Key{c}": 30 + i for i, c in enumerate("ASDFGHJKL")}
EVDEV |= {f"Key{c}": 44 + i for i, c in enumerate("ZXCVBNM")}


def _xkbcommon() -> ctypes.CDLL | None:
    path = ctypes.util.find_library("xkbcommon")
    if path is None or not Path("/usr/share/X11/xkb/symbols").is_dir():
        return None
    return ctypes.CDLL(path)


class _RuleNames(ctypes.Structure):
    _fields_ = [(n, ctypes.c_char_p) for n in ("rules", "model", "layout", "variant", "options")]


def xkb_levels(lib: ctypes.CDLL, layout: str, variant: str) -> dict[str, list[str | None]]:
    """Per physical key, what XKB gives on the four levels (dead keys as 'dead<accent>')."""
    lib.xkb_context_new.restype = ctypes.c_void_p
    lib.xkb_keymap_new_from_names.restype = ctypes.c_void_p
    lib.xkb_keymap_new_from_names.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
    lib.xkb_keymap_mod_get_index.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.xkb_state_new.restype = ctypes.c_void_p
    lib.xkb_state_new.argtypes = [ctypes.c_void_p]
    lib.xkb_state_unref.argtypes = [ctypes.c_void_p]
    lib.xkb_state_update_mask.argtypes = [ctypes.c_void_p] + [ctypes.c_uint32] * 6
    lib.xkb_state_key_get_one_sym.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    lib.xkb_state_key_get_one_sym.restype = ctypes.c_uint32
    lib.xkb_keysym_to_utf32.argtypes = [ctypes.c_uint32]
    lib.xkb_keysym_to_utf32.restype = ctypes.c_uint32
    lib.xkb_keysym_get_name.argtypes = [ctypes.c_uint32, ctypes.c_char_p, ctypes.c_size_t]
    lib.xkb_keymap_unref.argtypes = [ctypes.c_void_p]
    lib.xkb_context_unref.argtypes = [ctypes.c_void_p]
    ctx = lib.xkb_context_new(0)
    names = _RuleNames(b"evdev", b"pc105", layout.encode(), variant.encode(), b"")
    keymap = lib.xkb_keymap_new_from_names(ctx, ctypes.byref(names), 0)
    assert keymap, f"XKB cannot compile layout {layout!r}"
    shift = 1 << lib.xkb_keymap_mod_get_index(keymap, b"Shift")
    level3 = 1 << lib.xkb_keymap_mod_get_index(keymap, b"Mod5")
    result: dict[str, list[str | None]] = {}
    for code, evdev in EVDEV.items():
        row: list[str | None] = []
        for mods in (0, shift, level3, shift | level3):
            state = lib.xkb_state_new(keymap)
            lib.xkb_state_update_mask(state, mods, 0, 0, 0, 0, 0)
            sym = lib.xkb_state_key_get_one_sym(state, evdev + 8)
            lib.xkb_state_unref(state)
            name = ctypes.create_string_buffer(64)
            lib.xkb_keysym_get_name(sym, name, 64)
            if name.value.decode() in XKB_DEAD:
                row.append("dead" + XKB_DEAD[name.value.decode()])
            else:
                utf32 = lib.xkb_keysym_to_utf32(sym)
                row.append(chr(utf32) if utf32 >= 0x20 else None)
        result[code] = row
    lib.xkb_keymap_unref(keymap)
    lib.xkb_context_unref(ctx)
    return result


@pytest.mark.parametrize("layout", LAYOUT_NAMES)
def test_tables_agree_with_xkb(layout: str) -> None:
    lib = _xkbcommon()
    if lib is None:
        pytest.skip("libxkbcommon or xkb-data not installed")
    xkb_layout, variant = XKB_NAMES.get(layout, (layout, ""))
    reference = xkb_levels(lib, xkb_layout, variant)
    checked = 0
    for usage, levels in get_layout(layout).keys.items():
        code = USAGE_TO_CODE[usage]
        for level, out in enumerate(levels):
            if out is None:
                continue
            mine = ("dead" if out.dead else "") + out.char
            assert reference[code][level] == mine, (code, level)
            checked += 1
    assert checked > 60
