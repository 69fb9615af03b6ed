"""Which input devices are passed through: local keyboards and mice, never the appliance's own.

Why exclude by USB ids: on a board whose USB host port sees the appliance's own gadget (the
system test's VM, a board with a loopback cable) passing the gadget's keyboard through would
feed every key back into itself. Devices named ``ipkvm…`` are the appliance's own too.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from appliance.passthrough.keycodes import BUTTON_TO_NAME, EV_KEY, EV_REL, REL_X, REL_Y

Kind = Literal["keyboard", "mouse", "keyboard+mouse"]

KEYBOARD_KEYS: Final = frozenset({30, 44, 28, 57})
"""KEY_A, KEY_Z, KEY_ENTER, KEY_SPACE: a power button or a lid switch is no keyboard."""
BTN_LEFT: Final = 0x110
OWN_NAME_PREFIX: Final = "ipkvm"
INPUT_DIR: Final = Path("/dev/input")


@dataclass(frozen=True, slots=True)
class Identity:
    path: str
    name: str
    vendor: int
    product: int
    aliases: tuple[str, ...] = ()
    """``/dev/input/by-id`` and ``by-path`` links to the node (what people put in config)."""


def kind_of(capabilities: Mapping[int, Sequence[int]]) -> Kind | None:
    """keyboard (letter keys), mouse (X/Y motion and a left button), both, or neither."""
    keys = set(capabilities.get(EV_KEY, ()))
    rel = set(capabilities.get(EV_REL, ()))
    keyboard = keys >= KEYBOARD_KEYS
    mouse = {REL_X, REL_Y} <= rel and BTN_LEFT in keys and bool(keys & BUTTON_TO_NAME.keys())
    if keyboard and mouse:
        return "keyboard+mouse"
    if keyboard:
        return "keyboard"
    return "mouse" if mouse else None


def is_own(identity: Identity, own_ids: Collection[tuple[int, int]]) -> bool:
    return (identity.vendor, identity.product) in own_ids or identity.name.startswith(
        OWN_NAME_PREFIX
    )


def matches(identity: Identity, patterns: Sequence[str]) -> bool:
    """No patterns: every device. A pattern starting with ``/`` matches the node or one of its
    by-id/by-path links; any other matches the device's name (shell wildcards, case-sensitive)."""
    if not patterns:
        return True
    for pattern in patterns:
        if pattern.startswith("/"):
            if any(fnmatch.fnmatchcase(p, pattern) for p in (identity.path, *identity.aliases)):
                return True
        elif fnmatch.fnmatchcase(identity.name, pattern):
            return True
    return False


def aliases_of(path: str, root: Path = INPUT_DIR) -> tuple[str, ...]:
    """The udev links (``by-id``, ``by-path``) that point at *path*."""
    found = []
    for sub in ("by-id", "by-path"):
        try:
            entries = list((root / sub).iterdir())
        except OSError:
            continue
        for link in entries:
            try:
                if os.path.realpath(link) == path:
                    found.append(str(link))
            except OSError:
                continue
    return tuple(sorted(found))


def event_nodes(root: Path = INPUT_DIR) -> list[str]:
    """The evdev nodes present now (the start-up scan; hot-plug follows uevents)."""
    try:
        return sorted(str(p) for p in root.glob("event*"))
    except OSError:
        return []
