"""``ipkvm.example.toml`` and ``docs/config.md`` agree with the option declarations.

The declarations in ``appliance/config/`` are the one source; these two files are written by hand
(with more prose than a one-line doc), so this is what stops them drifting: every declared key is
in both with its default, and neither names a key that does not exist.
"""

from __future__ import annotations

import re
import tomllib
import typing
from pathlib import Path
from typing import Any, Literal

import pytest

from appliance.config import Config, load_config
from appliance.config.options import OptionField, options
from appliance.config.render import toml_value

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "ipkvm.example.toml"
DOCS = ROOT / "docs" / "config.md"

DECLARED: dict[str, OptionField] = dict(options(Config))

# `| `key` | default | values |`: one row per key (docs/config.md says so above the table)
ROW_RE = re.compile(r"^\| `(?P<key>[a-z0-9_.]+)` \| (?P<default>.+?) \| (?P<values>.+) \|$")
COMMENTED_KEY_RE = re.compile(r"^# (?P<name>[a-z0-9_]+) = ")


def as_toml(value: Any) -> Any:
    """A value as TOML would hand it over, so typed defaults (Path, tuple) compare with files."""
    return tomllib.loads(f"v = {toml_value(value)}")["v"]


def lookup(table: dict[str, Any], key: str) -> Any:
    for part in key.split("."):
        table = table[part]
    return table


def example_blocks() -> dict[str, list[str]]:
    """Lines of ipkvm.example.toml by ``[section]`` header."""
    blocks: dict[str, list[str]] = {}
    current = ""
    for line in EXAMPLE.read_text().splitlines():
        header = re.match(r"^\[([a-z0-9_.]+)\]$", line)
        if header:
            current = header[1]
            blocks[current] = []
        else:
            blocks.setdefault(current, []).append(line)
    return blocks


def doc_rows() -> dict[str, tuple[str, str]]:
    rows: dict[str, tuple[str, str]] = {}
    for line in DOCS.read_text().splitlines():
        m = ROW_RE.match(line)
        if m:
            assert m["key"] not in rows, f"{m['key']} documented twice"
            rows[m["key"]] = (m["default"], m["values"])
    return rows


def test_example_loads_with_the_real_loader_and_equals_the_defaults() -> None:
    # load_config refuses unknown keys, so this also says the example names no stale key
    assert load_config(EXAMPLE) == load_config(None)


@pytest.mark.parametrize("key", list(DECLARED))
def test_example_has_every_key_with_its_default(key: str) -> None:
    spec = DECLARED[key]
    parsed = tomllib.loads(EXAMPLE.read_text())
    section, _, name = key.rpartition(".")
    if spec.option.default is None:  # unset: shown commented out, with an example value
        assert any(line.startswith(f"# {name} = ") for line in example_blocks()[section]), key
        with pytest.raises(KeyError):
            lookup(parsed, key)
    else:
        assert lookup(parsed, key) == as_toml(spec.option.default), key


def test_example_comments_out_only_known_keys() -> None:
    for section, lines in example_blocks().items():
        for line in lines:
            m = COMMENTED_KEY_RE.match(line)
            if m:
                assert f"{section}.{m['name']}" in DECLARED, line


def test_docs_table_lists_every_key_in_declaration_order() -> None:
    assert list(doc_rows()) == list(DECLARED)


@pytest.mark.parametrize("key", list(DECLARED))
def test_docs_default_and_choices(key: str) -> None:
    spec = DECLARED[key]
    default, values = doc_rows()[key]
    if spec.option.default is None:
        assert default.startswith("unset"), (key, default)
    else:
        literal = re.fullmatch(r"`(.+)`", default)
        assert literal, f"{key}: default {default!r} is not a `TOML value`"
        assert as_toml(spec.option.default) == tomllib.loads(f"v = {literal[1]}")["v"], key
    hint = typing.get_type_hints(type(lookup_section(key)))[key.rpartition(".")[2]]
    if typing.get_origin(hint) is Literal:
        for choice in typing.get_args(hint):
            assert f'"{choice}"' in values, f"{key}: {choice!r} not among the documented values"


def lookup_section(key: str) -> object:
    section: object = load_config(None)
    for part in key.split(".")[:-1]:
        section = getattr(section, part)
    return section


@pytest.mark.parametrize("key", [k for k, s in DECLARED.items() if s.option.default is not None])
def test_every_default_passes_its_own_check(key: str) -> None:
    """Defaults are typed values the loader does not re-check; a default out of range fails here."""
    spec = DECLARED[key]
    assert spec.check(key, as_toml(spec.option.default)) == spec.option.default
