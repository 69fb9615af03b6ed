"""Target keyboard layouts: which keys type a character on the *target's* layout.

The appliance sends physical keys; the target applies its own layout. So typing text needs the
target's layout, chosen by name here (``get_layout("de")``). The tables are in :mod:`.tables`, the
machinery in :mod:`.table`; docs/layouts.md explains both and how to add a layout.
"""

from __future__ import annotations

from typing import Final

from hid.layouts import tables
from hid.layouts.table import COMPOSE, DEAD_BASES, KeyOutput, KeyTableLayout

__all__ = [
    "ALIASES",
    "COMPOSE",
    "DEAD_BASES",
    "LAYOUT_NAMES",
    "KeyOutput",
    "KeyTableLayout",
    "UnknownLayout",
    "get_layout",
]


class UnknownLayout(KeyError):
    """A layout name that is neither a layout nor an alias; the message lists the valid names."""

    def __str__(self) -> str:
        # KeyError's str() is the repr of its argument; a message should read as a sentence.
        return str(self.args[0]) if self.args else "unknown layout"


_LAYOUTS: Final[dict[str, KeyTableLayout]] = {
    layout.name: layout
    for layout in (
        KeyTableLayout("us", "English (US)", tables.US),
        KeyTableLayout("gb", "English (UK)", tables.GB),
        KeyTableLayout("de", "German (QWERTZ)", tables.DE, keypad_decimal=","),
        KeyTableLayout("fr", "French (AZERTY)", tables.FR),
        KeyTableLayout("es", "Spanish (Spain)", tables.ES),
        KeyTableLayout("it", "Italian", tables.IT),
        KeyTableLayout("ch-de", "Swiss German (QWERTZ)", tables.CH_DE),
        KeyTableLayout("se", "Swedish", tables.SE, keypad_decimal=","),
        KeyTableLayout("fi", "Finnish", tables.SE, keypad_decimal=","),
        KeyTableLayout("no", "Norwegian", tables.NO, keypad_decimal=","),
        KeyTableLayout("dk", "Danish", tables.DK, keypad_decimal=","),
    )
}

LAYOUT_NAMES: Final[tuple[str, ...]] = tuple(_LAYOUTS)

# Other spellings people use: language tags, ISO country codes, XKB names.
ALIASES: Final[dict[str, str]] = {
    "en-us": "us",
    "en": "us",
    "en-gb": "gb",
    "uk": "gb",
    "de-de": "de",
    "fr-fr": "fr",
    "es-es": "es",
    "it-it": "it",
    "de-ch": "ch-de",
    "ch": "ch-de",
    "sv": "se",
    "sv-se": "se",
    "fi-fi": "fi",
    "nb": "no",
    "nb-no": "no",
    "nn": "no",
    "nn-no": "no",
    "no-no": "no",
    "da": "dk",
    "da-dk": "dk",
}


def get_layout(name: str) -> KeyTableLayout:
    """The layout called *name* (case-insensitive; ``_`` and ``-`` alike; aliases accepted)."""
    key = name.strip().lower().replace("_", "-")
    key = ALIASES.get(key, key)
    try:
        return _LAYOUTS[key]
    except KeyError:
        valid = ", ".join(LAYOUT_NAMES)
        raise UnknownLayout(f"unknown keyboard layout {name!r}; valid layouts: {valid}") from None
