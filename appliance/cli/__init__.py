"""``ipkvm`` command line. Subcommands import their modules lazily so ``ipkvm --help`` and the
small client commands start fast on a Pi Zero."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Callable, Sequence

from appliance import __version__

# name → (module, function adding arguments, help). Each module exposes
# ``add_arguments(parser)`` and ``run(args) -> int``.
# Modules named here keep their top-level imports to the standard library: they are imported to
# build ``--help``. Heavy imports (aiohttp, cv2, numpy) go inside ``run``.
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("appliance.cli.serve", "run the appliance service"),
    "config": ("appliance.cli.config", "check a configuration file"),
    "passwd": ("appliance.cli.passwd", "set the admin password"),
    "token": ("appliance.cli.token", "create, list or revoke API tokens"),
    "gadget": ("appliance.cli.gadget", "set up, tear down or show the USB HID gadget (configfs)"),
    # One module serves these client commands; it reads the name from the subparser's prog.
    "type": ("appliance.cli.client", "type text on the target (TEXT, or - for stdin)"),
    "key": ("appliance.cli.client", "press key combinations: ctrl+alt+delete, f2, enter"),
    "snapshot": ("appliance.cli.client", "save the target's screen as PNG or JPEG"),
    "run": ("appliance.cli.client", "run a DuckyScript on the target"),
    "wait-for": ("appliance.cli.client", "wait until an image or text is on the screen"),
    "state": ("appliance.cli.client", "print the appliance state as JSON"),
    "power": ("appliance.cli.power", "switch the target on/off/off-hard/reset, or show its LEDs"),
    "wol": ("appliance.cli.wol", "wake the target with a Wake-on-LAN magic packet"),
    "media": ("appliance.cli.media", "virtual media: list, upload, fetch, attach, detach, rm"),
    "switch": ("appliance.cli.switch", "show the KVM switch, or switch to PORT (number or name)"),
}


class CliError(Exception):
    """A user-facing error: printed as one line on stderr, exit status 1 (or ``code``)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ipkvm", description="ipkvm KVM-over-IP appliance")
    parser.add_argument("--version", action="version", version=f"ipkvm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        if importlib.util.find_spec(module) is None:
            continue  # not built yet in this checkout
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        _lazy_arguments(module)(p)
    return parser


def _lazy_arguments(module: str) -> Callable[[argparse.ArgumentParser], None]:
    def add(parser: argparse.ArgumentParser) -> None:
        mod = importlib.import_module(module)
        mod.add_arguments(parser)

    return add


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_module", None):
        parser.print_help()
        return 2
    mod = importlib.import_module(args._module)
    try:
        return int(mod.run(args) or 0)
    except CliError as exc:
        print(f"ipkvm {args.command}: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130
