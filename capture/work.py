"""Per-frame work counters: how many decodes, encodes, conversions and copies each stage did.

Why: on the board (a Pi 4 class core) every needless pass over a 1080p picture costs a visible
share of a core, so the pipeline's promise — an MJPEG source watched only by MJPEG viewers costs
0 decodes and 0 encodes per frame; a YUYV source watched over H.264 costs exactly one conversion —
is counted where the work happens and asserted by tests, shown in ``/api/state`` and exported as
metrics. CPU time is the calling thread's (``time.thread_time``), so a stage that waits for
nothing but the CPU reports what it cost, not how long it was queued.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Final, Literal, get_args

Kind = Literal["decodes", "encodes", "conversions", "copies"]
KINDS: Final[tuple[Kind, ...]] = get_args(Kind)

Stage = Literal[
    "capture",  # device buffer → frame (a copy out of the mmap buffer)
    "decode",  # the device's JPEG → YUV (only when a consumer needs pixels)
    "yuv",  # packed/semi-planar/4:2:2 YUV → I420 (the encoders' input)
    "bgr",  # → BGR (screen matching, drawing, PNG snapshots, scaled JPEGs)
    "jpeg",  # JPEG for MJPEG viewers and snapshots (0 for a passed-through device JPEG)
    "png",
    "h264",
]
STAGES: Final[tuple[Stage, ...]] = get_args(Stage)


@dataclass
class StageWork:
    """What one stage did in total: counts per kind, and the CPU seconds it took."""

    counts: dict[Kind, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    cpu: float = 0.0


class WorkCounters:
    """Totals since start, per stage and kind; safe to bump from the encoder and pool threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.frames = 0
        """Frames published by the source (the denominator of 'per frame')."""
        self.passthrough = 0
        """Device JPEGs handed to viewers untouched (no decode, no encode)."""
        self.stages: dict[Stage, StageWork] = {s: StageWork() for s in STAGES}

    def add(self, stage: Stage, kind: Kind, cpu: float = 0.0, n: int = 1) -> None:
        with self._lock:
            work = self.stages[stage]
            work.counts[kind] += n
            work.cpu += cpu

    @contextmanager
    def timed(self, stage: Stage, kind: Kind) -> Iterator[None]:
        """Count one *kind* of work in *stage* and the thread CPU time the block took."""
        started = time.thread_time()
        try:
            yield
        finally:
            self.add(stage, kind, time.thread_time() - started)

    def frame(self) -> None:
        with self._lock:
            self.frames += 1

    def passed_through(self) -> None:
        with self._lock:
            self.passthrough += 1

    def total(self, kind: Kind) -> int:
        with self._lock:
            return sum(w.counts[kind] for w in self.stages.values())

    def as_dict(self) -> dict[str, object]:
        """Totals and per-frame averages, for ``/api/state`` (``video.work``)."""
        with self._lock:
            frames = self.frames
            totals: dict[str, int] = {
                k: sum(w.counts[k] for w in self.stages.values()) for k in KINDS
            }
            stages = {
                name: {**w.counts, "cpu_ms": round(w.cpu * 1000, 1)}
                for name, w in self.stages.items()
                if w.cpu or any(w.counts.values())
            }
            passthrough = self.passthrough
        per = max(frames, 1)
        out: dict[str, object] = {"frames": frames, "passthrough": passthrough}
        out.update(totals)
        return {
            **out,
            "per_frame": {k: round(v / per, 3) for k, v in totals.items()},
            "stages": stages,
        }
