"""``ipkvm power on|off|off-hard|reset|press|status``: the target's power through the REST API.

Connection settings as for the other client commands (:mod:`appliance.cli.client`). Prints the
power status as one line (``on  power LED on, HDD LED off``), or JSON with ``--json``. A refused
action (already in that state, busy) exits 1 with the server's reason.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from appliance.cli.client import add_connection_arguments, with_client

if TYPE_CHECKING:
    from appliance.client import IpkvmClient

# command-line word → API action
ACTIONS = {"on": "on", "off": "off", "off-hard": "off_hard", "reset": "reset"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action",
        choices=(*ACTIONS, "press", "status"),
        help="on / off (short press, only when the power LED agrees), off-hard (long press: "
        "forced off), reset, press (--ms), status",
    )
    parser.add_argument("--ms", type=int, help="press: how long to hold the power button")
    parser.add_argument("--json", action="store_true", help="print the status as JSON")
    add_connection_arguments(parser)


def describe(status: dict[str, Any]) -> str:
    def led(value: object) -> str:
        return "not wired" if value is None else ("on" if value else "off")

    if status.get("available") is False:
        return f"unavailable: {status.get('reason')}"
    leds = status.get("leds", {})
    line = (
        f"{status.get('state')}  power LED {led(leds.get('power'))}, HDD LED {led(leds.get('hdd'))}"
    )
    if status.get("busy"):
        line += f" (busy: {status.get('action')})"
    return line


def run(args: argparse.Namespace) -> int:
    from appliance.cli import CliError

    if args.action == "press" and args.ms is None:
        raise CliError("ipkvm power press needs --ms", 2)

    async def go(client: IpkvmClient) -> int:
        if args.action == "status":
            status = await client.power_status()
        elif args.action == "press":
            status = await client.press_power(args.ms)
        else:
            status = await client.power(ACTIONS[args.action])
        print(json.dumps(status) if args.json else describe(status))
        return 0

    return with_client(args, go)
