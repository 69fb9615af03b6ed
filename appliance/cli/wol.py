"""``ipkvm wol [MAC]``: ask the appliance to send a Wake-on-LAN magic packet.

Sent by the appliance (it sits on the target's network segment, where the broadcast must go),
to MAC or to the configured ``wol.mac``.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from appliance.cli.client import add_connection_arguments, with_client

if TYPE_CHECKING:
    from appliance.client import IpkvmClient


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "mac", nargs="?", metavar="MAC", help="aa:bb:cc:dd:ee:ff (default: the appliance's wol.mac)"
    )
    add_connection_arguments(parser)


def run(args: argparse.Namespace) -> int:
    async def go(client: IpkvmClient) -> int:
        sent = await client.wake(args.mac)
        print(f"magic packet for {sent['mac']} sent to {sent['address']}:{sent['port']}")
        return 0

    return with_client(args, go)
