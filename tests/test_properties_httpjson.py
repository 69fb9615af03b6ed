"""Property tests for JSON request bodies: bad input is a 400 with a message, never a 500."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from hypothesis import example, given
from hypothesis import strategies as st

from appliance.api.httpjson import parse_json_body

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)


@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode), st.booleans())
@example(b"[" * 100_000, False)  # was RecursionError: a 500 for a 100 KB body
@example(b"\xef\xbb\xbf{}", False)
@example(b"1" * 5000, False)  # longer than int()'s digit limit
@example(b"  \n", True)
def test_any_body_is_an_object_or_a_400(raw: bytes, optional: bool) -> None:
    try:
        data = parse_json_body(raw, optional=optional)
    except web.HTTPException as exc:
        assert exc.status == 400
        assert json.loads(exc.text or "")["error"]
        return
    assert isinstance(data, dict)


@given(json_values)
def test_json_objects_are_accepted_as_written(value: Any) -> None:
    """Any JSON object comes back equal; any other JSON value is refused as not an object."""
    raw = json.dumps(value).encode()
    try:
        data = parse_json_body(raw)
    except web.HTTPException as exc:
        assert not isinstance(value, dict)
        assert "JSON object" in (exc.text or "")
        return
    assert json.dumps(data) == json.dumps(value)
