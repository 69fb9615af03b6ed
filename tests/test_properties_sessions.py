"""Property tests for loading ``STATE_DIR/sessions.json``.

Every request with a session cookie reads this table. A damaged file (a pulled SD card, a
half-restored backup, a hand edit) must cost at most the sessions it no longer describes: the
valid records are kept, every malformed one is dropped, and loading never raises, or every
cookie check would fail with a 500 until someone deletes the file.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from appliance.sessions import FORMAT_VERSION, SessionRecord, SessionTable, dump_sessions

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
digests = st.from_regex(r"[0-9a-f]{64}", fullmatch=True)
valid_items = st.fixed_dictionaries(
    {
        "sha256": digests,
        "user": st.text(max_size=8),
        "password": st.text(max_size=8),
        "created": st.floats(allow_nan=False, allow_infinity=False) | st.integers(),
        "expires": st.floats(allow_nan=False, allow_infinity=False) | st.integers(),
    }
)
# A valid record with one field damaged (wrong type, out of range, missing).
damaged_items = st.tuples(
    valid_items,
    st.sampled_from(["sha256", "user", "password", "created", "expires"]),
    st.one_of(
        json_values,
        st.just(math.nan),
        st.just(math.inf),
        st.just(True),
        digests.map(lambda d: d + "\n"),
        digests.map(str.upper),
        st.just(...),
    ),
).map(lambda t: {k: v for k, v in {**t[0], t[1]: t[2]}.items() if v is not ...})
items = st.lists(st.one_of(valid_items, damaged_items, json_values), max_size=6)


def _is_valid(item: Any) -> bool:
    """The file format, written out independently of the loader."""

    def number(v: Any) -> bool:
        return type(v) in (int, float) and math.isfinite(v)

    return (
        isinstance(item, dict)
        and isinstance(item.get("sha256"), str)
        and re.fullmatch(r"[0-9a-f]{64}", item["sha256"]) is not None
        and isinstance(item.get("user"), str)
        and isinstance(item.get("password"), str)
        and number(item.get("created"))
        and number(item.get("expires"))
    )


def _load(data: bytes) -> dict[str, SessionRecord]:
    with TemporaryDirectory() as tmp:
        path = Path(tmp) / "sessions.json"
        path.write_bytes(data)
        return SessionTable(path, write=lambda p, b: p.write_bytes(b)).load()


@given(items)
@example([{"sha256": "a" * 64 + "\n", "user": "u", "password": "p", "created": 1, "expires": 2}])
def test_valid_records_load_and_malformed_ones_are_dropped(entries: list[Any]) -> None:
    """Exactly the well-formed records are loaded (the last one wins for a repeated digest)."""
    data = json.dumps({"version": FORMAT_VERSION, "sessions": entries}).encode()
    expected = {
        e["sha256"]: SessionRecord(e["user"], e["created"], e["expires"], e["password"])
        for e in entries
        if _is_valid(e)
    }
    assert _load(data) == expected


@given(st.binary(max_size=100) | json_values.map(lambda v: json.dumps(v).encode()))
@example(b"[" * 50_000)  # was RecursionError out of every cookie check
@example(b'{"version": 1, "sessions": ' + b"[" * 50_000)
@example(b'{"version": 1, "sessions": {}}')
def test_any_file_content_loads_without_raising(data: bytes) -> None:
    """Whatever the file holds, loading gives a (possibly empty) table."""
    assert isinstance(_load(data), dict)


@given(st.dictionaries(digests, valid_items.map(lambda e: SessionRecord(
    e["user"], float(e["created"]), float(e["expires"]), e["password"])), max_size=4))  # fmt: skip
def test_written_sessions_load_back(records: dict[str, SessionRecord]) -> None:
    """What the server writes it reads back: same digests, users and fingerprints, times to the
    millisecond it stores."""
    loaded = _load(dump_sessions(records))
    assert loaded.keys() == records.keys()
    for digest, record in records.items():
        got = loaded[digest]
        assert (got.user, got.password) == (record.user, record.password)
        assert got.created == round(record.created, 3) and got.expires == round(record.expires, 3)
