"""A keyboard layout built from a per-physical-key table, usable in both directions.

The same table answers "which strokes type this character" (the encoder, for
:func:`hid.text.plan_text`) and "which character does this key produce" (the simulated host in
:mod:`hid.host`), so the two can never disagree about a layout.

Table format, one line per physical key (a line starting with ``#`` is a comment; ``#`` elsewhere
is the character)::

    <KeyboardEvent.code>  <base>  [<Shift>  [<AltGr>  [<Shift+AltGr>]]]

Each level is one character, ``--`` for "nothing on this level", or ``dead`` followed by the
accent for a dead key (``dead^``). Keys not listed produce nothing. Space, Enter and Tab are the
same on every layout and are not listed.
"""

# ruff: noqa: RUF001 - the acute accent U+00B4 in the tables is data, not a typo for a backquote

from __future__ import annotations

import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Final

from hid.keymap import usage_for
from hid.text import ALTGR, LSHIFT, Stroke

# Modifier bytes of the four levels, in order of preference: a character is typed on the
# lowest level that has it, so AltGr is never combined with Shift unless only Shift+AltGr works.
LEVEL_MODIFIERS: Final = (0, LSHIFT, ALTGR, LSHIFT | ALTGR)
NOTHING: Final = "--"
DEAD_PREFIX: Final = "dead"

ENTER: Final = usage_for("Enter")
TAB: Final = usage_for("Tab")
SPACE: Final = usage_for("Space")

# The accents dead keys carry, as the combining mark that composes them with a base letter.
COMBINING: Final[Mapping[str, str]] = {
    "^": "\u0302",
    "`": "\u0300",
    "´": "\u0301",
    "¨": "\u0308",
    "~": "\u0303",
}

# Base characters each dead key composes with. Deliberately the subset that both Windows and
# XKB/Compose produce for every layout here (Latin-1 vowels, ý ÿ, ã õ ñ), so a composition the
# encoder relies on works on either host. ``Ÿ`` is left out: several Windows layouts lack it.
DEAD_BASES: Final[Mapping[str, str]] = {
    "^": "aeiouAEIOU",
    "`": "aeiouAEIOU",
    "´": "aeiouyAEIOUY",
    "¨": "aeiouyAEIOU",
    "~": "aonAON",
}


def compose_table(bases: Mapping[str, str] = DEAD_BASES) -> dict[tuple[str, str], str]:
    """(accent, base) → precomposed character, derived from Unicode normalisation."""
    table: dict[tuple[str, str], str] = {}
    for accent, letters in bases.items():
        for letter in letters:
            composed = unicodedata.normalize("NFC", letter + COMBINING[accent])
            if len(composed) != 1:
                raise ValueError(f"{accent!r} + {letter!r} has no precomposed form")
            table[accent, letter] = composed
    return table


COMPOSE: Final = compose_table()


@dataclass(frozen=True, slots=True)
class KeyOutput:
    """What one key produces on one level: a character, or a dead key carrying an accent."""

    char: str
    dead: bool = False


Levels = tuple[KeyOutput | None, KeyOutput | None, KeyOutput | None, KeyOutput | None]


def _parse_level(field: str, where: str) -> KeyOutput | None:
    if field == NOTHING:
        return None
    if field.startswith(DEAD_PREFIX) and len(field) == len(DEAD_PREFIX) + 1:
        accent = field[-1]
        if accent not in COMBINING:
            raise ValueError(f"{where}: unknown dead key accent {accent!r}")
        return KeyOutput(accent, dead=True)
    if len(field) != 1:
        raise ValueError(f"{where}: level {field!r} is not one character, '--' or 'dead<accent>'")
    return KeyOutput(field)


def parse_keys(name: str, text: str) -> dict[int, Levels]:
    """Parse a key table into HID usage → four levels; errors name the layout and the line."""
    keys: dict[int, Levels] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        fields = raw.split()
        if not fields or fields[0].startswith("#"):
            continue
        where = f"layout {name!r} line {number}"
        code, levels = fields[0], fields[1:]
        if not 1 <= len(levels) <= 4:
            raise ValueError(f"{where}: expected 1 to 4 levels after {code!r}")
        usage = usage_for(code)
        if usage in keys:
            raise ValueError(f"{where}: {code!r} listed twice")
        parsed = [_parse_level(f, where) for f in levels]
        parsed += [None] * (4 - len(parsed))
        keys[usage] = (parsed[0], parsed[1], parsed[2], parsed[3])
    return keys


class KeyTableLayout:
    """A :class:`hid.text.Layout` defined by a key table plus dead-key composition.

    Attributes are plain (not frozen) so the class satisfies the ``Layout`` protocol's settable
    ``name``/``description`` members; treat instances as immutable.
    """

    def __init__(
        self,
        name: str,
        description: str,
        keys: str,
        *,
        keypad_decimal: str = ".",
        compose: Mapping[tuple[str, str], str] = COMPOSE,
    ) -> None:
        self.name = name
        self.description = description
        self.keypad_decimal = keypad_decimal
        self.keys: Mapping[int, Levels] = parse_keys(name, keys)
        self._compose = dict(compose)
        self.has_altgr = any(lv[2] or lv[3] for lv in self.keys.values())
        self._strokes = self._build_strokes()

    # ----------------------------------------------------------------- encoder
    def strokes(self, char: str) -> tuple[Stroke, ...] | None:
        return self._strokes.get(char)

    @property
    def typable(self) -> frozenset[str]:
        """Every character this layout can type."""
        return frozenset(self._strokes)

    def _direct(self) -> Iterator[tuple[KeyOutput, Stroke]]:
        """Every (output, stroke) pair, lowest level first, then in table order."""
        for level, modifiers in enumerate(LEVEL_MODIFIERS):
            for usage, levels in self.keys.items():
                out = levels[level]
                if out is not None:
                    yield out, Stroke(usage, modifiers)

    def _build_strokes(self) -> dict[str, tuple[Stroke, ...]]:
        found: dict[str, tuple[Stroke, ...]] = {
            "\n": (Stroke(ENTER),),
            "\t": (Stroke(TAB),),
            " ": (Stroke(SPACE),),
        }
        dead: dict[str, Stroke] = {}
        for out, stroke in self._direct():
            if out.dead:
                dead.setdefault(out.char, stroke)
            else:
                found.setdefault(out.char, (stroke,))
        # Compositions only for what no key types directly: a direct key is one stroke, works
        # with any host's dead-key settings, and is what a person would press.
        composed: dict[str, tuple[Stroke, ...]] = {}
        for (accent, base), char in self._compose.items():
            if accent in dead and base in found and char not in found:
                composed.setdefault(char, (dead[accent], *found[base]))
        for accent, stroke in dead.items():
            if accent not in found:
                composed.setdefault(accent, (stroke, Stroke(SPACE)))
        found.update(composed)
        return found

    # ----------------------------------------------------------------- decoder
    def compose(self, accent: str, char: str) -> str:
        """What a host shows for dead key *accent* followed by *char*.

        A known composition gives the composed character, Space gives the accent alone, anything
        else gives the accent followed by the character (what Windows does).
        """
        if char == " ":
            return accent
        return self._compose.get((accent, char), accent + char)

    def __repr__(self) -> str:
        return f"KeyTableLayout({self.name!r})"
