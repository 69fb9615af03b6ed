"""The interface every video source implements (V4L2 capture, the demo target, QEMU).

A source owns its own reading (thread or task) and pushes into a :class:`capture.hub.FrameHub`;
it reports trouble through the hub's signal state and keeps retrying, so the rest of the appliance
never has to restart it.
"""

from __future__ import annotations

import abc

from capture.hub import FrameHub


class EdidUnsupported(Exception):
    """This source has no HDMI receiver whose EDID could be read or set (the message says why)."""


class VideoSource(abc.ABC):
    """Feeds one hub until closed."""

    name: str = "source"

    async def read_edid(self) -> bytes:
        """The EDID the receiver offers the target (b"" if none is set)."""
        raise EdidUnsupported(f"the {self.name} video source has no EDID")

    async def write_edid(self, edid: bytes) -> None:
        """Offer *edid* to the target from now on (the target sees a re-plug)."""
        raise EdidUnsupported(f"the {self.name} video source has no EDID")

    def edid_state(self) -> dict[str, object] | None:
        """What happened to the configured EDID (None: this source has none)."""
        return None

    @abc.abstractmethod
    async def start(self, hub: FrameHub) -> None:
        """Begin publishing into *hub*; returns quickly (reading continues in the background).

        Must not raise because a device is missing: that is a signal state, not an error.
        """

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop publishing and release the device, in bounded time."""
