"""Property tests for typing text: whatever a user pastes comes out on the target as exactly that
text, or is reported as untypable and not typed at all.

The chain is the real one: ``plan_text`` (layout → strokes), ``HidController.type_text`` (strokes →
boot keyboard reports on a MemoryOutput), then the independent host decoder ``HostKeyboard``
reading those reports with the same layout, as the target's OS would. Dead keys (``^`` then ``a``
→ ``â``) and AltGr levels are part of every layout's typable set, so they are drawn like any other
character; a separate strategy leans on them because they are where sequences interact (a pending
dead key changes what the next key means).
"""

from __future__ import annotations

import asyncio

from hypothesis import example, given
from hypothesis import strategies as st

from hid.controller import HidController, Pacing, TypeResult
from hid.host import CAPS_LOCK_LED, HostKeyboard
from hid.layouts import LAYOUT_NAMES, get_layout
from hid.output import MemoryOutput
from hid.reports import ReportKind
from hid.text import plan_text


def _typable(name: str) -> list[str]:
    return sorted(get_layout(name).typable)


def _composed(name: str) -> list[str]:
    """Characters typed with more than one stroke: dead-key compositions and lone accents."""
    layout = get_layout(name)
    return sorted(c for c in layout.typable if len(layout.strokes(c) or ()) > 1)


def _text_for(name: str) -> st.SearchStrategy[tuple[str, str]]:
    """(layout, text) where every character is one the layout says it can type, plus CR."""
    chars = [*_typable(name), "\r"]
    tricky = _composed(name) or chars
    alphabet = st.one_of(st.sampled_from(chars), st.sampled_from(tricky))
    return st.tuples(st.just(name), st.text(alphabet, max_size=40))


typable_texts = st.sampled_from(LAYOUT_NAMES).flatmap(_text_for)


def _expected(text: str) -> str:
    """What the user sees: CR LF and a lone CR both type one Enter."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


async def _type(text: str, layout: str, leds: int = 0) -> tuple[TypeResult, HostKeyboard]:
    """Type *text* through the real controller; feed what reached the wire to a host decoder."""
    out = MemoryOutput()
    out.leds = type(out.leds)(leds)
    ctl = HidController(out)
    await ctl.start()
    await ctl.drain()
    out.reports.clear()
    try:
        result = await ctl.type_text(text, get_layout(layout), Pacing.fast())
    finally:
        await ctl.close()
    host = HostKeyboard(layout, leds=leds)
    for report in out.reports:
        if report.kind is ReportKind.KEYBOARD:
            host.feed(report)
    return result, host


@given(typable_texts)
@example(("de", "^a"))  # lone accent (dead key + Space) before a letter it could compose with
@example(("fr", "¨ë^"))
@example(("us", "a\r\nb\rc"))
def test_typable_text_round_trips(case: tuple[str, str]) -> None:
    """Text the layout can type is decoded back identically, with every key released after."""
    layout, text = case
    result, host = asyncio.run(_type(text, layout))
    assert result.plan.untypable == []
    assert host.text == _expected(text)
    assert host.pressed == [] and host.modifiers == 0
    assert host.dead is None  # no dead key left pending to swallow the user's next keystroke


@given(typable_texts)
def test_typable_text_round_trips_with_caps_lock_on(case: tuple[str, str]) -> None:
    """With Caps Lock on at the target the controller switches it off for the paste: the text is
    still exact, and Caps Lock is on again afterwards as the user left it."""
    layout, text = case
    _, host = asyncio.run(_type(text, layout, leds=CAPS_LOCK_LED))
    assert host.text == _expected(text)
    assert host.leds & CAPS_LOCK_LED


def _mixed_for(name: str) -> st.SearchStrategy[tuple[str, str]]:
    """(layout, text) of typable characters mixed with arbitrary Unicode (mostly untypable)."""
    alphabet = st.one_of(st.sampled_from(_typable(name)), st.characters())
    return st.tuples(st.just(name), st.text(alphabet, max_size=30))


@given(st.sampled_from(LAYOUT_NAMES).flatmap(_mixed_for))
@example(("us", "5 €"))
@example(("de", "ÿa"))  # ÿ would need a ¨ dead key that German lacks
@example(("gb", "\ud800x"))  # a lone surrogate (what a broken clipboard can hold)
def test_untypable_characters_are_reported_and_never_typed(case: tuple[str, str]) -> None:
    """Every character the layout cannot type is listed with its index; nothing is typed for it
    (no substitute character), and everything else still arrives in order."""
    layout, text = case
    lay = get_layout(layout)
    result, host = asyncio.run(_type(text, layout))
    missing = [(i, c) for i, c in enumerate(text) if c != "\r" and c not in lay.typable]
    assert [(u.index, u.char) for u in result.plan.untypable] == missing
    kept = "".join(c for i, c in enumerate(text) if (i, c) not in missing)
    assert host.text == _expected(kept)


@given(st.sampled_from(LAYOUT_NAMES), st.text(max_size=50))
def test_plan_accounts_for_every_character(layout: str, text: str) -> None:
    """Each character index is either typed (has strokes) or untypable, never both or neither
    (except the CR of a CR LF pair: the LF's Enter stands for both), so nothing is dropped
    silently."""
    plan = plan_text(text, get_layout(layout))
    typed = {index for index, _ in plan.strokes}
    untypable = {u.index for u in plan.untypable}
    cr_of_crlf = {i for i in range(len(text) - 1) if text[i : i + 2] == "\r\n"}
    assert not typed & untypable
    assert not cr_of_crlf & (typed | untypable)
    assert typed | untypable | cr_of_crlf == set(range(len(text)))
    assert plan.chars == len(text)
