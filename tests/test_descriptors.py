"""The report descriptors, read back by an independent parser, describe exactly the bytes that
hid/reports.py produces."""

from __future__ import annotations

import pytest

from hid.descriptors import DEFAULT_FUNCTIONS, KEYBOARD, MOUSE_ABS, MOUSE_REL, HidFunction
from hid.reports import abs_mouse_report, keyboard_report, rel_mouse_report
from tests.hidparse import INPUT, OUTPUT, Descriptor, DescriptorError, parse

GD, KBD, LED, BTN, CONSUMER = 0x01, 0x07, 0x08, 0x09, 0x0C
X, Y, WHEEL, AC_PAN = 0x30, 0x31, 0x38, 0x0238
APPLICATION, PHYSICAL = 0x01, 0x00


@pytest.mark.parametrize("fn", DEFAULT_FUNCTIONS, ids=lambda f: f.name)
def test_input_report_length_matches(fn: HidFunction) -> None:
    d = parse(fn.report_desc)
    assert d.bits(INPUT) == fn.report_length * 8
    assert {f.report_id for f in d.fields} == {0}  # no report IDs: boot layout


def test_function_classes() -> None:
    assert (KEYBOARD.subclass, KEYBOARD.protocol, KEYBOARD.report_length) == (1, 1, 8)
    assert (MOUSE_ABS.subclass, MOUSE_ABS.protocol, MOUSE_ABS.report_length) == (0, 0, 7)
    assert (MOUSE_REL.subclass, MOUSE_REL.protocol, MOUSE_REL.report_length) == (1, 2, 5)
    assert [f.name for f in DEFAULT_FUNCTIONS] == ["keyboard", "mouse", "mouse_rel"]


def test_keyboard_fields() -> None:
    d = parse(KEYBOARD.report_desc)
    mods = d.find(KBD, 0xE0)
    assert mods.usage_ids == tuple(range(0xE0, 0xE8))
    assert (mods.size, mods.count, mods.offset, mods.variable) == (1, 8, 0, True)
    assert (mods.logical_min, mods.logical_max) == (0, 1)
    reserved = [f for f in d.of(INPUT) if f.constant]
    assert [(f.offset, f.size * f.count) for f in reserved] == [(8, 8)]
    keys = d.find(KBD, 0x04)
    assert not keys.variable and (keys.size, keys.count, keys.offset) == (8, 6, 16)
    assert (keys.logical_min, keys.logical_max) in ((0, 0xFF), (0, 0xE7))
    assert keys.usage_ids == tuple(range(keys.logical_max + 1))
    assert keys.collections == (APPLICATION,)


def test_keyboard_led_output_report() -> None:
    d = parse(KEYBOARD.report_desc)
    assert d.bits(OUTPUT) == 8
    leds = d.find(LED, 1, OUTPUT)
    assert leds.usage_ids == (1, 2, 3, 4, 5) and leds.count == 5 and leds.size == 1
    pad = [f for f in d.of(OUTPUT) if f.constant]
    assert [(f.offset, f.size * f.count) for f in pad] == [(5, 3)]
    # Caps Lock + Kana from the host:
    values = d.decode(bytes([0b1_0010]), OUTPUT)
    assert [values[(LED, u)] for u in range(1, 6)] == [0, 1, 0, 0, 1]


def test_keyboard_report_decodes() -> None:
    d = parse(KEYBOARD.report_desc)
    # LeftShift + RightAlt held, 'a' and F12 down
    values = d.decode(keyboard_report(0x02 | 0x40, [0x04, 0x45]).data)
    held_mods = [u for u in range(0xE0, 0xE8) if values[(KBD, u)]]
    assert held_mods == [0xE1, 0xE6]
    assert values[(KBD, 0x00)] == [0x04, 0x45]
    # seven keys: the host sees six ErrorRollOver entries
    rollover = d.decode(keyboard_report(0, list(range(4, 11))).data)
    assert rollover[(KBD, 0x00)] == [0x01] * 6
    # a key beyond 0x65 (F24, LANG1) is inside the logical range
    assert d.decode(keyboard_report(0, [0x73, 0x90]).data)[(KBD, 0x00)] == [0x73, 0x90]


@pytest.mark.parametrize("fn", [MOUSE_ABS, MOUSE_REL], ids=lambda f: f.name)
def test_mouse_common_fields(fn: HidFunction) -> None:
    d = parse(fn.report_desc)
    buttons = d.find(BTN, 1)
    assert buttons.offset == 0 and buttons.size == 1 and buttons.variable
    assert buttons.usage_ids == tuple(range(1, buttons.count + 1)) and buttons.count >= 5
    assert buttons.count == 8  # the buttons fill the whole first byte
    wheel = d.find(GD, WHEEL)
    pan = d.find(CONSUMER, AC_PAN)
    for f in (wheel, pan):
        assert (f.size, f.count, f.logical_min, f.logical_max) == (8, 1, -127, 127)
        assert f.relative and f.variable
    # Physical collection inside the Application collection, for every input field
    for f in d.of(INPUT):
        assert f.collections == (APPLICATION, PHYSICAL)
    assert not d.of(OUTPUT)


def test_abs_mouse_axes() -> None:
    d = parse(MOUSE_ABS.report_desc)
    for usage in (X, Y):
        f = d.find(GD, usage)
        assert (f.size, f.logical_min, f.logical_max, f.relative) == (16, 0, 32767, False)


def test_rel_mouse_axes() -> None:
    d = parse(MOUSE_REL.report_desc)
    for usage in (X, Y):
        f = d.find(GD, usage)
        assert (f.size, f.logical_min, f.logical_max, f.relative) == (8, -127, 127, True)
    # boot hosts read only buttons, X, Y: they must be the first three bytes
    offsets = [d.bit_offset(BTN, 1), d.bit_offset(GD, X), d.bit_offset(GD, Y)]
    assert offsets == [0, 8, 16]


def _button_values(values: dict[tuple[int, int], int | list[int]]) -> list[int]:
    return [int(values[(BTN, b)]) for b in range(1, 9)]  # type: ignore[arg-type]


def test_abs_mouse_report_decodes() -> None:
    d = parse(MOUSE_ABS.report_desc)
    v = d.decode(abs_mouse_report(1, 1000, 2000, -1, 2).data)
    assert _button_values(v) == [1, 0, 0, 0, 0, 0, 0, 0]
    assert (v[(GD, X)], v[(GD, Y)], v[(GD, WHEEL)], v[(CONSUMER, AC_PAN)]) == (1000, 2000, -1, 2)
    corner = d.decode(abs_mouse_report(0b10110, 32767, 0, 127, -127).data)
    assert _button_values(corner) == [0, 1, 1, 0, 1, 0, 0, 0]
    assert (corner[(GD, X)], corner[(GD, Y)]) == (32767, 0)
    assert (corner[(GD, WHEEL)], corner[(CONSUMER, AC_PAN)]) == (127, -127)


def test_rel_mouse_report_decodes() -> None:
    d = parse(MOUSE_REL.report_desc)
    v = d.decode(rel_mouse_report(0b100, -127, 55, 3, -4).data)
    assert _button_values(v) == [0, 0, 1, 0, 0, 0, 0, 0]
    assert (v[(GD, X)], v[(GD, Y)], v[(GD, WHEEL)], v[(CONSUMER, AC_PAN)]) == (-127, 55, 3, -4)


def test_parser_rejects_broken_descriptors() -> None:
    """The parser is strict enough to catch the mistakes it is meant to catch."""
    with pytest.raises(DescriptorError, match="left open"):
        parse(KEYBOARD.report_desc[:-1])
    with pytest.raises(DescriptorError, match="truncated"):
        parse(bytes([0x26, 0xFF]))
    # 0xFF as a one-byte Logical Maximum is -1 to a host: the signed reading must show it
    d: Descriptor = parse(bytes([0x15, 0x00, 0x25, 0xFF, 0x75, 0x08, 0x95, 0x01, 0x81, 0x00]))
    assert d.fields[0].logical_max == -1
    # push/pop restores globals
    d = parse(bytes([0x75, 0x08, 0xA4, 0x75, 0x01, 0xB4, 0x95, 0x01, 0x81, 0x02]))
    assert d.fields[0].size == 8
