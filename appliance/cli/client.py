"""Client commands of ``ipkvm``: type, key, snapshot, run, wait-for, state — against a running
appliance over its REST API, for shell scripts and CI jobs.

One module serves several entries of ``appliance.cli.COMMANDS``: the command name comes from the
subparser's ``prog`` ("ipkvm type") when arguments are added, and from ``args.command`` at run
time. Top-level imports are the standard library only (this module is imported to build
``--help``); aiohttp comes in with :mod:`appliance.client` inside :func:`run`.

Exit status: 0 ok, 1 error (one line on stderr: ``ipkvm type: target offline: ...``), 2 usage,
3 a wait (``wait-for``, or a WAITFOR line of ``run``) timed out.

Connection settings, first found wins: ``--url`` / ``--token-file`` / ``--insecure``; the
environment (``IPKVM_URL``, ``IPKVM_TOKEN``, ``IPKVM_PASSWORD`` with ``IPKVM_USER``); the file
``~/.config/ipkvm/client.toml`` (``url``, ``token``, ``user``, ``password``, ``insecure``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import sys
import tomllib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from appliance.client import IpkvmClient

DEFAULT_URL = "http://127.0.0.1:8080"
EXIT_TIMEOUT = 3

COMMAND_NAMES = ("type", "key", "snapshot", "run", "wait-for", "state")


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "ipkvm" / "client.toml"


# ---------------------------------------------------------------------------- arguments
def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """``--url``, ``--token-file``, ``--insecure``: shared by every client command module."""
    group = parser.add_argument_group("connection")
    group.add_argument(
        "--url", help=f"appliance URL (default: $IPKVM_URL, client.toml, {DEFAULT_URL})"
    )
    group.add_argument(
        "--token-file",
        type=Path,
        help="file holding an API token (default: $IPKVM_TOKEN, client.toml)",
    )
    group.add_argument(
        "--insecure", action="store_true", help="accept a self-signed TLS certificate"
    )


def _region(text: str) -> tuple[int, int, int, int]:
    parts = text.split(",")
    try:
        x, y, w, h = (int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected x,y,w,h in pixels, not {text!r}") from None
    if x < 0 or y < 0 or w <= 0 or h <= 0:
        raise argparse.ArgumentTypeError("region needs x,y >= 0 and w,h > 0")
    return (x, y, w, h)


def _timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value <= 300:
        raise argparse.ArgumentTypeError("timeout must be more than 0 and at most 300 s")
    return value


def _threshold(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError("threshold must be more than 0 and at most 1")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    name = parser.prog.rsplit(" ", 1)[-1]
    if name == "type":
        parser.add_argument("text", metavar="TEXT", help="text to type, or - to read stdin")
        parser.add_argument("--layout", help="the target's keyboard layout (default: server's)")
        parser.add_argument("--pacing-ms", type=float, help="hold/gap per key stroke in ms")
        parser.add_argument("--enter", action="store_true", help="press Enter after the text")
    elif name == "key":
        parser.add_argument(
            "keys",
            nargs="+",
            metavar="CHORD",
            help="chords pressed in turn: ctrl+alt+delete, f2, ctrl+alt+f2 enter",
        )
    elif name == "snapshot":
        parser.add_argument("output", metavar="FILE", help="out.png or out.jpg (- for stdout)")
        parser.add_argument("--format", choices=("png", "jpeg"), help="default: from FILE")
        parser.add_argument("--width", type=int, help="scale to this width in pixels")
    elif name == "run":
        parser.add_argument("script", metavar="SCRIPT", help="DuckyScript file (- for stdin)")
        parser.add_argument(
            "--local",
            action="store_true",
            help="run line by line from here through the API instead of on the appliance",
        )
        parser.add_argument("--layout", help="the target's keyboard layout (default: server's)")
        parser.add_argument("--check", action="store_true", help="only parse, send nothing")
    elif name == "wait-for":
        what = parser.add_mutually_exclusive_group(required=True)
        what.add_argument("--image", type=Path, metavar="PNG", help="template cut from a snapshot")
        what.add_argument("--text", help="text read by OCR (needs tesseract on the appliance)")
        parser.add_argument("--timeout", type=_timeout, default=30.0, help="seconds (default 30)")
        parser.add_argument("--region", type=_region, help="search only in x,y,w,h (pixels)")
        parser.add_argument(
            "--threshold", type=_threshold, default=0.9, help="image match score (default 0.9)"
        )
    elif name != "state":
        raise ValueError(f"appliance.cli.client does not serve the command {name!r}")
    add_connection_arguments(parser)


# ---------------------------------------------------------------------------- settings
@dataclass
class Settings:
    url: str
    token: str | None
    user: str | None
    password: str | None
    insecure: bool


def _fail(message: str, code: int = 1) -> Exception:
    from appliance.cli import CliError

    return CliError(message, code)


def settings(args: argparse.Namespace, env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ) if env is None else env
    file: dict[str, Any] = {}
    path = config_path()
    if path.is_file():
        try:
            file = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise _fail(f"{path}: {exc}") from None
    url = args.url or env.get("IPKVM_URL") or file.get("url") or DEFAULT_URL
    token: str | None = None
    if args.token_file is not None:
        try:
            token = args.token_file.read_text().strip()
        except OSError as exc:
            raise _fail(f"{args.token_file}: {exc.strerror or exc}") from None
        if not token:
            raise _fail(f"{args.token_file} is empty")
    token = token or env.get("IPKVM_TOKEN") or _str(file.get("token"))
    password = env.get("IPKVM_PASSWORD") or _str(file.get("password"))
    user = env.get("IPKVM_USER") or _str(file.get("user"))
    insecure = bool(args.insecure or file.get("insecure", False))
    return Settings(str(url), token, user, password, insecure)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


# ---------------------------------------------------------------------------- running
class Progress:
    """One self-overwriting status line on stderr, only when stderr is a terminal."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self._shown = False

    def show(self, text: str) -> None:
        if self.enabled:
            sys.stderr.write("\r\x1b[K" + text)
            sys.stderr.flush()
            self._shown = True

    def end(self) -> None:
        if self._shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
            self._shown = False


def run(args: argparse.Namespace) -> int:
    command: str = args.command
    if command == "run":
        # Parse before connecting: a broken script exits at once and sends nothing.
        script_text, script = _load_script(args.script)
        if args.check:
            print(f"{args.script}: {len(script.commands)} commands, parses")
            return 0
        base = Path(".") if args.script == "-" else Path(args.script).resolve().parent
        from appliance.scripting import ducky

        try:
            templates = ducky.load_templates(script, base)
        except ducky.DuckyError as exc:
            raise _fail(f"{args.script}:{exc.line}:{exc.column}: {exc.message}") from None
        return with_client(args, lambda c: _run_script(c, args, script_text, script, templates))
    handlers: dict[str, Callable[[IpkvmClient, argparse.Namespace], Awaitable[int]]] = {
        "type": _type,
        "key": _key,
        "snapshot": _snapshot,
        "wait-for": _wait_for,
        "state": _state,
    }
    handler = handlers[command]
    if command == "type" and args.text == "-":
        args.text = sys.stdin.read()
    if command == "wait-for" and args.image is not None:
        try:
            args.image_bytes = args.image.read_bytes()
        except OSError as exc:
            raise _fail(f"{args.image}: {exc.strerror or exc}") from None
    return with_client(args, lambda c: handler(c, args))


def with_client(args: argparse.Namespace, fn: Callable[[IpkvmClient], Awaitable[int]]) -> int:
    from appliance.client import IpkvmClient, IpkvmError, WaitTimeout

    s = settings(args)

    async def go() -> int:
        async with IpkvmClient(
            s.url, token=s.token, user=s.user, password=s.password, verify_tls=not s.insecure
        ) as client:
            return await fn(client)

    try:
        return asyncio.run(go())
    except WaitTimeout as exc:
        raise _fail(exc.message, EXIT_TIMEOUT) from None
    except IpkvmError as exc:
        if exc.status == 401 and not (s.token or s.password):
            raise _fail(f"{exc.message} (set IPKVM_TOKEN or use --token-file)") from None
        raise _fail(exc.message) from None


async def _type(client: IpkvmClient, args: argparse.Namespace) -> int:
    text: str = args.text + ("\n" if args.enter else "")
    bar = Progress()
    progress = (lambda typed, total: bar.show(f"typed {typed}/{total}")) if bar.enabled else None
    try:
        result = await client.type_text(
            text, layout=args.layout, pacing_ms=args.pacing_ms, progress=progress
        )
    except asyncio.CancelledError:  # Ctrl-C: stop typing on the appliance too
        await _quietly(client.cancel_typing())
        raise
    finally:
        bar.end()
    untypable = result.get("untypable") or []
    if untypable:
        chars = "".join(str(u.get("char", "")) for u in untypable)
        print(
            f"ipkvm type: skipped {len(untypable)} character(s) the layout cannot type: {chars!r}",
            file=sys.stderr,
        )
    return 0


async def _quietly(call: Awaitable[object]) -> None:
    """Best effort on the way out (Ctrl-C): a few seconds, errors ignored."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(5):
            await call


async def _key(client: IpkvmClient, args: argparse.Namespace) -> int:
    await client.keys(" ".join(args.keys))
    return 0


async def _snapshot(client: IpkvmClient, args: argparse.Namespace) -> int:
    out: str = args.output
    fmt = args.format
    if fmt is None:
        suffix = Path(out).suffix.lower()
        if suffix in (".jpg", ".jpeg"):
            fmt = "jpeg"
        elif suffix == ".png" or out == "-":
            fmt = "png"
        else:
            raise _fail(f"cannot tell the format from {out!r}: use .png, .jpg or --format", 2)
    data = await client.snapshot(fmt, width=args.width)
    if out == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        try:
            await asyncio.to_thread(Path(out).write_bytes, data)
        except OSError as exc:
            raise _fail(f"{out}: {exc.strerror or exc}") from None
    return 0


async def _wait_for(client: IpkvmClient, args: argparse.Namespace) -> int:
    bar = Progress()
    bar.show(f"waiting up to {args.timeout:g} s for {'the image' if args.image else args.text!r}")
    try:
        if args.image is not None:
            match = await client.wait_for_image(
                args.image_bytes, args.timeout, args.threshold, args.region
            )
        else:
            match = await client.wait_for_text(args.text, args.timeout, args.region)
    finally:
        bar.end()
    print(json.dumps(match))
    return 0


async def _state(client: IpkvmClient, args: argparse.Namespace) -> int:
    print(json.dumps(await client.state(), indent=2))
    return 0


def _load_script(name: str) -> tuple[str, Any]:
    from appliance.scripting import ducky

    try:
        text = sys.stdin.read() if name == "-" else Path(name).read_text()
    except OSError as exc:
        raise _fail(f"{name}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise _fail(f"{name}: not a UTF-8 text file") from None
    try:
        return text, ducky.parse(text)
    except ducky.DuckyError as exc:
        raise _fail(f"{name}:{exc.line}:{exc.column}: {exc.message}") from None


def _script_error(name: str, body: dict[str, Any], message: str) -> str:
    """The server says "line 3, column 10: ..."; say "script.txt:3:10: ..." like a compiler."""
    line, column = body.get("line"), body.get("column")
    if not isinstance(line, int):
        return message
    where = f"{name}:{line}:" + (f"{column}:" if isinstance(column, int) else "")
    return f"{where} {re.sub(r'^line [0-9]+(, column [0-9]+)?: ', '', message)}"


async def _run_script(
    client: IpkvmClient,
    args: argparse.Namespace,
    text: str,
    script: Any,
    templates: dict[str, bytes],
) -> int:
    from appliance.client import IpkvmError, WaitTimeout
    from appliance.scripting import ducky

    name = args.script
    bar = Progress()
    if not args.local:

        def remote_progress(event: dict[str, Any]) -> None:
            step, total = event.get("step"), event.get("total")
            bar.show(f"line {event.get('line')} ({step}/{total}): {event.get('command', '')}")

        try:
            await client.run_script(
                text,
                templates,
                layout=args.layout,
                progress=remote_progress if bar.enabled else None,
            )
        except asyncio.CancelledError:  # Ctrl-C: stop the script on the appliance too
            await _quietly(client.cancel_script())
            raise
        except WaitTimeout as exc:
            raise _fail(_script_error(name, exc.body, exc.message), EXIT_TIMEOUT) from None
        except IpkvmError as exc:
            raise _fail(_script_error(name, exc.body, exc.message)) from None
        finally:
            bar.end()
        return 0
    # The appliance checks STRING text against the target's layout; do the same here.
    from hid.layouts import UnknownLayout, get_layout

    layout_name = args.layout or (await client.state())["hid"]["layout"]
    try:
        ducky.check_typable(script, get_layout(layout_name))
    except UnknownLayout as exc:
        raise _fail(str(exc).strip("'\"")) from None
    except ducky.DuckyError as exc:
        raise _fail(f"{name}:{exc.line}:{exc.column}: {exc.message}") from None

    def progress(done: int, total: int, command: Any) -> None:
        bar.show(f"line {command.line} ({done}/{total}): {ducky.describe(command)}")

    executor = ducky.ClientExecutor(client, layout=args.layout)
    try:
        await ducky.run(script, executor, templates, progress if bar.enabled else None)
    except ducky.WaitTimedOut as exc:
        raise _fail(f"{name}:{exc.line}: {exc.message}", EXIT_TIMEOUT) from None
    except ducky.ScriptFailed as exc:
        raise _fail(f"{name}:{exc.line}: {exc.message}") from None
    finally:
        bar.end()
        try:
            await client.release_all()
        except IpkvmError:
            pass
    return 0
