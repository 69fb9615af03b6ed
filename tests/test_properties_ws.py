"""Property tests for the browser's input messages (``/api/ws`` and the WebRTC data channel).

Both channels decode with ``decode_message`` and apply with ``handle_message``; the receive loops
catch only ``BadMessage`` and ``UnknownKey`` (both ValueErrors) and answer with an error event.
Anything else escaping would end the connection (the WebSocket) or be lost in aiortc's event
emitter (the data channel), with whatever the client held still held. So: arbitrary input gives a
reply or one of those two errors, a refused message changes nothing, and well-formed messages
leave exactly the keys, buttons and pointer position they describe.
"""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any, cast

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from appliance.api.ws import BadMessage, decode_message, handle_message
from appliance.runtime import Appliance
from hid.controller import HidController
from hid.keymap import CODE_TO_USAGE, UnknownKey, is_modifier, modifier_bit
from hid.output import MemoryOutput
from hid.reports import ABS_MAX, BUTTONS, ReportKind, keyboard_report

TYPES = ["key", "mouse", "mouse_rel", "button", "wheel", "release_all", "mouse_mode", "ping"]
CODES = sorted(CODE_TO_USAGE)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),  # NaN and infinities too: Python's json module reads and writes them
    st.text(max_size=10),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=12,
)
# Messages that look almost right: a known type and field names, values of any JSON type. These
# reach far deeper into handle_message than random dictionaries would.
field_values = st.one_of(
    json_values,
    st.sampled_from(CODES),
    st.sampled_from(BUTTONS),
    st.sampled_from(["absolute", "relative"]),
    st.floats(min_value=-0.5, max_value=1.5),
    st.integers(min_value=-20_000, max_value=20_000),
)
almost_messages = st.fixed_dictionaries(
    {"type": st.sampled_from([*TYPES, "nonsense"])},
    optional={
        name: field_values for name in ("code", "down", "x", "y", "dx", "dy", "button", "mode", "t")
    },
)


def _appliance() -> tuple[Appliance, HidController]:
    """handle_message needs only ``appliance.hid``; the controller is not started (no writer),
    so the test looks at its state, which is what every report is made from."""
    hid = HidController(MemoryOutput())
    return cast(Appliance, SimpleNamespace(hid=hid)), hid


def _snapshot(hid: HidController) -> Any:
    return (
        {u: set(c) for u, c in hid.keyboard.held.items()},
        {b: set(c) for b, c in hid.mouse.held.items()},
        hid.mouse.absolute,
        hid.mouse.x,
        hid.mouse.y,
    )


# ----------------------------------------------------------------- decoding
@given(st.text(max_size=200))
@example("[" * 20_000)  # was RecursionError: it escaped the receive loop and killed the socket
@example('{"type": ' * 5_000)
@example("NaN")
def test_decode_message_takes_any_text(text: str) -> None:
    """Any text message is a JSON object or a BadMessage, never another exception."""
    try:
        msg = decode_message(text)
    except BadMessage:
        return
    assert isinstance(msg, dict)


@given(json_values)
@example([[[[[]]]]])
def test_decode_message_accepts_objects_only(value: Any) -> None:
    """Valid JSON that is not an object is refused with a message, an object comes back equal."""
    text = json.dumps(value)
    if isinstance(value, dict):
        assert json.dumps(decode_message(text)) == text
    else:
        with pytest.raises(BadMessage, match="JSON object"):
            decode_message(text)


@given(st.binary(max_size=100))
def test_binary_messages_are_refused(data: bytes) -> None:
    with pytest.raises(BadMessage, match="binary"):
        decode_message(data)


# ----------------------------------------------------------------- applying
@given(st.one_of(st.dictionaries(st.text(max_size=8), json_values), almost_messages))
@example({"type": "key", "code": "KeyA", "down": 1})
@example({"type": "mouse", "x": float("nan"), "y": 0.5})
@example({"type": "button", "button": ["left"], "down": True})
@example({"type": "wheel", "dy": True})
def test_any_message_is_applied_or_refused_cleanly(msg: dict[str, Any]) -> None:
    """A message is applied, or refused with BadMessage/UnknownKey and nothing changed: a
    refused key-down never leaves a key held on the target."""
    appliance, hid = _appliance()
    before = _snapshot(hid)
    try:
        reply = handle_message(appliance, "c1", msg)
    except (BadMessage, UnknownKey):
        assert _snapshot(hid) == before
        return
    assert reply is None or (reply["type"] == "pong" and reply["t"] == msg.get("t"))


key_events = st.lists(
    st.tuples(st.sampled_from([*CODES[:40], "ShiftLeft", "ControlRight"]), st.booleans()),
    max_size=30,
)


@given(key_events)
def test_key_messages_hold_exactly_the_keys_pressed(events: list[tuple[str, bool]]) -> None:
    """After any sequence of key messages the last report on the wire holds the keys that are
    down, in press order (modifiers in the modifier byte); release_all lets go of all of them."""

    async def run() -> None:
        out = MemoryOutput()
        hid = HidController(out)
        appliance = cast(Appliance, SimpleNamespace(hid=hid))
        await hid.start()
        try:
            down: list[str] = []
            for code, is_down in events:
                handle_message(appliance, "c1", {"type": "key", "code": code, "down": is_down})
                if is_down and code not in down:
                    down.append(code)
                elif not is_down and code in down:
                    down.remove(code)
            await hid.drain()
            usages = [CODE_TO_USAGE[c] for c in down]
            mods = sum(modifier_bit(u) for u in usages if is_modifier(u))
            keys = [u for u in usages if not is_modifier(u)]
            sent = [r for r in out.reports if r.kind is ReportKind.KEYBOARD]
            assert sent[-1] == keyboard_report(mods, keys)
            handle_message(appliance, "c1", {"type": "release_all"})
            await hid.drain()
            assert hid.keyboard.held == {}
            assert [r for r in out.reports if r.kind is ReportKind.KEYBOARD][-1].data[2:] == bytes(
                6
            )
        finally:
            await hid.close()

    asyncio.run(run())


@given(
    st.floats(min_value=0, max_value=1),
    st.floats(min_value=0, max_value=1),
    st.sets(st.sampled_from(BUTTONS)),
)
def test_mouse_messages_set_position_and_buttons(x: float, y: float, buttons: set[str]) -> None:
    """A pointer message in 0..1 lands on the matching point of 0..32767, and the buttons held
    are the ones pressed."""
    appliance, hid = _appliance()
    handle_message(appliance, "c1", {"type": "mouse", "x": x, "y": y})
    for name in buttons:
        handle_message(appliance, "c1", {"type": "button", "button": name, "down": True})
    assert (hid.mouse.x, hid.mouse.y) == (round(x * ABS_MAX), round(y * ABS_MAX))
    assert hid.mouse.buttons == sum(1 << BUTTONS.index(b) for b in buttons)
    handle_message(appliance, "c1", {"type": "release_all"})
    assert hid.mouse.buttons == 0
