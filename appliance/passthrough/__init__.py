"""Local keyboard and mouse passthrough: input devices plugged into the appliance, forwarded to
the target through the HID controller as their own clients (docs/passthrough.md).

Modules, one job each: :mod:`.keycodes` (evdev codes → HID names), :mod:`.translate` (events →
controller calls), :mod:`.hotkey` (the port-switching sequence), :mod:`.reader` (non-blocking fd
reads), :mod:`.session` (one grabbed device), :mod:`.uevent` (hot-plug), :mod:`.devices` (which
devices), :mod:`.manager` (all of it).
"""

from __future__ import annotations

from appliance.passthrough.manager import Passthrough, Settings

__all__ = ["Passthrough", "Settings"]
