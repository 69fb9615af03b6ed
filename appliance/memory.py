"""Where the process's memory goes: glibc's allocator counters and opt-in tracemalloc diffs.

Why: a soak run (bench/soak.py) showed RSS growing by tens of MiB under viewer churn with every
count (fds, tasks, threads) flat. RSS alone cannot tell a leak (Python objects kept) from an
allocator that holds freed memory (fragmented or per-thread arenas). Both views are here, read
through the authenticated ``GET /api/debug/runtime``:

* :func:`malloc_stats` — glibc ``mallinfo2()``: bytes in use vs. bytes free but kept by malloc. A
  leak grows ``in_use``; fragmentation grows ``free`` (and RSS) while ``in_use`` stays flat.
* :class:`TraceDiff` — Python allocations by source line, diffed between two calls. Only when the
  process was started with ``IPKVM_TRACEMALLOC=<frames>`` (tracemalloc slows every allocation by
  a large factor and adds its own memory, so it is never on by default; off, this module costs
  one environment lookup at start-up).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import tracemalloc
from typing import Any

ENV_TRACEMALLOC = "IPKVM_TRACEMALLOC"
MIB = 1024 * 1024


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",  # non-mmapped space allocated from the system (all arenas)
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",  # space in mmapped regions (large blocks)
            "usmblks",
            "fsmblks",
            "uordblks",  # total allocated (in use) space
            "fordblks",  # total free space kept by malloc
            "keepcost",
        )
    ]


def _libc() -> Any:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    if not hasattr(libc, "mallinfo2") or not hasattr(libc, "malloc_trim"):
        return None  # not glibc >= 2.33 (musl, macOS)
    libc.mallinfo2.restype = _MallInfo2
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    libc.malloc_trim.restype = ctypes.c_int
    return libc


_LIBC = _libc()


def malloc_stats() -> dict[str, float] | None:
    """glibc's view of the heap in MiB (None without glibc's ``mallinfo2``).

    ``in_use`` is what the program holds; ``free`` is what malloc keeps for reuse (returned to
    the kernel only from the top of an arena, or by ``malloc_trim``); ``mmap`` is large blocks,
    which go back to the kernel as soon as they are freed.
    """
    if _LIBC is None:
        return None
    info = _LIBC.mallinfo2()
    return {
        "heap": round(info.arena / MIB, 2),
        "in_use": round(info.uordblks / MIB, 2),
        "free": round(info.fordblks / MIB, 2),
        "mmap": round(info.hblkhd / MIB, 2),
    }


TRIM_EVERY = 30.0
"""Seconds between two :func:`trim` calls of :func:`trim_periodically`.

Why: pictures (2.7 MB at 720p, 6 MB at 1080p) come and go at the frame rate; glibc keeps the
freed blocks and let the heap's free part grow to 63-77 MiB in a 4.5-minute soak (RSS +8.8 MiB
after warm-up, ~245 MiB under load). Giving each large block its own mapping
(``MALLOC_MMAP_THRESHOLD_=131072``) fixed RSS (+2.1 MiB, ~176 MiB under load) but cost a page
fault per 4 KiB of every picture: 4.7 → 9.7 % of a core for the demo source alone, 20 → 30 % with
one H.264 viewer. A ``malloc_trim(0)`` every half minute returns the same free pages for a few
milliseconds of a worker thread each time."""


def trim() -> bool:
    """Return the heap's free pages to the kernel (glibc ``malloc_trim(0)``); False without it."""
    if _LIBC is None:
        return False
    return bool(_LIBC.malloc_trim(0))


async def trim_periodically(every: float = TRIM_EVERY) -> None:
    """Call :func:`trim` every *every* seconds in a worker thread (it walks the whole heap), until
    cancelled. Does nothing without glibc."""
    import asyncio

    if _LIBC is None:
        return
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(every)
        await loop.run_in_executor(None, trim)


def start_tracing_from_env() -> bool:
    """Start tracemalloc if ``IPKVM_TRACEMALLOC`` is set (its value: frames per traceback)."""
    value = os.environ.get(ENV_TRACEMALLOC, "")
    if not value or value == "0":
        return False
    try:
        frames = max(1, int(value))
    except ValueError:
        frames = 1
    if not tracemalloc.is_tracing():
        tracemalloc.start(frames)
    return True


class TraceDiff:
    """Python allocations that grew since the previous call (needs tracemalloc running)."""

    def __init__(self) -> None:
        self._previous: tracemalloc.Snapshot | None = None

    def diff(self, top: int = 15) -> dict[str, Any] | None:
        """The *top* source lines by growth since the last call (the first call: by size)."""
        if not tracemalloc.is_tracing():
            return None
        snapshot = tracemalloc.take_snapshot().filter_traces(
            (
                tracemalloc.Filter(False, tracemalloc.__file__),
                tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
            )
        )
        stats: list[tracemalloc.Statistic] | list[tracemalloc.StatisticDiff]
        if self._previous is None:
            stats = snapshot.statistics("lineno")
        else:
            stats = snapshot.compare_to(self._previous, "lineno")
        self._previous = snapshot
        current, peak = tracemalloc.get_traced_memory()
        return {
            "traced_mib": round(current / MIB, 2),
            "peak_mib": round(peak / MIB, 2),
            "top": [
                {
                    "where": str(s.traceback),
                    "kib": round(s.size / 1024, 1),
                    "diff_kib": round(getattr(s, "size_diff", s.size) / 1024, 1),
                    "count": s.count,
                    "count_diff": getattr(s, "count_diff", s.count),
                }
                for s in stats[:top]
            ],
        }
