"""The interface every video source implements (V4L2 capture, the demo target, QEMU).

A source owns its own reading (thread or task) and pushes into a :class:`capture.hub.FrameHub`;
it reports trouble through the hub's signal state and keeps retrying, so the rest of the appliance
never has to restart it.
"""

from __future__ import annotations

import abc

from capture.hub import FrameHub


class VideoSource(abc.ABC):
    """Feeds one hub until closed."""

    name: str = "source"

    @abc.abstractmethod
    async def start(self, hub: FrameHub) -> None:
        """Begin publishing into *hub*; returns quickly (reading continues in the background).

        Must not raise because a device is missing: that is a signal state, not an error.
        """

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop publishing and release the device, in bounded time."""
