"""The frame-rate cap: holds a fast source to max_fps, never delays a source running at the cap.

Driven with explicit clock values: the schedules below are exactly what a 30 fps source with
jitter, a burst, or a 60 fps source present to the encoder.
"""

from __future__ import annotations

import random

import pytest

from capture.pacing import FramePacer

FPS = 30.0
INTERVAL = 1.0 / FPS


def run(pacer: FramePacer, arrivals: list[float]) -> list[float]:
    """Send each frame as soon as the pacer allows; returns the send times."""
    sent: list[float] = []
    clock = 0.0
    for t in arrivals:
        clock = max(clock, t)
        clock += pacer.delay(clock)
        pacer.take(clock)
        sent.append(clock)
    return sent


def test_a_source_at_the_cap_with_jitter_is_never_delayed() -> None:
    rnd = random.Random(7)
    # A timer-driven source: each frame up to 40 % of an interval late, never drifting.
    arrivals = [k * INTERVAL + rnd.uniform(0, 0.4 * INTERVAL) for k in range(3000)]
    sent = run(FramePacer(FPS), arrivals)
    assert max(s - a for s, a in zip(sent, arrivals, strict=True)) == 0.0


def test_a_burst_does_not_leave_a_lasting_delay() -> None:
    # Two extra frames in quick succession, then exactly on schedule: the old slot schedule
    # delayed every later frame by most of an interval from then on. The bucket's slack gives
    # the headroom back within a few seconds.
    arrivals = [0.0, 0.002, 0.004] + [k * INTERVAL for k in range(1, 600)]
    arrivals.sort()
    sent = run(FramePacer(FPS), arrivals)
    delays = [s - a for s, a in zip(sent, arrivals, strict=True)]
    assert max(delays[150:]) == 0.0
    assert sum(d > 0 for d in delays) < 100


def test_a_faster_source_is_held_to_the_cap() -> None:
    arrivals = [k / 60.0 for k in range(1200)]  # 20 s at 60 fps
    pacer = FramePacer(FPS)
    sent: list[float] = []
    clock = 0.0
    for t in arrivals:
        if t < clock:
            continue  # the caller takes the freshest frame: older ones are skipped
        clock = t + pacer.delay(t)
        pacer.take(clock)
        sent.append(clock)
    rate = (len(sent) - 1) / (sent[-1] - sent[0])
    assert 29.0 <= rate <= 30.0 * 1.02 + 0.1
    # and no window of one second carries more than the cap plus the burst
    for i, start in enumerate(sent):
        inside = [s for s in sent[i:] if s < start + 1.0]
        assert len(inside) <= FPS * 1.02 + 3


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="max_fps"):
        FramePacer(0)
    with pytest.raises(ValueError, match="burst"):
        FramePacer(30, burst=0.5)
    with pytest.raises(ValueError, match="early"):
        FramePacer(30, early=1.0)
