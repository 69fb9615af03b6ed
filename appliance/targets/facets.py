"""The facets of a target besides video and HID: power and virtual media, each with a null backend.

Why null backends rather than ``None``: a target that lacks a facet (a bare V4L2 + OTG appliance
with no ATX wiring, a demo machine with no media) still answers for it — "unavailable", with a
reason — so the API, the console and scripts ask one question ("what does this facet say?")
instead of checking for absence everywhere. The control subsystems (ATX, KVM switch, virtual
media) plug in here as real backends of these interfaces.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from appliance.atx.status import (
    LEDS,
    POWER_ACTIONS,
    ActionRefused,
    PowerAction,
    PowerState,
    PowerStatus,
)

__all__ = [
    "LEDS",
    "POWER_ACTIONS",
    "ActionRefused",
    "FacetUnavailable",
    "MediaFacet",
    "MediaKind",
    "MediaSpec",
    "NullMedia",
    "NullPower",
    "PowerAction",
    "PowerFacet",
    "PowerState",
    "PowerStatus",
]


class FacetUnavailable(Exception):
    """The target has no backend for this facet (the message says why, for the API's 409)."""


class PowerFacet(Protocol):
    """Switch the target on and off and say whether it is on (ATX: ``appliance.atx``)."""

    @property
    def available(self) -> bool: ...

    @property
    def state(self) -> PowerState: ...

    def status(self) -> PowerStatus:
        """State, LEDs and whether an action is in progress."""

    async def act(self, action: PowerAction) -> None:
        """Carry out ``action``; raises FacetUnavailable when there is no power control and
        ActionRefused when it cannot run now (busy, or already in that state)."""

    async def press(self, seconds: float) -> None:
        """Hold the power button for ``seconds`` (ValueError when out of bounds)."""

    def subscribe(self, listener: Callable[[PowerStatus], None]) -> Callable[[], None]:
        """Call ``listener`` on every change of :meth:`status`; returns the unsubscribe."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...


MediaKind = Literal["cdrom", "flash"]


@dataclass(frozen=True)
class MediaSpec:
    """What to put in the target's drive: one block device or image file, already on the appliance.

    Why a path and not a name or URL: the media store resolves names (its image directory) and
    URLs (a finished download, or a block device served by a network block engine for streaming)
    to something the kernel or a hypervisor can open, so every backend takes the same thing.
    """

    path: Path
    kind: MediaKind
    read_only: bool  # always True for a CD-ROM
    label: str  # what the API and console show: the image's name or the URL


class MediaFacet(Protocol):
    """Virtual media: an image the target sees as a USB CD-ROM or flash drive."""

    @property
    def available(self) -> bool: ...

    def status(self) -> dict[str, object]:
        """At least ``available``, ``inserted`` and, when inserted, ``label``, ``kind`` and
        ``read_only``."""

    async def insert(self, spec: MediaSpec) -> None:
        """Put ``spec`` in the drive (replacing nothing: ActionRefused when one is inserted);
        FacetUnavailable when the target has no virtual media."""

    async def eject(self) -> None:
        """Empty the drive (no-op when empty)."""


class NullPower:
    """No power control wired to this target."""

    available = False
    state: PowerState = "unknown"

    def __init__(self, reason: str = "this target has no power control") -> None:
        self.reason = reason

    def status(self) -> PowerStatus:
        return PowerStatus(self.state, dict.fromkeys(LEDS), available=False, reason=self.reason)

    async def act(self, action: PowerAction) -> None:
        raise FacetUnavailable(self.reason)

    async def press(self, seconds: float) -> None:
        raise FacetUnavailable(self.reason)

    def subscribe(self, listener: Callable[[PowerStatus], None]) -> Callable[[], None]:
        return lambda: None

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass


class NullMedia:
    """No virtual media on this target."""

    available = False

    def __init__(self, reason: str = "this target has no virtual media") -> None:
        self.reason = reason

    def status(self) -> dict[str, object]:
        return {"available": False, "inserted": False, "reason": self.reason}

    async def insert(self, spec: MediaSpec) -> None:
        raise FacetUnavailable(self.reason)

    async def eject(self) -> None:
        pass
