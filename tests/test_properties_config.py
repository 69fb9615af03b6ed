"""Property tests for the configuration loader.

An appliance without a screen is debugged from ``ipkvm config check`` alone, so whatever the TOML
file holds, loading it must give a Config or a ``ConfigError`` naming the dotted key at fault (one
the user wrote, or one the schema declares), never a traceback. What loads must be usable: numbers
within their ranges (not NaN), names that are one plain directory entry.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from appliance.config import ConfigError, build_config, known_keys, load_config, parse_listen

KNOWN = known_keys()
SECTIONS = sorted({k.rpartition(".")[0] for k in KNOWN} - {""})

toml_scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),  # TOML's integer range
    st.floats(),  # nan and inf are TOML floats too
    st.text(max_size=12),
    st.dates(),
    st.datetimes(),
)
# Values that pass a check's type test, so generation reaches the range and format checks.
plausible = st.one_of(
    st.sampled_from(
        [
            "auto",
            "demo",
            "hardware",
            "otg",
            "ch9329",
            "absolute",
            "relative",
            "us",
            "de",
            "MJPG",
            "0.0.0.0:8080",
            "[::]:443",
            "x:²",
            "/dev/video0",
            "",
            "ipkvm",
            "ipkvm\n",
            "10.0.0.0/8",
            "stun:stun.example:3478",
        ]
    ),
    st.integers(-10, 100_000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.lists(st.text(max_size=12), max_size=3),
)
toml_values = (
    st.recursive(toml_scalars, lambda inner: st.lists(inner, max_size=3), max_leaves=6) | plausible
)


def _nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """{"a.b": 1} → {"a": {"b": 1}}; a key that is already a value stays a value."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, name = key.split(".")
        table = out
        for part in parents:
            nxt = table.setdefault(part, {})
            if not isinstance(nxt, dict):
                break
            table = nxt
        else:
            table[name] = value
    return out


# Mostly schema keys (so values are checked), some keys near them, some arbitrary tables.
schema_shaped = st.dictionaries(
    st.one_of(
        st.sampled_from(KNOWN),
        st.sampled_from(SECTIONS).map(lambda s: s + ".bogus"),
        st.sampled_from(SECTIONS),
        st.text(min_size=1, max_size=8),
    ),
    toml_values,
    max_size=8,
).map(_nest)
arbitrary_tables = st.recursive(
    st.dictionaries(st.text(max_size=8), toml_scalars, max_size=4),
    lambda inner: st.dictionaries(st.text(max_size=8), inner | toml_values, max_size=4),
    max_leaves=10,
)


def _dotted(table: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    for name, value in table.items():
        key = f"{prefix}.{name}" if prefix else name
        yield key
        if isinstance(value, dict):
            yield from _dotted(value, key)


@given(schema_shaped | arbitrary_tables)
@example({"hid": {"pacing_ms": math.nan}})  # was accepted: NaN fails every range comparison
@example({"server": {"listen": "0.0.0.0:²"}})  # was ValueError from int()
@example({"gadget": {"name": "ipkvm\n"}})  # was accepted: "$" matches before a final newline
@example({"server": ["listen"]})
@example({"target": {"kind": "hardware"}, "video": {"source": 1}})
def test_any_tables_load_or_name_the_key_at_fault(raw: dict[str, Any]) -> None:
    """Loading gives a Config or a ConfigError about a key that is in the input or the schema."""
    try:
        config = build_config(raw)
    except ConfigError as error:
        assert error.key is not None
        assert error.key in set(_dotted(raw)) | set(KNOWN), error
        assert str(error).startswith(f"{error.key}: ") or f"'{error.key}'" in str(error)
        return
    _assert_usable(config)


def _assert_usable(config: Any) -> None:
    """What a loaded config holds can be used as it is."""
    for key in KNOWN:
        value = config
        for part in key.split("."):
            value = getattr(value, part)
        if isinstance(value, float):
            assert math.isfinite(value), key
    for name in (config.gadget.name, config.gadget.udc):
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name), name
    for layout in (config.hid.layout, config.demo.layout):
        assert re.fullmatch(r"[a-z][a-z0-9_-]*", layout), layout
    assert 0 <= config.server.port <= 65535


@given(st.text(max_size=20))
@example("[::1]:٣")  # another script's digit was accepted as port 3
@example("host:")
@example("[::1:80")
def test_listen_address_parses_or_is_refused(text: str) -> None:
    """``server.listen`` is a host and an ASCII port in 0..65535, or a ConfigError."""
    try:
        _host, port = parse_listen("server.listen", text)
    except ConfigError as error:
        assert error.key == "server.listen"
        return
    port_text = text.rpartition(":")[2]
    assert port_text.isascii() and int(port_text) == port <= 65535


@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
@example(b"[hid]\npacing_ms = nan\n")
@example(b"\xff\xfe")
@example(b"[server]\nlisten = 5\n[server]\n")
def test_any_file_loads_or_gives_config_error(data: bytes) -> None:
    """A file of any bytes gives a Config or a ConfigError (not UTF-8, not TOML, a bad key)."""
    from tempfile import TemporaryDirectory

    with TemporaryDirectory() as tmp:
        path = Path(tmp) / "ipkvm.toml"
        path.write_bytes(data)
        try:
            config = load_config(path)
        except ConfigError:
            return
    _assert_usable(config)


def test_nan_option_message_names_the_key() -> None:
    """The refusal of NaN says which key, like every other range error."""
    with pytest.raises(ConfigError, match=r"^hid\.pacing_ms: must be a number, not nan"):
        build_config({"hid": {"pacing_ms": math.nan}})
