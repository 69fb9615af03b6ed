"""Text → keystrokes: the interface between keyboard layouts and the typing engine.

A layout answers "which key strokes type this character on the *target's* layout"; planning a
text turns it into strokes and an explicit list of the characters the layout cannot type, so
nothing is ever dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

# Modifier bits, as in the boot report's first byte.
LCTRL, LSHIFT, LALT, LGUI, RCTRL, RSHIFT, RALT, RGUI = (1 << i for i in range(8))
ALTGR = RALT


@dataclass(frozen=True, slots=True)
class Stroke:
    """Press *usage* with exactly *modifiers* held, then release both."""

    usage: int
    modifiers: int = 0


class Layout(Protocol):
    name: str
    description: str

    def strokes(self, char: str) -> tuple[Stroke, ...] | None:
        """Strokes that type *char* (dead keys: the dead key, then the base), None if untypable."""
        ...


@dataclass(frozen=True, slots=True)
class Untypable:
    index: int
    char: str

    def as_dict(self) -> dict[str, object]:
        return {"index": self.index, "char": self.char, "codepoint": f"U+{ord(self.char):04X}"}


@dataclass
class TextPlan:
    """Strokes with the index of the character each belongs to, plus what cannot be typed."""

    strokes: list[tuple[int, Stroke]] = field(default_factory=list)
    untypable: list[Untypable] = field(default_factory=list)
    chars: int = 0


def plan_text(text: str, layout: Layout) -> TextPlan:
    plan = TextPlan(chars=len(text))
    for index, char in enumerate(text):
        if char == "\r":
            # "\r\n" types one Enter; a lone "\r" is Enter too.
            if text[index + 1 : index + 2] == "\n":
                continue
            char = "\n"
        found = layout.strokes(char)
        if found is None:
            plan.untypable.append(Untypable(index, text[index]))
            continue
        plan.strokes.extend((index, stroke) for stroke in found)
    return plan
