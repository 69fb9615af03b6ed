"""``ipkvm config check FILE`` and ``ipkvm config defaults``.

``check`` lets an operator validate an edited file before restarting the service (a bad file
would otherwise take the appliance down); ``defaults`` prints a commented file to start from.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    check = sub.add_parser("check", help="validate a configuration file, print a summary")
    check.add_argument("file", type=Path, metavar="FILE")
    sub.add_parser("defaults", help="print a commented configuration with every default")


def run(args: argparse.Namespace) -> int:
    from appliance.cli import CliError
    from appliance.config import ConfigError, defaults_toml, load_config

    if args.action == "defaults":
        print(defaults_toml(), end="")
        return 0
    try:
        config = load_config(args.file)
    except ConfigError as exc:
        where = "" if str(args.file) in str(exc) else f"{args.file}: "
        raise CliError(f"{where}{exc}") from None
    print(f"ok: {args.file}")
    print(config.summary())
    return 0
