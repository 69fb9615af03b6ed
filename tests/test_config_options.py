"""The option mechanism itself, on small sections of its own (the real ones: test_config.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from appliance.config import ConfigError, HidConfig, OtgConfig, load_config
from appliance.config.checks import int_range
from appliance.config.context import Context
from appliance.config.options import members, option
from appliance.config.render import defaults_toml, known_keys
from appliance.config.walk import build, validate

Mode = Literal["fast", "slow"]


def _mode_for(context: Context) -> Mode:
    return "fast" if context.target == "demo" else "slow"


@dataclass(frozen=True, slots=True, kw_only=True)
class Inner:
    depth: int = option(3, check=int_range(1, 9), doc="how deep")


@dataclass(frozen=True, slots=True, kw_only=True)
class Outer:
    mode: Mode = option("auto", derive=_mode_for, doc="auto: fast for the demo")
    colour: Literal["red", "blue"] = option("red", doc="a closed set")
    inner: Inner


@dataclass(frozen=True, slots=True)
class Root:
    outer: Outer


CONTEXT = Context(target="demo", state_dir=Path("/s"))


def test_walk_fills_defaults_derives_and_nests() -> None:
    values = validate(Root, {"outer": {"inner": {"depth": 5}}})
    assert values == {"outer.mode": "auto", "outer.colour": "red", "outer.inner.depth": 5}
    root = build(Root, "", values, CONTEXT)
    assert root == Root(outer=Outer(mode="fast", colour="red", inner=Inner(depth=5)))
    explicit = build(Root, "", validate(Root, {"outer": {"mode": "slow"}}), CONTEXT)
    assert explicit.outer.mode == "slow"


def test_literal_is_the_closed_set_and_the_placeholder_comes_first() -> None:
    with pytest.raises(ConfigError, match="must be one of 'auto', 'fast', 'slow', not 'x'"):
        validate(Root, {"outer": {"mode": "x"}})
    with pytest.raises(ConfigError, match="must be one of 'red', 'blue', not 'auto'"):
        validate(Root, {"outer": {"colour": "auto"}})  # no derive: no placeholder


def test_unknown_nested_key_suggests_a_sibling() -> None:
    with pytest.raises(ConfigError) as info:
        validate(Root, {"outer": {"inner": {"dept": 1}}})
    assert info.value.key == "outer.inner.dept"
    assert str(info.value) == "unknown key 'outer.inner.dept' (did you mean 'outer.inner.depth'?)"


def test_rendering_walks_the_same_declarations() -> None:
    assert known_keys(Root) == ["outer.mode", "outer.colour", "outer.inner.depth"]
    text = defaults_toml(Root)
    assert '[outer]\n# auto: fast for the demo\nmode = "auto"\n' in text
    assert "[outer.inner]\n# how deep\ndepth = 3\n" in text


def test_an_option_without_an_implied_check_must_name_one() -> None:
    @dataclass(frozen=True, slots=True, kw_only=True)
    class Unchecked:
        count: int = option(1, doc="no range given")

    with pytest.raises(TypeError, match=r"Unchecked\.count: .*needs an explicit check="):
        members(Unchecked)


def test_plain_options_are_dataclass_defaults_derived_ones_are_not() -> None:
    assert OtgConfig() == load_config(None).hid.otg  # usable on its own (e.g. in tests)
    # mypy's dataclass plugin takes any ``= option(...)`` for a default, so only runtime says this
    with pytest.raises(TypeError, match="output"):
        HidConfig(otg=OtgConfig(), ch9329=load_config(None).hid.ch9329)
