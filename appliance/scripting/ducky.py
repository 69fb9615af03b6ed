"""DuckyScript 1.0 for ipkvm: parse a whole script into typed commands, then run them.

A script is parsed completely before anything is sent, so a typo on line 40 never leaves the target
half-configured: every error is a :class:`DuckyError` naming the line and column. Running a parsed
script goes through an :class:`Executor`, which has two implementations: :class:`HidExecutor` on the
appliance (HidController + FrameHub screen matching) and :class:`ClientExecutor` on a workstation
(through :class:`appliance.client.IpkvmClient`). The runner owns delays, ``DEFAULT_DELAY`` and
``REPEAT`` so both behave identically.

Language (commands are case-insensitive, one per line)::

    REM comment                 ignored
    DELAY ms                    sleep
    DEFAULT_DELAY ms            (or DEFAULTDELAY) sleep after every later command
    STRING text                 type text verbatim (everything after the first space)
    STRINGLN text               type text, then Enter
    REPEAT n                    run the previous command n more times
    CTRL ALT DELETE             press a chord (modifiers first), release in reverse
    WAITFOR tpl.png [timeout]   wait until the template is on screen (seconds, default 30)
    WAITFOR_TEXT text [timeout] wait until OCR finds the text on screen
    SWITCH port                 switch the rack's KVM switch to a port (number, name, or
                                "quoted name"); waits until the switch confirms it

This module imports only the standard library, :mod:`hid.keynames` and :mod:`appliance.imagecheck`,
so the CLI can parse scripts (and check their templates' headers) without aiohttp, OpenCV or NumPy.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from appliance import imagecheck
from hid.keymap import UnknownKey
from hid.keynames import key_code

if TYPE_CHECKING:
    from appliance.client import IpkvmClient
    from appliance.runtime import Appliance

DEFAULT_WAIT_TIMEOUT = 30.0
MAX_WAIT_TIMEOUT = 300.0
MAX_DELAY_MS = 3_600_000
MAX_REPEAT = 100_000
MAX_SCRIPT_CHARS = 1_000_000
PNG_MAGIC = imagecheck.PNG_MAGIC
# The keyword, then (after one whitespace character of any kind, as _tokens splits) the rest.
_HEAD = re.compile(r"(\S+)(?:\s(.*))?$", re.DOTALL)
# Line breaks as an editor shows them. Not str.splitlines(): it also breaks at form feed, vertical
# tab, U+001C..U+001E, NEL and U+2028/U+2029, so a STRING holding one of them was cut in two and
# the rest of its text run as a command, and line numbers disagreed with the user's editor.
_LINE_BREAK = re.compile(r"\r\n|\r|\n")

# Key names DuckyScript spells differently from hid.keynames (which already knows CTRL, CONTROL,
# ALT, SHIFT, GUI, WINDOWS, ESC, UPARROW, BREAK, MENU, APP...).
_DUCKY_ALIASES = {
    "downarrow": "ArrowDown",
    "leftarrow": "ArrowLeft",
    "rightarrow": "ArrowRight",
    "command": "MetaLeft",
    "option": "AltLeft",
}


class DuckyError(ValueError):
    """A script that does not parse (or whose template is missing); nothing was sent."""

    def __init__(self, line: int, column: int, message: str) -> None:
        super().__init__(f"line {line}, column {column}: {message}")
        self.line = line
        self.column = column
        self.message = message

    def as_dict(self) -> dict[str, object]:
        return {"error": str(self), "line": self.line, "column": self.column}


class ScriptFailed(RuntimeError):
    """A parsed script stopped while running (target offline, server error)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


class WaitTimedOut(ScriptFailed):
    """A WAITFOR/WAITFOR_TEXT line did not see its image or text in time."""

    def __init__(self, line: int, message: str, best_score: float | None = None) -> None:
        super().__init__(line, message)
        self.best_score = best_score


# ---------------------------------------------------------------------------- commands
@dataclass(frozen=True, slots=True)
class Delay:
    line: int
    ms: int


@dataclass(frozen=True, slots=True)
class DefaultDelay:
    line: int
    ms: int


@dataclass(frozen=True, slots=True)
class TypeText:
    """STRING (and STRINGLN, whose text ends with a newline the layout types as Enter)."""

    line: int
    text: str
    column: int = 8  # where the text starts, for "cannot type" errors


@dataclass(frozen=True, slots=True)
class Chord:
    """Keys as ``KeyboardEvent.code`` names, in press order."""

    line: int
    codes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class WaitImage:
    line: int
    template: str  # file name as written in the script
    timeout: float
    column: int = 9  # where the file name starts, for "template missing" errors


@dataclass(frozen=True, slots=True)
class WaitText:
    line: int
    text: str
    timeout: float


@dataclass(frozen=True, slots=True)
class SwitchPort:
    """SWITCH: a port number (int) or a port name (str), resolved when it runs."""

    line: int
    port: int | str
    column: int = 8


Action = Delay | DefaultDelay | TypeText | Chord | WaitImage | WaitText | SwitchPort


@dataclass(frozen=True, slots=True)
class Repeat:
    """Run *command* (the previous command line) *count* more times."""

    line: int
    count: int
    command: Action


Command = Action | Repeat


@dataclass
class Script:
    commands: list[Command] = field(default_factory=list)

    @property
    def templates(self) -> list[WaitImage]:
        return [c for c in self.commands if isinstance(c, WaitImage)]

    def describe(self, command: Command) -> str:
        return describe(command)


def describe(command: Command) -> str:
    """A short human description for progress lines ("STRING hello…")."""
    if isinstance(command, Delay):
        return f"DELAY {command.ms}"
    if isinstance(command, DefaultDelay):
        return f"DEFAULT_DELAY {command.ms}"
    if isinstance(command, TypeText):
        text = command.text.replace("\n", "⏎")
        return f"STRING {text[:30]}{'…' if len(text) > 30 else ''}"
    if isinstance(command, Chord):
        return " ".join(command.codes)
    if isinstance(command, WaitImage):
        return f"WAITFOR {command.template}"
    if isinstance(command, WaitText):
        return f"WAITFOR_TEXT {command.text}"
    if isinstance(command, SwitchPort):
        return f"SWITCH {command.port}"
    return f"REPEAT {command.count} ({describe(command.command)})"


# ---------------------------------------------------------------------------- parser
@dataclass(frozen=True, slots=True)
class _Token:
    text: str
    column: int  # 1-based


def _tokens(s: str, start_column: int) -> list[_Token]:
    out: list[_Token] = []
    i = 0
    while i < len(s):
        if s[i].isspace():
            i += 1
            continue
        j = i
        while j < len(s) and not s[j].isspace():
            j += 1
        out.append(_Token(s[i:j], start_column + i))
        i = j
    return out


def _int_arg(lineno: int, keyword: _Token, args: list[_Token], lo: int, hi: int, what: str) -> int:
    if not args:
        raise DuckyError(lineno, keyword.column, f"{keyword.text.upper()} needs {what}")
    if len(args) > 1:
        raise DuckyError(lineno, args[1].column, f"unexpected {args[1].text!r} after {what}")
    tok = args[0]
    try:
        value = int(tok.text)
    except ValueError:
        raise DuckyError(
            lineno, tok.column, f"{what} must be a whole number, not {tok.text!r}"
        ) from None
    if not lo <= value <= hi:
        raise DuckyError(lineno, tok.column, f"{what} must be between {lo} and {hi}")
    return value


def _key(lineno: int, tok: _Token) -> str:
    low = tok.text.lower()
    if low in _DUCKY_ALIASES:
        return _DUCKY_ALIASES[low]
    try:
        return key_code(tok.text)
    except UnknownKey:
        raise DuckyError(lineno, tok.column, f"unknown command or key {tok.text!r}") from None


def _chord(lineno: int, tokens: list[_Token]) -> Chord:
    codes: list[str] = []
    for tok in tokens:
        # "CTRL-ALT" and "ctrl+alt" are accepted too; a lone "-" or "+" is not a key name.
        parts = [tok]
        if len(tok.text) > 1 and any(sep in tok.text for sep in "+-"):
            parts = []
            offset = 0
            for piece in tok.text.replace("+", "-").split("-"):
                if not piece:
                    raise DuckyError(lineno, tok.column, f"malformed chord {tok.text!r}")
                parts.append(_Token(piece, tok.column + offset))
                offset += len(piece) + 1
        for part in parts:
            code = _key(lineno, part)
            if code in codes:
                raise DuckyError(lineno, part.column, f"key {part.text!r} appears twice")
            codes.append(code)
    if len(codes) > 10:
        raise DuckyError(lineno, tokens[0].column, "a chord holds at most 10 keys")
    return Chord(lineno, tuple(codes))


def _wait_args(
    lineno: int, keyword: _Token, rest: str, rest_column: int, what: str
) -> tuple[str, float, int]:
    """Split ``<subject> [timeout]``: a trailing number is the timeout when a subject remains."""
    subject = rest.strip()
    if not subject:
        raise DuckyError(lineno, keyword.column, f"{keyword.text.upper()} needs {what}")
    timeout = DEFAULT_WAIT_TIMEOUT
    toks = _tokens(rest, rest_column)
    if len(toks) > 1:
        last = toks[-1]
        try:
            value = float(last.text)
        except ValueError:
            value = math.nan
        if not math.isnan(value):
            if not (0 < value <= MAX_WAIT_TIMEOUT):
                raise DuckyError(
                    lineno, last.column, f"timeout must be between 0 and {MAX_WAIT_TIMEOUT:g} s"
                )
            timeout = value
            subject = rest[: last.column - rest_column].strip()
    first = toks[0]
    return subject, timeout, first.column


def _switch_arg(lineno: int, keyword: _Token, rest: str, rest_column: int) -> SwitchPort:
    """``SWITCH 2``, ``SWITCH db-01`` or ``SWITCH "db 01"`` (a name with spaces, or all digits)."""
    text = rest.strip()
    column = rest_column + (len(rest) - len(rest.lstrip()))
    if not text:
        raise DuckyError(lineno, keyword.column, "SWITCH needs a port number or name")
    if text.startswith('"'):
        end = text.find('"', 1)
        if end < 0:
            raise DuckyError(lineno, column, "missing closing quote after the port name")
        if text[end + 1 :].strip():
            raise DuckyError(
                lineno, column + end + 1, f"unexpected {text[end + 1 :].strip()!r} after the name"
            )
        name = text[1:end]
        if not name:
            raise DuckyError(lineno, column, "empty port name")
        return SwitchPort(lineno, name, column)
    toks = _tokens(rest, rest_column)
    if len(toks) > 1:
        raise DuckyError(
            lineno, toks[1].column, f"unexpected {toks[1].text!r}: quote a name with spaces"
        )
    word = toks[0].text
    if word.isascii() and word.isdigit():
        port = int(word)
        if not 1 <= port <= 99:
            raise DuckyError(lineno, toks[0].column, "port must be between 1 and 99")
        return SwitchPort(lineno, port, toks[0].column)
    return SwitchPort(lineno, word, toks[0].column)


def parse(text: str) -> Script:
    """Parse a whole script; raises :class:`DuckyError` at the first problem."""
    if len(text) > MAX_SCRIPT_CHARS:
        raise DuckyError(1, 1, f"script longer than {MAX_SCRIPT_CHARS} characters")
    script = Script()
    previous: Action | None = None
    for lineno, line in enumerate(_LINE_BREAK.split(text), start=1):
        stripped = line.lstrip()
        if not stripped.strip():
            continue
        indent = len(line) - len(stripped)
        m = _HEAD.match(stripped)
        assert m is not None  # stripped starts with a non-space character
        head, rest = m.group(1), m.group(2) or ""
        keyword = _Token(head, indent + 1)
        rest_column = indent + len(head) + 2
        word = head.upper()
        command: Command
        if word == "REM":
            continue
        if word == "DELAY":
            ms = _int_arg(lineno, keyword, _tokens(rest, rest_column), 0, MAX_DELAY_MS, "ms")
            command = Delay(lineno, ms)
        elif word in ("DEFAULT_DELAY", "DEFAULTDELAY"):
            ms = _int_arg(lineno, keyword, _tokens(rest, rest_column), 0, MAX_DELAY_MS, "ms")
            command = DefaultDelay(lineno, ms)
        elif word in ("STRING", "STRINGLN"):
            if word == "STRING" and not rest:
                raise DuckyError(lineno, keyword.column, "STRING needs text to type")
            command = TypeText(lineno, rest + ("\n" if word == "STRINGLN" else ""), rest_column)
        elif word == "REPEAT":
            count = _int_arg(lineno, keyword, _tokens(rest, rest_column), 1, MAX_REPEAT, "count")
            if previous is None:
                raise DuckyError(lineno, keyword.column, "REPEAT has no previous command")
            command = Repeat(lineno, count, previous)
        elif word == "WAITFOR":
            name, timeout, col = _wait_args(lineno, keyword, rest, rest_column, "a template file")
            if not name.lower().endswith(".png"):
                raise DuckyError(lineno, col, f"template {name!r} must be a .png file")
            command = WaitImage(lineno, name, timeout, col)
        elif word == "WAITFOR_TEXT":
            subject, timeout, _ = _wait_args(lineno, keyword, rest, rest_column, "text")
            command = WaitText(lineno, subject, timeout)
        elif word == "SWITCH":
            command = _switch_arg(lineno, keyword, rest, rest_column)
        else:
            command = _chord(lineno, _tokens(stripped, indent + 1))
        script.commands.append(command)
        if not isinstance(command, Repeat):
            previous = command
    return script


def check_typable(script: Script, layout: Any) -> None:
    """Refuse a script whose STRING text the target's *layout* cannot type (``€`` on ``us``)
    with the line and column of the first such character, before anything is sent."""
    from hid.text import plan_text

    for command in script.commands:
        action = command.command if isinstance(command, Repeat) else command
        if not isinstance(action, TypeText):
            continue
        untypable = plan_text(action.text, layout).untypable
        if untypable:
            bad = untypable[0]
            raise DuckyError(
                command.line,
                action.column + bad.index,
                f"the {layout.name!r} layout cannot type {bad.char!r} (U+{ord(bad.char):04X})",
            )


# ---------------------------------------------------------------------------- templates
def load_templates(script: Script, base_dir: Path) -> dict[str, bytes]:
    """Read every WAITFOR template, relative to *base_dir* (the script's directory).

    A missing, non-PNG or oversized file is a :class:`DuckyError` on its line, before anything
    is sent.
    """
    out: dict[str, bytes] = {}
    for cmd in script.templates:
        if cmd.template in out:
            continue
        path = Path(cmd.template)
        if not path.is_absolute():
            path = base_dir / path
        try:
            data = path.read_bytes()
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise DuckyError(cmd.line, cmd.column, f"template {str(path)!r}: {reason}") from None
        out[cmd.template] = _checked(cmd, data, str(path))
    return out


def decode_templates(script: Script, uploaded: Mapping[str, Any]) -> dict[str, bytes]:
    """Check that every WAITFOR template was uploaded (base64 PNG) with the script."""
    out: dict[str, bytes] = {}
    for cmd in script.templates:
        if cmd.template in out:
            continue
        raw = uploaded.get(cmd.template)
        if raw is None:
            raw = uploaded.get(Path(cmd.template).name)
        if not isinstance(raw, str):
            raise DuckyError(
                cmd.line, cmd.column, f"template {cmd.template!r} was not uploaded with the script"
            )
        try:
            data = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise DuckyError(
                cmd.line, cmd.column, f"template {cmd.template!r} is not valid base64"
            ) from None
        out[cmd.template] = _checked(cmd, data, cmd.template)
    return out


def _checked(cmd: WaitImage, data: bytes, name: str) -> bytes:
    """A template must be a PNG within :data:`appliance.imagecheck.TEMPLATE_LIMITS`: checked from
    its header, before anything decodes it (a 4.5 KB PNG can claim 6000x6000 pixels, 1 GB)."""
    if not data.startswith(PNG_MAGIC):
        raise DuckyError(cmd.line, cmd.column, f"template {name!r} is not a PNG file")
    limits = replace(imagecheck.TEMPLATE_LIMITS, what=f"template {name!r}")
    try:
        imagecheck.check(data, limits)
    except imagecheck.ImageRejected as exc:
        raise DuckyError(cmd.line, cmd.column, str(exc)) from None
    return data


# ---------------------------------------------------------------------------- running
class Executor(Protocol):
    """What a script needs from the world. Methods raise :class:`ScriptFailed` (or
    :class:`WaitTimedOut`) with a message for the user; the runner fills in the line."""

    async def type_text(self, text: str) -> None: ...

    async def press(self, codes: Sequence[str]) -> None: ...

    async def wait_image(self, template: bytes, name: str, timeout: float) -> None: ...

    async def wait_text(self, text: str, timeout: float) -> None: ...

    async def switch(self, port: int | str) -> None: ...


ProgressFn = Callable[[int, int, Command], None]
"""``progress(done, total, command)``: called before each top-level command starts."""


@dataclass
class RunResult:
    commands: int
    elapsed: float

    def as_dict(self) -> dict[str, object]:
        return {"commands": self.commands, "elapsed": round(self.elapsed, 3)}


async def run(
    script: Script,
    executor: Executor,
    templates: Mapping[str, bytes] | None = None,
    progress: ProgressFn | None = None,
) -> RunResult:
    """Run a parsed script in order. Cancel the task to stop it; the executor releases keys."""
    templates = templates or {}
    missing = [c for c in script.templates if c.template not in templates]
    if missing:
        first = missing[0]
        raise DuckyError(first.line, first.column, f"template {first.template!r} was not loaded")
    started = time.monotonic()
    default_delay = 0
    total = len(script.commands)
    for index, command in enumerate(script.commands):
        if progress:
            progress(index, total, command)
        if isinstance(command, DefaultDelay):
            default_delay = command.ms
            continue
        times = 1
        action: Action
        if isinstance(command, Repeat):
            action, times = command.command, command.count
        else:
            action = command
        for _ in range(times):
            if isinstance(action, DefaultDelay):
                default_delay = action.ms
                continue
            await _execute(action, command.line, executor, templates)
            if default_delay and not isinstance(action, Delay):
                await asyncio.sleep(default_delay / 1000)
    if progress and script.commands:
        progress(total, total, script.commands[-1])
    return RunResult(total, time.monotonic() - started)


async def _execute(
    action: Action, line: int, executor: Executor, templates: Mapping[str, bytes]
) -> None:
    try:
        if isinstance(action, Delay):
            await asyncio.sleep(action.ms / 1000)
        elif isinstance(action, TypeText):
            await executor.type_text(action.text)
        elif isinstance(action, Chord):
            await executor.press(action.codes)
        elif isinstance(action, WaitImage):
            await executor.wait_image(templates[action.template], action.template, action.timeout)
        elif isinstance(action, WaitText):
            await executor.wait_text(action.text, action.timeout)
        elif isinstance(action, SwitchPort):
            await executor.switch(action.port)
    except WaitTimedOut as exc:
        raise WaitTimedOut(line, exc.message, exc.best_score) from None
    except ScriptFailed as exc:
        raise ScriptFailed(line, exc.message) from None


# ---------------------------------------------------------------------------- executors
class HidExecutor:
    """Runs on the appliance itself: straight into the HidController, matching on the FrameHub."""

    def __init__(
        self, appliance: Appliance, layout: Any, client: str, pacing_ms: float | None = None
    ) -> None:
        self.appliance = appliance
        self.layout = layout
        self.client = client
        self.follow_port_layout = True
        """SWITCH changes ``layout`` to the new port's (False: the caller chose a layout)."""
        ms = appliance.config.hid.pacing_ms if pacing_ms is None else pacing_ms
        self.pacing_s = ms / 1000

    def _check_online(self) -> None:
        hid = self.appliance.hid
        if hid.online is False:
            raise ScriptFailed(0, f"target offline: {hid.last_error or 'not answering'}")

    async def type_text(self, text: str) -> None:
        from hid.controller import Pacing, TypingAborted

        self._check_online()
        try:
            await self.appliance.hid.type_text(
                text, self.layout, Pacing(self.pacing_s, self.pacing_s)
            )
        except TypingAborted as exc:
            raise ScriptFailed(0, str(exc)) from None

    async def press(self, codes: Sequence[str]) -> None:
        self._check_online()
        await self.appliance.hid.press_chords(self.client, [list(codes)])

    async def wait_image(self, template: bytes, name: str, timeout: float) -> None:
        from appliance.scripting import screen

        try:
            tpl = await screen.load_template(template)
            await screen.wait_for_image(self.appliance.hub, tpl, timeout=timeout)
        except screen.ScreenTimeout as exc:
            raise WaitTimedOut(0, f"WAITFOR {name}: {exc}", exc.best_score) from None
        except screen.ScreenError as exc:
            raise ScriptFailed(0, f"WAITFOR {name}: {exc}") from None

    async def wait_text(self, text: str, timeout: float) -> None:
        from appliance.scripting import screen

        try:
            await screen.wait_for_text(self.appliance.hub, text, timeout=timeout)
        except screen.ScreenTimeout as exc:
            raise WaitTimedOut(0, f"WAITFOR_TEXT: {exc}", exc.best_score) from None
        except screen.ScreenError as exc:
            raise ScriptFailed(0, f"WAITFOR_TEXT: {exc}") from None

    async def switch(self, port: int | str) -> None:
        """Through the switch controller; returns once the switch confirmed the port. Typing
        after it uses the new port's layout unless the script was started with one."""
        from appliance.switch import SwitchError

        switch = self.appliance.switch
        if switch is None:
            raise ScriptFailed(0, "SWITCH: no KVM switch is configured (switch.driver)")
        try:
            await switch.select(port)
        except (SwitchError, ValueError) as exc:
            raise ScriptFailed(0, f"SWITCH {port}: {exc}") from None
        if self.follow_port_layout:
            from hid.layouts import get_layout

            self.layout = get_layout(self.appliance.layout)


class ClientExecutor:
    """Runs on a workstation, one REST call per command through :class:`IpkvmClient`."""

    def __init__(
        self, client: IpkvmClient, layout: str | None = None, pacing_ms: float | None = None
    ) -> None:
        self.client = client
        self.layout = layout
        self.pacing_ms = pacing_ms

    async def type_text(self, text: str) -> None:
        from appliance.client import IpkvmError

        try:
            await self.client.type_text(text, layout=self.layout, pacing_ms=self.pacing_ms)
        except IpkvmError as exc:
            raise ScriptFailed(0, exc.message) from None

    async def press(self, codes: Sequence[str]) -> None:
        from appliance.client import IpkvmError

        try:
            await self.client.keys("+".join(codes))
        except IpkvmError as exc:
            raise ScriptFailed(0, exc.message) from None

    async def wait_image(self, template: bytes, name: str, timeout: float) -> None:
        from appliance.client import IpkvmError, WaitTimeout

        try:
            await self.client.wait_for_image(template, timeout=timeout)
        except WaitTimeout as exc:
            raise WaitTimedOut(0, f"WAITFOR {name}: {exc.message}", exc.best_score) from None
        except IpkvmError as exc:
            raise ScriptFailed(0, f"WAITFOR {name}: {exc.message}") from None

    async def wait_text(self, text: str, timeout: float) -> None:
        from appliance.client import IpkvmError, WaitTimeout

        try:
            await self.client.wait_for_text(text, timeout=timeout)
        except WaitTimeout as exc:
            raise WaitTimedOut(0, f"WAITFOR_TEXT: {exc.message}", exc.best_score) from None
        except IpkvmError as exc:
            raise ScriptFailed(0, f"WAITFOR_TEXT: {exc.message}") from None

    async def switch(self, port: int | str) -> None:
        from appliance.client import IpkvmError

        try:
            await self.client.switch_select(port)
        except IpkvmError as exc:
            raise ScriptFailed(0, f"SWITCH {port}: {exc.message}") from None
