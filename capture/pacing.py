"""Frame-rate caps that never add latency to a source running at (or below) the cap.

Why a token bucket: the obvious "at least one interval since the last frame" rule delays every
frame of a source at exactly the cap by its jitter, and a "slot" schedule (next frame due one
interval after the previous slot) drifts: one early frame moves every later slot forward, and a
source at the cap then waits most of an interval on every frame from then on (seen: 13-17 ms
added per frame at 1080p, depending on how the source's phase met the schedule). A bucket of
``burst`` frames refilled at ``max_fps`` caps the average rate the same way, lets a jittery
source at the cap through at once, and holds back only a source that is really faster (there the
caller takes the freshest frame after the wait, so the picture is at most one source frame old).
A frame may also go out up to ``early`` of an interval before its token is whole (the bucket goes
below zero for it), so a source at exactly the cap whose bucket was drained by a burst is still not
held back by its ordinary jitter. The bucket refills 2 % faster than ``max_fps``: a source at
exactly the cap (or a capture clock a few ppm fast) that drained it with a burst would otherwise
never get its slack back and wait on every frame from then on; so the cap holds to within 2 %.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class FramePacer:
    """Token bucket: :meth:`delay` says how long to wait before the next frame may go out."""

    max_fps: float
    burst: float = 2.0
    early: float = 0.5
    slack: float = 1.02
    _tokens: float = field(default=0.0, init=False)
    _at: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.max_fps <= 0:
            raise ValueError(f"max_fps must be positive, not {self.max_fps}")
        if self.burst < 1:
            raise ValueError(f"burst must be at least one frame, not {self.burst}")
        if not 0 <= self.early < 1:
            raise ValueError(f"early must be in [0, 1), not {self.early}")
        self._tokens = self.burst

    def _refill(self, now: float) -> None:
        if self._at is not None:
            self._tokens = min(
                self.burst, self._tokens + (now - self._at) * self.max_fps * self.slack
            )
        self._at = now

    def delay(self, now: float | None = None) -> float:
        """Seconds until a frame may be sent (0.0: now). Does not take the token."""
        now = time.monotonic() if now is None else now
        self._refill(now)
        return max(0.0, (1.0 - self.early - self._tokens) / (self.max_fps * self.slack))

    def take(self, now: float | None = None) -> None:
        """Record that a frame went out (the bucket may go below zero: early or forced frames)."""
        now = time.monotonic() if now is None else now
        self._refill(now)
        self._tokens -= 1.0
