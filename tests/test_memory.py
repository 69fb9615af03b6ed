"""appliance.memory: allocator counters and opt-in tracemalloc diffs (used by bench/soak.py)."""

from __future__ import annotations

import tracemalloc

import pytest

from appliance import memory


def test_malloc_stats_has_the_fields_the_soak_reads() -> None:
    stats = memory.malloc_stats()
    if stats is None:
        pytest.skip("not glibc")
    assert set(stats) == {"heap", "in_use", "free", "mmap"}
    assert all(v >= 0 for v in stats.values())


def test_trace_diff_is_none_unless_tracing() -> None:
    assert not tracemalloc.is_tracing()
    assert memory.TraceDiff().diff() is None


def test_trace_diff_reports_growth(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(memory.ENV_TRACEMALLOC, "1")
    assert memory.start_tracing_from_env()
    try:
        diff = memory.TraceDiff()
        assert diff.diff(top=3) is not None
        kept = [bytearray(100_000) for _ in range(10)]  # ~1 MB from this line
        second = diff.diff(top=3)
        assert second is not None
        assert any("test_memory.py" in t["where"] and t["diff_kib"] > 900 for t in second["top"])
        del kept
    finally:
        tracemalloc.stop()
