"""The local keyboard's port-switching hotkey: a sequence of keys, then the port's digit.

``passthrough.hotkey = "scrolllock scrolllock"`` means: tap Scroll Lock twice, then 1..9 (or 0
for port 10, on the digit row or the keypad). Each step may be a chord (``"ctrl+alt"``): the
step's last key completes it while the others are held. Why swallow: the target must not see the
keys that steer the appliance. Why replay: a sequence that is broken off (another key, or no next
step within ``timeout``) was typing after all, so the swallowed taps are handed on, late but not
lost. A chord's held modifiers are forwarded as they are pressed (the target sees Ctrl+Alt alone,
which does nothing); only each step's last key and the digit are swallowed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from hid.keynames import parse_chords

DIGITS: Final[dict[str, int]] = {
    **{f"Digit{n}": n or 10 for n in range(10)},
    **{f"Numpad{n}": n or 10 for n in range(10)},
}


@dataclass(frozen=True, slots=True)
class Outcome:
    """What to do with one key event."""

    forward: bool
    """Send this event on to the target."""
    replay: tuple[str, ...] = ()
    """Taps (press + release) to send first: a broken-off sequence's swallowed keys."""
    port: int | None = None
    """The hotkey is complete: select this switch port."""


FORWARD: Final = Outcome(forward=True)
SWALLOW: Final = Outcome(forward=False)


def parse_hotkey(text: str) -> tuple[tuple[str, ...], ...]:
    """The steps of a hotkey setting (``UnknownKey``/``ValueError`` when it names no keys)."""
    steps = tuple(tuple(chord) for chord in parse_chords(text))
    for step in steps:
        if step[-1] in DIGITS:
            raise ValueError(
                f"a hotkey step must not end in a digit ({step[-1]}): digits pick the port"
            )
    return steps


@dataclass
class HotkeyDetector:
    steps: tuple[tuple[str, ...], ...]
    timeout: float
    """Seconds allowed between one step and the next (and the digit)."""
    _matched: int = 0
    _swallowed: list[str] = field(default_factory=list)
    _pending_release: set[str] = field(default_factory=set)
    deadline: float | None = None
    """When the sequence under way lapses (None: none is under way)."""

    def key(self, name: str, down: bool, now: float, held: frozenset[str]) -> Outcome:
        """A key press or release (``KeyboardEvent.code``); *held*: keys down locally."""
        if not down:
            if name in self._pending_release:
                self._pending_release.discard(name)
                return SWALLOW
            return FORWARD
        replay = self.expire(now)
        if self._matched == len(self.steps) and name in DIGITS:
            self._reset()
            self._pending_release.add(name)
            return Outcome(forward=False, port=DIGITS[name])
        if self._matched < len(self.steps) and self._completes(
            self.steps[self._matched], name, held
        ):
            return self._advance(name, now, replay)
        if self._matched:
            # Broken off: hand the swallowed taps on, then see whether this key starts anew.
            replay += tuple(self._swallowed)
            self._reset()
            if self._completes(self.steps[0], name, held):
                return self._advance(name, now, replay)
        return Outcome(forward=True, replay=replay)

    def expire(self, now: float) -> tuple[str, ...]:
        """The swallowed taps to replay if the sequence under way has lapsed by *now*."""
        if self.deadline is None or now < self.deadline:
            return ()
        replay = tuple(self._swallowed)
        self._reset()
        return replay

    def _advance(self, name: str, now: float, replay: tuple[str, ...]) -> Outcome:
        self._matched += 1
        self._swallowed.append(name)
        self._pending_release.add(name)
        self.deadline = now + self.timeout
        return Outcome(forward=False, replay=replay)

    @staticmethod
    def _completes(step: tuple[str, ...], name: str, held: frozenset[str]) -> bool:
        return step[-1] == name and all(k in held for k in step[:-1])

    def _reset(self) -> None:
        self._matched = 0
        self._swallowed.clear()
        self.deadline = None
