"""Property tests for the DuckyScript parser.

A script is parsed whole before anything is sent, so the parser is the user's only feedback on a
typo: any text must either parse or raise ``DuckyError`` pointing at a line and column that exist
in the script (an editor can jump there), and a script written from the documented commands must
parse to exactly those commands, STRING text verbatim.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hypothesis import example, given
from hypothesis import strategies as st

from appliance.scripting import ducky
from appliance.scripting.ducky import (
    Chord,
    Command,
    DefaultDelay,
    Delay,
    DuckyError,
    Repeat,
    TypeText,
    WaitImage,
    WaitText,
)

KEYWORDS = ["REM", "DELAY", "DEFAULT_DELAY", "DEFAULTDELAY", "STRING", "STRINGLN", "REPEAT",
            "WAITFOR", "WAITFOR_TEXT", "CTRL", "ALT", "GUI", "ENTER"]  # fmt: skip

# Key names as a DuckyScript user writes them, with the KeyboardEvent.code each one means.
KEYS = {
    "CTRL": "ControlLeft",
    "CONTROL": "ControlLeft",
    "ALT": "AltLeft",
    "SHIFT": "ShiftLeft",
    "GUI": "MetaLeft",
    "WINDOWS": "MetaLeft",
    "COMMAND": "MetaLeft",
    "DELETE": "Delete",
    "ENTER": "Enter",
    "ESC": "Escape",
    "TAB": "Tab",
    "SPACE": "Space",
    "UPARROW": "ArrowUp",
    "DOWNARROW": "ArrowDown",
    "LEFTARROW": "ArrowLeft",
    "PAGEUP": "PageUp",
    "F5": "F5",
    "F12": "F12",
    "a": "KeyA",
    "r": "KeyR",
    "7": "Digit7",
}


def _lines(text: str) -> list[str]:
    """The script's lines as an editor numbers them (CR LF, CR or LF end a line)."""
    return re.split(r"\r\n|\r|\n", text)


def _assert_points_into(text: str, error: DuckyError) -> None:
    lines = _lines(text)
    assert 1 <= error.line <= len(lines), (error, len(lines))
    line = lines[error.line - 1]
    assert 1 <= error.column <= max(1, len(line)), (error, line)
    assert str(error).startswith(f"line {error.line}, column {error.column}: ")


# ----------------------------------------------------------------- arbitrary text
script_lines = st.one_of(
    st.text(max_size=30),
    st.tuples(
        st.sampled_from(KEYWORDS).map(lambda k: k if len(k) % 2 else k.lower()),
        st.sampled_from([" ", "\t", "  ", "\xa0", "\x0c", "-", "+", ""]),
        st.text(max_size=20),
    ).map("".join),
)


@given(st.lists(script_lines, max_size=8), st.sampled_from(["\n", "\r\n", "\r"]))
@example(["STRING\x1fx"], "\n")  # was AssertionError: only space and tab followed a keyword
@example(["STRING\xa0x"], "\n")
@example(["DELAY 1_0", "REPEAT 99999999"], "\n")
@example(["CTRL-", "a+"], "\n")
def test_any_text_parses_or_points_at_its_error(lines: list[str], newline: str) -> None:
    """Arbitrary text never raises anything but DuckyError, and that names a real position."""
    text = newline.join(lines)
    try:
        ducky.parse(text)
    except DuckyError as error:
        _assert_points_into(text, error)


# ----------------------------------------------------------------- generated scripts
@dataclass(frozen=True)
class Line:
    """One generated script line and the command it must parse to (None: nothing, e.g. REM)."""

    text: str
    command: Command | None


line_text = st.text(st.characters(blacklist_characters="\r\n"), max_size=20)
plain_words = st.lists(st.from_regex(r"[A-Za-z][A-Za-z_]{0,7}", fullmatch=True), min_size=1,
                       max_size=3).map(" ".join)  # fmt: skip
timeouts = st.one_of(st.integers(1, 300).map(str), st.sampled_from(["0.5", "2.25", "300.0"]))


def _case(word: str, upper: bool) -> str:
    return word.upper() if upper else word.lower()


@st.composite
def script_line(draw: st.DrawFn, lineno: int, previous: Command | None) -> Line:
    kind = draw(
        st.sampled_from(
            ["rem", "blank", "delay", "default", "string", "stringln", "chord", "wait", "waittext"]
            + (["repeat"] if previous is not None else [])
        )
    )
    upper = draw(st.booleans())
    if kind == "rem":
        return Line(_case("REM", upper) + " " + draw(line_text), None)
    if kind == "blank":
        return Line(draw(st.sampled_from(["", "  ", "\t"])), None)
    if kind in ("delay", "default"):
        ms = draw(st.integers(0, ducky.MAX_DELAY_MS))
        if kind == "delay":
            return Line(f"{_case('DELAY', upper)} {ms}", Delay(lineno, ms))
        word = draw(st.sampled_from(["DEFAULT_DELAY", "DEFAULTDELAY"]))
        return Line(f"{_case(word, upper)} {ms}", DefaultDelay(lineno, ms))
    if kind == "string":
        text = draw(line_text.filter(bool))
        return Line(f"{_case('STRING', upper)} {text}", TypeText(lineno, text, 8))
    if kind == "stringln":
        text = draw(line_text)
        return Line(f"{_case('STRINGLN', upper)} {text}", TypeText(lineno, text + "\n", 10))
    if kind == "repeat":
        assert previous is not None
        count = draw(st.integers(1, ducky.MAX_REPEAT))
        action = previous.command if isinstance(previous, Repeat) else previous
        return Line(f"{_case('REPEAT', upper)} {count}", Repeat(lineno, count, action))
    if kind == "wait":
        name = draw(st.from_regex(r"[a-z0-9_/-]{1,12}", fullmatch=True)) + ".png"
        timeout = draw(st.none() | timeouts)
        text = f"WAITFOR {name}" + (f" {timeout}" if timeout else "")
        seconds = float(timeout) if timeout else ducky.DEFAULT_WAIT_TIMEOUT
        return Line(text, WaitImage(lineno, name, seconds, 9))
    if kind == "waittext":
        subject = draw(plain_words)
        timeout = draw(st.none() | timeouts)
        text = f"WAITFOR_TEXT {subject}" + (f" {timeout}" if timeout else "")
        seconds = float(timeout) if timeout else ducky.DEFAULT_WAIT_TIMEOUT
        return Line(text, WaitText(lineno, subject, seconds))
    names = draw(
        st.lists(st.sampled_from(sorted(KEYS)), min_size=1, max_size=5, unique_by=KEYS.__getitem__)
    )
    separator = draw(st.sampled_from([" ", "+", "-"]))
    return Line(separator.join(names), Chord(lineno, tuple(KEYS[n] for n in names)))


@st.composite
def scripts(draw: st.DrawFn) -> tuple[str, list[Command]]:
    lines: list[Line] = []
    previous: Command | None = None
    for lineno in range(1, draw(st.integers(0, 12)) + 1):
        line = draw(script_line(lineno, previous))
        lines.append(line)
        if line.command is not None and not isinstance(line.command, Repeat):
            previous = line.command
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    text = newline.join(line.text for line in lines)
    return text, [line.command for line in lines if line.command is not None]


@given(scripts())
@example(("STRING a\x0cb", [TypeText(1, "a\x0cb", 8)]))  # was cut at the form feed: "b" ran
@example(("STRING x\u2028ENTER", [TypeText(1, "x\u2028ENTER", 8)]))  # as a key press
@example(("STRING \x85", [TypeText(1, "\x85", 8)]))
def test_generated_scripts_parse_to_their_commands(case: tuple[str, list[Command]]) -> None:
    """A script written from the documented commands parses to exactly those commands, with
    STRING text verbatim (every character but a line break) and the right line numbers."""
    text, commands = case
    assert ducky.parse(text).commands == commands


@given(
    st.lists(st.sampled_from(sorted(KEYS)), max_size=3, unique_by=KEYS.__getitem__),
    st.from_regex(r"Bogus[0-9]{1,3}", fullmatch=True),
    st.integers(0, 4),
)
def test_unknown_key_error_points_at_the_name(names: list[str], bad: str, indent: int) -> None:
    """A typo in a chord is reported at the column where the misspelt name starts."""
    line = " " * indent + " ".join([*names, bad])
    try:
        ducky.parse("REM first\n" + line)
    except DuckyError as error:
        assert (error.line, error.column) == (2, line.index(bad) + 1)
    else:
        raise AssertionError("an unknown key name parsed")
