"""``ipkvm edid [show | set FILE | default] [--save FILE]``: the EDID the HDMI receiver offers.

``show`` prints the decoded modes (``--save`` writes the raw bytes, e.g. to edit and load back);
``set FILE`` loads a binary EDID or a hex dump (checked here first, so a broken file never reaches
the target); ``default`` loads the built-in one. What is set lasts until the next start, when
``video.edid`` applies again.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance.cli import CliError
from appliance.cli.client import add_connection_arguments, with_client

if TYPE_CHECKING:
    from appliance.client import IpkvmClient


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action",
        nargs="?",
        default="show",
        choices=("show", "set", "default"),
        help="default: show",
    )
    parser.add_argument("file", nargs="?", type=Path, help="for set: a binary EDID or hex text")
    parser.add_argument("--save", type=Path, metavar="FILE", help="write the raw EDID to FILE")
    add_connection_arguments(parser)


def describe(answer: dict[str, Any]) -> str:
    """The lines ``show`` prints."""
    raw = str(answer.get("edid") or "")
    if not raw:
        return "no EDID set (the source sees no display)"
    info = answer.get("info")
    lines = [f"{len(raw) // 2} bytes"]
    if info:
        lines.append(f"{info['vendor']} {info['name'] or '(no name)'}, EDID {info['version']}")
        lines.append("modes: " + ", ".join(info["timings"]))
        ycbcr = [n for n, on in (("4:4:4", info["ycbcr444"]), ("4:2:2", info["ycbcr422"])) if on]
        lines.append("YCbCr: " + (", ".join(ycbcr) if ycbcr else "off (RGB only)"))
    else:
        lines.append("(not decodable)")
    configured = answer.get("configured")
    if configured and configured.get("error"):
        lines.append(f"video.edid could not be set: {configured['error']}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    blob: bytes | None = None
    if args.action == "set":
        from capture import edid

        if args.file is None:
            raise CliError("set needs a FILE (a binary EDID or hex text)")
        try:
            blob = edid.load(args.file.read_bytes())
        except OSError as exc:
            raise CliError(f"{args.file}: {exc.strerror or exc}") from None
        except edid.EdidError as exc:
            raise CliError(f"{args.file}: not a valid EDID: {exc}") from None

    async def go(client: IpkvmClient) -> int:
        if args.action == "show":
            answer = await client.edid()
        else:
            answer = await client.set_edid(blob)
        if args.save is not None:
            args.save.write_bytes(bytes.fromhex(answer.get("edid") or ""))
        print(describe(answer))
        return 0

    return with_client(args, go)
