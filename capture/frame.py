"""The two values every video consumer sees: a captured frame and the state of the signal.

Frames are immutable snapshots: the hub hands the same object to every consumer, so nobody may
write into ``image`` after publishing (encoders, matchers and viewers share it without copies).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]
"""A BGR ``uint8`` array of shape (height, width, 3), as OpenCV produces it."""

SignalStatus = Literal["ok", "no_signal", "no_device", "starting", "target_off"]
SIGNAL_STATUSES: Final[tuple[str, ...]] = ("ok", "no_signal", "no_device", "starting", "target_off")


@dataclass(frozen=True, slots=True)
class Frame:
    """One captured picture.

    ``seq`` increments for every published frame; ``content_seq`` only when the pixels differ
    from the previous frame, so consumers can skip re-encoding a static screen.
    ``timestamp`` is ``time.monotonic()`` when the frame was captured.
    """

    image: Image
    seq: int
    content_seq: int
    timestamp: float

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])


@dataclass(frozen=True, slots=True)
class SignalState:
    """What the capture side currently sees, for status displays and the API.

    ``status`` is one of :data:`SIGNAL_STATUSES`; ``message`` says why in words a user
    understands ("No capture device at /dev/video0"); ``fps`` is measured, not configured.
    """

    status: SignalStatus = "starting"
    message: str = ""
    width: int = 0
    height: int = 0
    fps: float = 0.0

    def __post_init__(self) -> None:
        if self.status not in SIGNAL_STATUSES:
            raise ValueError(f"signal status {self.status!r} is not one of {SIGNAL_STATUSES}")

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def as_dict(self) -> dict[str, object]:
        return {
            "status": self.status,
            "message": self.message,
            "width": self.width,
            "height": self.height,
            "fps": round(self.fps, 2),
        }
