"""``ipkvm switch``: show the rack's KVM switch, or switch it (``ipkvm switch 2``, ``ipkvm switch
db-01``) through the appliance's REST API, like the other client commands (same connection
settings: ``--url``, ``IPKVM_URL``, ``IPKVM_TOKEN``, ``~/.config/ipkvm/client.toml``).

Exit status: 0 switched (or shown), 1 error (no such port, the switch is busy or offline, no
answer), 2 usage. Top-level imports are the standard library only (``--help`` imports this).
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from appliance.client import IpkvmClient


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "port", nargs="?", metavar="PORT", help="port number or name to switch to (omit: show)"
    )
    parser.add_argument("--json", action="store_true", help="print the switch state as JSON")
    from appliance.cli.client import add_connection_arguments

    add_connection_arguments(parser)


def describe(state: dict[str, Any]) -> str:
    """The switch as a few lines: driver and state, then one line per port (* = active)."""
    head = f"{state['driver']} switch: {state['state']}"
    if state.get("error"):
        head += f" ({state['error']})"
    lines = [head]
    for p in state["ports"]:
        mark = "*" if p["port"] == state.get("active") else " "
        lines.append(f"{mark} {p['port']:>2}  {p['name']:<20} {p['layout']:<6} {p['mouse']}")
    return "\n".join(lines)


async def _show(client: IpkvmClient, args: argparse.Namespace) -> int:
    state = await client.switch_state()
    print(json.dumps(state, indent=2) if args.json else describe(state))
    return 0


async def _select(client: IpkvmClient, args: argparse.Namespace) -> int:
    spec: int | str = int(args.port) if args.port.isdigit() else args.port
    state = await client.switch_select(spec)
    if args.json:
        print(json.dumps(state, indent=2))
    else:
        name = next(p["name"] for p in state["ports"] if p["port"] == state["port"])
        print(f"switched to port {state['port']} ({name}) in {state['took']:.2f} s")
    return 0


def run(args: argparse.Namespace) -> int:
    from appliance.cli.client import with_client

    handler = _select if args.port else _show
    return with_client(args, lambda c: handler(c, args))
