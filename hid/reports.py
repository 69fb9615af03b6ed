"""Report state machines: what is held down, and the exact report bytes that say so.

The state is per appliance (one target keyboard, one target mouse) but every press is recorded
with the *client* that made it, so a vanished client releases only its own keys.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from hid.keymap import ERROR_ROLLOVER, is_modifier, modifier_bit

ABS_MAX = 32767
REL_MAX = 127
BUTTONS = ("left", "right", "middle", "back", "forward")


class ReportKind(enum.Enum):
    KEYBOARD = "keyboard"
    MOUSE_ABS = "mouse_abs"
    MOUSE_REL = "mouse_rel"


@dataclass(frozen=True, slots=True)
class Report:
    """One HID input report for one function, exactly as the host will receive it."""

    kind: ReportKind
    data: bytes


def keyboard_report(modifiers: int, keys: list[int] | tuple[int, ...]) -> Report:
    """Boot keyboard report ``[mods, 0, k1..k6]``; more than six keys → ErrorRollOver."""
    slots = [ERROR_ROLLOVER] * 6 if len(keys) > 6 else [*keys, *([0] * (6 - len(keys)))]
    return Report(ReportKind.KEYBOARD, bytes([modifiers & 0xFF, 0, *slots]))


def abs_mouse_report(buttons: int, x: int, y: int, wheel: int = 0, pan: int = 0) -> Report:
    """``[buttons, x lo, x hi, y lo, y hi, wheel, pan]`` with x, y in 0..32767."""
    x = min(max(x, 0), ABS_MAX)
    y = min(max(y, 0), ABS_MAX)
    return Report(
        ReportKind.MOUSE_ABS,
        bytes([buttons & 0xFF, x & 0xFF, x >> 8, y & 0xFF, y >> 8, wheel & 0xFF, pan & 0xFF]),
    )


def rel_mouse_report(buttons: int, dx: int, dy: int, wheel: int = 0, pan: int = 0) -> Report:
    """Boot mouse ``[buttons, dx, dy, wheel, pan]``; deltas are int8 two's complement."""
    for v in (dx, dy, wheel, pan):
        if not -127 <= v <= 127:
            raise ValueError(f"relative value {v} outside -127..127")
    return Report(
        ReportKind.MOUSE_REL,
        bytes([buttons & 0xFF, dx & 0xFF, dy & 0xFF, wheel & 0xFF, pan & 0xFF]),
    )


def split_delta(dx: int, dy: int, limit: int = REL_MAX) -> list[tuple[int, int]]:
    """Split a large relative move into steps within ±limit, preserving the exact sum."""
    steps: list[tuple[int, int]] = []
    while dx or dy:
        sx = max(-limit, min(limit, dx))
        sy = max(-limit, min(limit, dy))
        steps.append((sx, sy))
        dx -= sx
        dy -= sy
    return steps


@dataclass
class KeyboardState:
    """Keys held on the target, each with the set of clients holding it.

    A key stays down while any client holds it, so two admins pressing Shift do not fight.
    Non-modifier keys are kept in press order: the report lists the oldest six.
    """

    held: dict[int, set[str]] = field(default_factory=dict)

    def press(self, client: str, usage: int) -> bool:
        """Record a press; True when the report changes."""
        holders = self.held.get(usage)
        if holders is None:
            self.held[usage] = {client}
            return True
        holders.add(client)
        return False

    def release(self, client: str, usage: int) -> bool:
        holders = self.held.get(usage)
        if holders is None or client not in holders:
            return False
        holders.discard(client)
        if holders:
            return False
        del self.held[usage]
        return True

    def release_client(self, client: str) -> bool:
        changed = False
        for usage in list(self.held):
            changed |= self.release(client, usage)
        return changed

    def release_all(self) -> bool:
        changed = bool(self.held)
        self.held.clear()
        return changed

    def client_keys(self, client: str) -> list[int]:
        return [u for u, holders in self.held.items() if client in holders]

    @property
    def modifiers(self) -> int:
        bits = 0
        for usage in self.held:
            if is_modifier(usage):
                bits |= modifier_bit(usage)
        return bits

    @property
    def keys(self) -> list[int]:
        return [u for u in self.held if not is_modifier(u)]

    def report(self) -> Report:
        return keyboard_report(self.modifiers, self.keys)


@dataclass
class MouseState:
    """Buttons (per client, like keys), pointer position and the active mode."""

    absolute: bool = True
    x: int = ABS_MAX // 2
    y: int = ABS_MAX // 2
    held: dict[int, set[str]] = field(default_factory=dict)

    @property
    def buttons(self) -> int:
        bits = 0
        for bit in self.held:
            bits |= bit
        return bits

    def press(self, client: str, bit: int) -> bool:
        before = self.buttons
        self.held.setdefault(bit, set()).add(client)
        return self.buttons != before

    def release(self, client: str, bit: int) -> bool:
        holders = self.held.get(bit)
        if not holders or client not in holders:
            return False
        holders.discard(client)
        if not holders:
            del self.held[bit]
            return True
        return False

    def release_client(self, client: str) -> bool:
        changed = False
        for bit in list(self.held):
            changed |= self.release(client, bit)
        return changed

    def release_all(self) -> bool:
        changed = bool(self.held)
        self.held.clear()
        return changed

    def report(self, wheel: int = 0, pan: int = 0) -> Report:
        if self.absolute:
            return abs_mouse_report(self.buttons, self.x, self.y, wheel, pan)
        return rel_mouse_report(self.buttons, 0, 0, wheel, pan)


def button_bit(name: str) -> int:
    try:
        return 1 << BUTTONS.index(name)
    except ValueError:
        raise ValueError(f"unknown mouse button {name!r}; expected one of {BUTTONS}") from None
