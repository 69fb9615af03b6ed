"""``ipkvm wol [MAC | PORT]``: ask the appliance to send a Wake-on-LAN magic packet.

Sent by the appliance (it sits on the target's network segment, where the broadcast must go).
The argument is a MAC, or a KVM switch port (number or name) whose ``wol_mac`` to use; without
one, the machine on the console now (the active switch port's MAC, or ``wol.mac``).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from appliance.cli.client import add_connection_arguments, with_client
from appliance.wol import BadMac, parse_mac

if TYPE_CHECKING:
    from appliance.client import IpkvmClient


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "target",
        nargs="?",
        metavar="MAC|PORT",
        help="aa:bb:cc:dd:ee:ff, or a switch port number or name (default: the machine on the "
        "console: the active port's wol_mac, or the appliance's wol.mac)",
    )
    add_connection_arguments(parser)


def split_target(text: str | None) -> tuple[str | None, str | None]:
    """(MAC, switch port) from the command line's one argument."""
    if text is None:
        return None, None
    try:
        parse_mac(text)
    except BadMac:
        return None, text
    return text, None


def run(args: argparse.Namespace) -> int:
    mac, port = split_target(args.target)

    async def go(client: IpkvmClient) -> int:
        sent = await client.wake(mac, port)
        where = f" (switch port {sent['switch_port']})" if sent.get("switch_port") else ""
        print(f"magic packet for {sent['mac']}{where} sent to {sent['address']}:{sent['port']}")
        return 0

    return with_client(args, go)
