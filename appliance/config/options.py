"""How an option is declared, and how a section's options are found again.

A *section* is a frozen dataclass; each of its fields is either an *option* (declared with
:func:`option`, which keeps default, check and doc in the field's metadata) or a nested section
(a field whose type is another section dataclass: ``hid.otg``). That one declaration is all there
is: validation, defaults, ``ipkvm config defaults`` and :func:`known_keys` walk the dataclasses
(:func:`members`), so a key cannot be documented in one place and forgotten in another.

The check of a ``bool``, ``str``, ``Path`` or ``Literal[...]`` option comes from the field's type,
so a closed set of values is written once, as the ``Literal``; everything else names its check.

A *derived* option (``derive=``) has a placeholder default ("auto", or None for "unset") that
stands for "work it out": the field's type is the narrower resolved type (``Literal["demo", "otg",
"ch9329"]``, ``Path``), the placeholder is accepted on input only, and ``derive`` computes the
value from a :class:`~appliance.config.context.Context` once the rest of the file is validated.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypeVar, overload

from appliance.config.checks import Check, boolean, choice, path, text

if TYPE_CHECKING:
    from appliance.config.context import Context

T = TypeVar("T")

_METADATA_KEY = "ipkvm.config.option"


class Option(NamedTuple):
    """What :func:`option` stores in a field's metadata.

    This and the other records of the mechanism are NamedTuples rather than dataclasses: they are
    created at import, where a frozen dataclass costs several times as much (start-up on a Pi Zero).
    """

    default: Any
    """The typed default; for a derived option the placeholder that asks for derivation."""
    doc: str
    """One line, shown as the comment above the key by ``ipkvm config defaults``."""
    check: Check[Any] | None = None
    """None: picked from the field's type (bool, str, Path, Literal)."""
    derive: Callable[[Context], Any] | None = None
    example: Any = None
    """Shown commented out by ``ipkvm config defaults`` when the default is None (unset)."""


@overload
def option(default: T, *, doc: str, check: Check[T] | None = None) -> T: ...


@overload
def option(
    default: str | None,
    *,
    doc: str,
    derive: Callable[[Context], T],
    check: Check[T | None] | None = None,
    example: Any = None,
) -> T: ...


def option(
    default: Any,
    *,
    doc: str,
    check: Check[Any] | None = None,
    derive: Callable[[Context], Any] | None = None,
    example: Any = None,
) -> Any:
    """Declare an option: ``name: type = option(default, doc=..., check=...)`` in a section.

    Typed to return the field's type, so mypy checks the default (and a derived option's
    ``derive`` result) against the annotation. A derived option has no dataclass default: its
    placeholder is not a value of the field's type, so the loader always passes the resolved one.
    """
    spec = Option(default=default, doc=doc, check=check, derive=derive, example=example)
    metadata = {_METADATA_KEY: spec}
    if derive is not None:
        return dataclasses.field(metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


class OptionField(NamedTuple):
    """An option of a section, with its check resolved."""

    name: str
    option: Option
    check: Check[Any]


class SectionField(NamedTuple):
    """A nested section: a field whose type is another section dataclass."""

    name: str
    section: type


Member = OptionField | SectionField


_members: dict[type, tuple[Member, ...]] = {}


def members(section: type) -> tuple[Member, ...]:
    """The options and nested sections of ``section``, in declaration order.

    Fields that are neither (``Config.path``) are skipped. Cached: type hints are resolved once
    per class, on first use rather than at import.
    """
    cached = _members.get(section)
    if cached is not None:
        return cached
    hints = typing.get_type_hints(section)
    found: list[Member] = []
    for f in dataclasses.fields(section):
        hint = hints[f.name]
        spec = f.metadata.get(_METADATA_KEY)
        if isinstance(spec, Option):
            check = spec.check or _check_from_type(f"{section.__name__}.{f.name}", hint, spec)
            found.append(OptionField(f.name, spec, check))
        elif isinstance(hint, type) and dataclasses.is_dataclass(hint):
            found.append(SectionField(f.name, hint))
    _members[section] = result = tuple(found)
    return result


def _check_from_type(where: str, hint: Any, spec: Option) -> Check[Any]:
    """The check a type implies; a derived option's placeholder is accepted on top of a Literal."""
    if typing.get_origin(hint) is Literal:
        values = typing.get_args(hint)
        if spec.derive is not None and spec.default not in values:
            values = (spec.default, *values)
        return choice(*values)
    if hint is bool:
        return boolean
    if hint is str:
        return text
    if hint is Path:
        return path
    raise TypeError(f"{where}: a {hint!r} option needs an explicit check=")


def tables(root: type) -> dict[str, type]:
    """Every section under ``root`` by dotted name (root: ""), each before its nested sections."""
    found: dict[str, type] = {}

    def walk(section: type, prefix: str) -> None:
        found[prefix] = section
        for m in members(section):
            if isinstance(m, SectionField):
                walk(m.section, dotted(prefix, m.name))

    walk(root, "")
    return found


def options(root: type) -> Iterator[tuple[str, OptionField]]:
    """(dotted key, option) for every option under ``root``, in ``ipkvm config defaults`` order."""
    for prefix, section in tables(root).items():
        for m in members(section):
            if isinstance(m, OptionField):
                yield dotted(prefix, m.name), m


def dotted(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name
