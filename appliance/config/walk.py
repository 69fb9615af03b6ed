"""Validation by walking the section dataclasses: raw TOML tables in, typed sections out.

Two passes, so a derived option can depend on any other key regardless of declaration order:
:func:`validate` checks every key that was written (unknown keys are errors, with a "did you
mean") and fills in the defaults, giving {dotted key: typed value}; :func:`build` then resolves
derived options against a :class:`Context` and constructs the dataclasses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from appliance.config.context import Context
from appliance.config.errors import ConfigError
from appliance.config.options import OptionField, SectionField, dotted, members, options, tables

S = TypeVar("S")

Values = dict[str, Any]
"""Typed values by dotted key, every option present (defaults filled in)."""


def validate(root: type, raw: Mapping[str, Any]) -> Values:
    """Check every key of ``raw`` against the sections under ``root``; fill in the defaults."""
    values: Values = {}
    _check_table(root, root, raw, "", values)
    for key, spec in options(root):
        values.setdefault(key, spec.option.default)
    return values


def _check_table(
    root: type, section: type, table: Mapping[str, Any], prefix: str, values: Values
) -> None:
    by_name = {m.name: m for m in members(section)}
    for name, value in table.items():
        key = dotted(prefix, name)
        member = by_name.get(name)
        if isinstance(member, SectionField):
            if not isinstance(value, dict):
                raise ConfigError(key, f"must be a table ([{key}]), not {value!r}")
            _check_table(root, member.section, value, key, values)
        elif isinstance(member, OptionField):
            values[key] = member.check(key, value)
        else:
            raise ConfigError(
                key, f"unknown key '{key}'{_suggest(root, prefix, name)}", name_key=False
            )


def _suggest(root: type, prefix: str, name: str) -> str:
    """A did-you-mean for an unknown key: a close sibling, or the same name in another section."""
    import difflib  # only on the error path: keeps ``import appliance.config`` small

    siblings = [m.name for m in members(tables(root)[prefix])]
    close = difflib.get_close_matches(name, siblings, n=1, cutoff=0.6)
    if close:
        return f" (did you mean '{dotted(prefix, close[0])}'?)"
    elsewhere = [key for key, _ in options(root) if key.rpartition(".")[2] == name]
    if elsewhere:
        return f" (did you mean '{elsewhere[0]}'?)"
    return ""


def build(section: type[S], prefix: str, values: Values, context: Context, **extra: Any) -> S:
    """Construct ``section`` (and its nested sections) from validated ``values``.

    A derived option still holding its placeholder ("auto", None) gets ``derive(context)``.
    ``extra`` passes fields that are not options (``Config.path``).
    """
    kwargs: dict[str, Any] = dict(extra)
    for m in members(section):
        key = dotted(prefix, m.name)
        if isinstance(m, SectionField):
            kwargs[m.name] = build(m.section, key, values, context)
            continue
        value = values[key]
        if m.option.derive is not None and value == m.option.default:
            value = m.option.derive(context)
        kwargs[m.name] = value
    return section(**kwargs)
