"""Declarations back out as text: ``ipkvm config defaults`` and the list of known keys.

Generated from the same walk the validator uses, so the printed defaults cannot drift from the
ones that apply; the tests also hold ``ipkvm.example.toml`` and ``docs/config.md`` to them.
"""

from __future__ import annotations

from typing import Any

from appliance.config.options import OptionField, members, options, tables

_HEADER = (
    "# ipkvm configuration (TOML). Every key is optional; shown here with its default.",
    "# Unknown keys are errors. Check a file with: ipkvm config check FILE",
)


def toml_value(value: Any) -> str:
    """A typed default as TOML: paths and networks as strings, tuples as arrays, 12.0 as 12."""
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def defaults_toml(root: type) -> str:
    """Every key with its default and its doc as a comment; unset keys commented out."""
    out = list(_HEADER)
    for prefix, section in tables(root).items():
        fields = [m for m in members(section) if isinstance(m, OptionField)]
        if not fields:
            continue  # the root holds only sections
        out += ["", f"[{prefix}]"]
        for m in fields:
            out.append(f"# {m.option.doc}")
            if m.option.default is None:
                out.append(f"# {m.name} = {toml_value(m.option.example)}")
            else:
                out.append(f"{m.name} = {toml_value(m.option.default)}")
    return "\n".join(out) + "\n"


def known_keys(root: type) -> list[str]:
    """All dotted keys, in declaration order."""
    return [key for key, _ in options(root)]
