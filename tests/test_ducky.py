"""DuckyScript: parsing (errors name line and column), and running on a real HidController whose
reports are decoded by the simulated host keyboard, as a target would read them."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from appliance.scripting import ducky
from appliance.scripting.ducky import (
    Chord,
    DefaultDelay,
    Delay,
    DuckyError,
    Repeat,
    TypeText,
    WaitImage,
)
from hid.controller import HidController
from hid.host import decode_reports
from hid.layouts import get_layout
from hid.output import MemoryOutput
from hid.reports import ReportKind


# ---------------------------------------------------------------------------- parsing
def test_parse_every_command() -> None:
    script = ducky.parse(
        "REM open the run dialog\n"
        "DEFAULT_DELAY 20\n"
        "GUI r\n"
        "DELAY 500\n"
        "STRING notepad  two spaces kept \n"
        "ENTER\n"
        "REPEAT 3\n"
        "CTRL ALT DELETE\n"
        "ctrl-shift esc\n"
        "STRINGLN done\n"
        "DEFAULTDELAY 0\n"
        "WAITFOR boot menu.png 12.5\n"
        "WAITFOR_TEXT Setup Utility\n"
        "WAITFOR_TEXT Press F2 10\n"
    )
    assert script.commands == [
        DefaultDelay(2, 20),
        Chord(3, ("MetaLeft", "KeyR")),
        Delay(4, 500),
        TypeText(5, "notepad  two spaces kept ", 8),
        Chord(6, ("Enter",)),
        Repeat(7, 3, Chord(6, ("Enter",))),
        Chord(8, ("ControlLeft", "AltLeft", "Delete")),
        Chord(9, ("ControlLeft", "ShiftLeft", "Escape")),
        TypeText(10, "done\n", 10),
        DefaultDelay(11, 0),
        WaitImage(12, "boot menu.png", 12.5, 9),
        ducky.WaitText(13, "Setup Utility", 30.0),
        ducky.WaitText(14, "Press F2", 10.0),
    ]


def test_protocol_key_names() -> None:
    names = [
        "ENTER",
        "ESC",
        "ESCAPE",
        "TAB",
        "SPACE",
        "BACKSPACE",
        "DELETE",
        "INSERT",
        "HOME",
        "END",
        "PAGEUP",
        "PAGEDOWN",
        "UP",
        "UPARROW",
        "DOWN",
        "DOWNARROW",
        "LEFT",
        "RIGHT",
        "F1",
        "F12",
        "CAPSLOCK",
        "NUMLOCK",
        "SCROLLLOCK",
        "PRINTSCREEN",
        "PAUSE",
        "BREAK",
        "MENU",
        "APP",
        "CONTROL",
        "WINDOWS",
    ]
    script = ducky.parse("\n".join(names))
    codes = [c.codes[0] for c in script.commands if isinstance(c, Chord)]
    assert codes[:4] == ["Enter", "Escape", "Escape", "Tab"]
    assert codes[names.index("DOWNARROW")] == "ArrowDown"
    assert codes[names.index("BREAK")] == "Pause"
    assert codes[names.index("APP")] == "ContextMenu"
    assert codes[-2:] == ["ControlLeft", "MetaLeft"]


def test_crlf_indent_and_blank_lines() -> None:
    script = ducky.parse("\r\n  STRING a\r\n\r\n\tENTER\r\n")
    assert script.commands == [TypeText(2, "a", 10), Chord(4, ("Enter",))]


@pytest.mark.parametrize(
    ("text", "line", "column", "words"),
    [
        ("STRING ok\nCTRL ALT DELET\n", 2, 10, "unknown command or key 'DELET'"),
        ("DELAY 100\n  DELAY abc\n", 2, 9, "whole number"),
        ("DELAY\n", 1, 1, "DELAY needs ms"),
        ("DELAY 5 6\n", 1, 9, "unexpected '6'"),
        ("DELAY -5\n", 1, 7, "between 0"),
        ("REPEAT 2\n", 1, 1, "no previous command"),
        ("ENTER\nREPEAT 0\n", 2, 8, "between 1"),
        ("REM fine\nFOO BAR\n", 2, 1, "unknown command or key 'FOO'"),
        ("STRING\n", 1, 1, "STRING needs text"),
        ("WAITFOR\n", 1, 1, "needs a template"),
        ("WAITFOR menu.jpg\n", 1, 9, "must be a .png"),
        ("WAITFOR menu.png 900\n", 1, 18, "timeout must be between"),
        ("CTRL CTRL\n", 1, 6, "appears twice"),
        ("GUI r-\n", 1, 5, "malformed chord"),
    ],
)
def test_parse_errors_name_line_and_column(text: str, line: int, column: int, words: str) -> None:
    with pytest.raises(DuckyError) as info:
        ducky.parse(text)
    err = info.value
    assert (err.line, err.column) == (line, column), str(err)
    assert words in err.message
    assert str(err).startswith(f"line {line}, column {column}: ")


def test_templates_load_relative_to_script_dir(tmp_path: Path) -> None:
    png = _png(np.full((4, 4, 3), 7, np.uint8))
    (tmp_path / "menu.png").write_bytes(png)
    script = ducky.parse("WAITFOR menu.png\nWAITFOR  missing.png 3\n")
    with pytest.raises(DuckyError) as info:
        ducky.load_templates(script, tmp_path)
    assert (info.value.line, info.value.column) == (2, 10)
    assert "missing.png" in info.value.message
    ok = ducky.parse("WAITFOR menu.png\n")
    assert ducky.load_templates(ok, tmp_path) == {"menu.png": png}
    (tmp_path / "fake.png").write_text("not a png")
    with pytest.raises(DuckyError, match="not a PNG"):
        ducky.load_templates(ducky.parse("WAITFOR fake.png"), tmp_path)


def test_uploaded_templates_are_checked() -> None:
    png = _png(np.full((4, 4, 3), 7, np.uint8))
    script = ducky.parse("ENTER\nWAITFOR a.png\n")
    assert ducky.decode_templates(script, {"a.png": base64.b64encode(png).decode()}) == {
        "a.png": png
    }
    with pytest.raises(DuckyError) as info:
        ducky.decode_templates(script, {})
    assert info.value.line == 2 and "not uploaded" in info.value.message
    with pytest.raises(DuckyError, match="base64"):
        ducky.decode_templates(script, {"a.png": "!!"})


def _png(image: Any) -> bytes:
    ok, buf = cv2.imencode(".png", image)
    assert ok
    return bytes(buf.tobytes())


# ---------------------------------------------------------------------------- running
@pytest.fixture
async def hid() -> AsyncIterator[HidController]:
    out = MemoryOutput()
    c = HidController(out, retry_interval=0.01, discard_after=0.2)
    await c.start()
    await c.drain()
    out.reports.clear()  # whatever the controller sends on start is not the script's doing
    yield c
    await c.close()


class _Appliance:
    """Just the attributes HidExecutor uses, around a real HidController."""

    class config:
        class hid:
            pacing_ms = 0

    def __init__(self, hid: HidController) -> None:
        self.hid = hid


def _keyboard(hid: HidController) -> list[bytes]:
    out = hid.output
    assert isinstance(out, MemoryOutput)
    return [r.data for r in out.reports if r.kind is ReportKind.KEYBOARD]


async def test_run_types_and_presses_in_order(hid: HidController) -> None:
    script = ducky.parse("STRING Hi!\nREPEAT 2\nSHIFT TAB\nSTRINGLN ok\n")
    executor = ducky.HidExecutor(_Appliance(hid), get_layout("us"), "t")  # type: ignore[arg-type]
    seen: list[tuple[int, int]] = []
    result = await ducky.run(script, executor, progress=lambda d, t, c: seen.append((c.line, d)))
    await hid.drain()
    assert (
        decode_reports(_keyboard(hid), "us") == "Hi!Hi!Hi!\tok\n"
    )  # host reads Shift+Tab as a tab
    reports = _keyboard(hid)
    # SHIFT TAB: shift down, shift+tab, then released in reverse order.
    i = reports.index(bytes([0x02, 0, 0x2B, 0, 0, 0, 0, 0]))
    assert reports[i - 1] == bytes([0x02, 0, 0, 0, 0, 0, 0, 0])
    assert reports[i + 1] == bytes([0x02, 0, 0, 0, 0, 0, 0, 0])
    assert reports[i + 2] == bytes(8)
    assert result.commands == 4
    assert seen == [(1, 0), (2, 1), (3, 2), (4, 3), (4, 4)]
    assert not hid.keyboard.held


async def test_default_delay_and_delay_take_time(hid: HidController) -> None:
    loop = asyncio.get_running_loop()
    executor = ducky.HidExecutor(_Appliance(hid), get_layout("us"), "t")  # type: ignore[arg-type]
    start = loop.time()
    await ducky.run(ducky.parse("DEFAULT_DELAY 60\nENTER\nREPEAT 1\nDELAY 50\n"), executor)
    elapsed = loop.time() - start
    # two key presses each followed by 60 ms, plus DELAY 50 (not followed by the default delay)
    assert 0.17 <= elapsed < 1.5


async def test_offline_target_fails_with_the_line(hid: HidController) -> None:
    out = hid.output
    assert isinstance(out, MemoryOutput)
    out.offline = True
    executor = ducky.HidExecutor(_Appliance(hid), get_layout("us"), "t")  # type: ignore[arg-type]
    with pytest.raises(ducky.ScriptFailed) as info:
        async with asyncio.timeout(5):
            await ducky.run(ducky.parse("REM\nSTRING abc\nSTRING more\n"), executor)
    assert info.value.line in (2, 3)
    assert "offline" in info.value.message
    assert not out.reports  # nothing reached the target


async def test_missing_template_is_refused_before_anything_runs(hid: HidController) -> None:
    executor = ducky.HidExecutor(_Appliance(hid), get_layout("us"), "t")  # type: ignore[arg-type]
    with pytest.raises(DuckyError) as info:
        await ducky.run(ducky.parse("STRING x\nWAITFOR a.png\n"), executor, {})
    assert info.value.line == 2
    await hid.drain()
    assert _keyboard(hid) == []


def test_untypable_text_names_line_and_column() -> None:
    script = ducky.parse("ENTER\n  STRING price: 5€\n")
    ducky.check_typable(script, get_layout("de"))  # a German keyboard has €
    with pytest.raises(DuckyError) as info:
        ducky.check_typable(script, get_layout("us"))
    assert (info.value.line, info.value.column) == (2, 18)
    assert info.value.message == "the 'us' layout cannot type '€' (U+20AC)"
