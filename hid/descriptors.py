"""USB HID report descriptors for the gadget's three functions, as plain data.

The bytes here are what ``functions/hid.<name>/report_desc`` receives and what the host parses to
understand the reports :mod:`hid.reports` produces, so the two must agree bit for bit
(``tests/test_descriptors.py`` checks that with an independent parser). Descriptors are built from
small item helpers instead of a hex blob so each line says what it declares.

Why these shapes:

- keyboard: boot-compatible (subclass 1, protocol 1) because BIOSes only speak the boot protocol;
  the report layout is therefore fixed: ``[mods, 0, k1..k6]`` in, 1 LED byte out.
- absolute mouse: X/Y 0..32767 (negative or 0..65535 ranges break some hosts); a Physical
  collection inside the Application one because Apple's recovery firmware needs it; no boot
  support, so subclass 0 protocol 0.
- relative mouse: boot mouse (subclass 1, protocol 2) for BIOSes and firmwares that ignore
  absolute pointers; boot hosts read only the first three bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# --------------------------------------------------------------------------- item encoding
_MAIN, _GLOBAL, _LOCAL = 0, 1, 2

# Main item data bits (HID 1.11 §6.2.2.5).
CONSTANT: Final = 0x01
VARIABLE: Final = 0x02
RELATIVE: Final = 0x04

COLLECTION_PHYSICAL: Final = 0x00
COLLECTION_APPLICATION: Final = 0x01

PAGE_GENERIC_DESKTOP: Final = 0x01
PAGE_KEYBOARD: Final = 0x07
PAGE_LEDS: Final = 0x08
PAGE_BUTTON: Final = 0x09
PAGE_CONSUMER: Final = 0x0C

USAGE_POINTER: Final = 0x01
USAGE_MOUSE: Final = 0x02
USAGE_KEYBOARD: Final = 0x06
USAGE_X: Final = 0x30
USAGE_Y: Final = 0x31
USAGE_WHEEL: Final = 0x38
USAGE_AC_PAN: Final = 0x0238


def _item(kind: int, tag: int, value: int | None, *, signed: bool = False) -> bytes:
    """Encode one short item using the smallest data size that holds *value*.

    Signed items (logical minimum/maximum) need the size that keeps the sign right: 255 is
    ``26 FF 00``, not ``25 FF`` (which a host reads as -1).
    """
    if value is None:
        return bytes([(tag << 4) | (kind << 2)])
    for size, code in ((1, 1), (2, 2), (4, 3)):
        lo, hi = (
            (-(1 << (8 * size - 1)), (1 << (8 * size - 1)) - 1) if signed else (0, 256**size - 1)
        )
        if lo <= value <= hi:
            return bytes([(tag << 4) | (kind << 2) | code]) + value.to_bytes(
                size, "little", signed=signed
            )
    raise ValueError(f"item value {value} does not fit in 4 bytes")


def usage_page(page: int) -> bytes:
    return _item(_GLOBAL, 0x0, page)


def logical_range(lo: int, hi: int) -> bytes:
    return _item(_GLOBAL, 0x1, lo, signed=True) + _item(_GLOBAL, 0x2, hi, signed=True)


def report_size(bits: int) -> bytes:
    return _item(_GLOBAL, 0x7, bits)


def report_count(n: int) -> bytes:
    return _item(_GLOBAL, 0x9, n)


def usage(u: int) -> bytes:
    return _item(_LOCAL, 0x0, u)


def usage_range(lo: int, hi: int) -> bytes:
    return _item(_LOCAL, 0x1, lo) + _item(_LOCAL, 0x2, hi)


def input_item(flags: int) -> bytes:
    return _item(_MAIN, 0x8, flags)


def output_item(flags: int) -> bytes:
    return _item(_MAIN, 0x9, flags)


def collection(kind: int, *body: bytes) -> bytes:
    """A collection wrapping *body*, closed by End Collection."""
    return _item(_MAIN, 0xA, kind) + b"".join(body) + _item(_MAIN, 0xC, None)


# --------------------------------------------------------------------------- descriptors
KEYBOARD_DESC: Final = (
    usage_page(PAGE_GENERIC_DESKTOP)
    + usage(USAGE_KEYBOARD)
    + collection(
        COLLECTION_APPLICATION,
        # byte 0: eight modifier bits, LeftCtrl (0xE0) .. RightGUI (0xE7)
        usage_page(PAGE_KEYBOARD),
        usage_range(0xE0, 0xE7),
        logical_range(0, 1),
        report_size(1),
        report_count(8),
        input_item(VARIABLE),
        # byte 1: reserved
        report_size(8),
        report_count(1),
        input_item(CONSTANT),
        # output byte: Num, Caps, Scroll, Compose, Kana LEDs + 3 padding bits
        usage_page(PAGE_LEDS),
        usage_range(1, 5),
        report_size(1),
        report_count(5),
        output_item(VARIABLE),
        report_size(3),
        report_count(1),
        output_item(CONSTANT),
        # bytes 2..7: up to six key usages (array)
        usage_page(PAGE_KEYBOARD),
        usage_range(0x00, 0xFF),
        logical_range(0x00, 0xFF),
        report_size(8),
        report_count(6),
        input_item(0),
    )
)


def _buttons(n: int = 8) -> bytes:
    return (
        usage_page(PAGE_BUTTON)
        + usage_range(1, n)
        + logical_range(0, 1)
        + report_size(1)
        + report_count(n)
        + input_item(VARIABLE)
    )


def _wheel_and_pan() -> bytes:
    """Vertical wheel (Generic Desktop) then horizontal wheel (Consumer AC Pan), int8 each."""
    return (
        usage_page(PAGE_GENERIC_DESKTOP)
        + usage(USAGE_WHEEL)
        + logical_range(-127, 127)
        + report_size(8)
        + report_count(1)
        + input_item(VARIABLE | RELATIVE)
        + usage_page(PAGE_CONSUMER)
        + usage(USAGE_AC_PAN)
        + report_count(1)
        + input_item(VARIABLE | RELATIVE)
    )


MOUSE_ABS_DESC: Final = (
    usage_page(PAGE_GENERIC_DESKTOP)
    + usage(USAGE_MOUSE)
    + collection(
        COLLECTION_APPLICATION,
        usage(USAGE_POINTER),
        collection(
            COLLECTION_PHYSICAL,
            _buttons(8),
            usage_page(PAGE_GENERIC_DESKTOP),
            usage(USAGE_X),
            usage(USAGE_Y),
            logical_range(0, 32767),
            report_size(16),
            report_count(2),
            input_item(VARIABLE),
            _wheel_and_pan(),
        ),
    )
)

MOUSE_REL_DESC: Final = (
    usage_page(PAGE_GENERIC_DESKTOP)
    + usage(USAGE_MOUSE)
    + collection(
        COLLECTION_APPLICATION,
        usage(USAGE_POINTER),
        collection(
            COLLECTION_PHYSICAL,
            _buttons(8),
            usage_page(PAGE_GENERIC_DESKTOP),
            usage(USAGE_X),
            usage(USAGE_Y),
            logical_range(-127, 127),
            report_size(8),
            report_count(2),
            input_item(VARIABLE | RELATIVE),
            _wheel_and_pan(),
        ),
    )
)


@dataclass(frozen=True, slots=True)
class HidFunction:
    """One ``functions/hid.<name>`` instance of the gadget.

    ``no_out_endpoint`` asks newer kernels not to allocate an interrupt OUT endpoint for
    functions that have no output report (the mice); it is written only where the kernel offers it.
    """

    name: str
    protocol: int
    subclass: int
    report_length: int
    report_desc: bytes
    no_out_endpoint: bool = False


KEYBOARD: Final = HidFunction("keyboard", protocol=1, subclass=1, report_length=8,
                              report_desc=KEYBOARD_DESC)  # fmt: skip
MOUSE_ABS: Final = HidFunction("mouse", protocol=0, subclass=0, report_length=7,
                               report_desc=MOUSE_ABS_DESC, no_out_endpoint=True)  # fmt: skip
MOUSE_REL: Final = HidFunction("mouse_rel", protocol=2, subclass=1, report_length=5,
                               report_desc=MOUSE_REL_DESC, no_out_endpoint=True)  # fmt: skip

# Creation order = /dev/hidgN order: keyboard hidg0, absolute mouse hidg1, relative mouse hidg2.
DEFAULT_FUNCTIONS: Final[tuple[HidFunction, ...]] = (KEYBOARD, MOUSE_ABS, MOUSE_REL)
