"""``ipkvm media list|upload|fetch|attach|detach|rm|status``: virtual media through the REST API.

Connection settings as for the other client commands (:mod:`appliance.cli.client`). ``upload``
streams the file (resuming an incomplete image of the same name unless ``--restart``) and
``fetch`` follows the appliance's download job, both with a progress bar on a terminal.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import TYPE_CHECKING, Any

from appliance.cli.client import add_connection_arguments, with_client

if TYPE_CHECKING:
    from appliance.client import IpkvmClient

POLL = 0.5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="media_action", metavar="ACTION", required=True)
    p = sub.add_parser("list", help="images with size, state and SHA-256")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("status", help="what is in the target's drive")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("upload", help="upload FILE (resumes an interrupted upload)")
    p.add_argument("file")
    p.add_argument("--name", help="image name (default: the file's name)")
    p.add_argument("--restart", action="store_true", help="start over instead of resuming")
    p = sub.add_parser("fetch", help="have the appliance download URL")
    p.add_argument("source", metavar="URL", help="http:// or https:// URL of the image")
    p.add_argument("--name", help="image name (default: the URL's last path segment)")
    p.add_argument("--sha256", help="expected SHA-256 (hex); a mismatch removes the download")
    p.add_argument("--no-wait", action="store_true", help="print the job and return")
    p = sub.add_parser("attach", help="put image NAME in the target's drive")
    p.add_argument("name")
    p.add_argument("--flash", action="store_true", help="as a USB flash drive (default: CD-ROM)")
    p.add_argument("--rw", action="store_true", help="flash only: writable by the target")
    sub.add_parser("detach", help="empty the target's drive")
    p = sub.add_parser("rm", help="delete image NAME")
    p.add_argument("name")
    for p in sub.choices.values():
        add_connection_arguments(p)


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


class Bar:
    """``[#####.....]  42%  1.2 GiB/2.9 GiB  38.1 MiB/s`` on stderr, when it is a terminal."""

    WIDTH = 30

    def __init__(self, what: str) -> None:
        from appliance.cli.client import Progress

        self.line = Progress()
        self.what = what
        self.t0 = time.monotonic()
        self.first: int | None = None

    def show(self, done: int, total: int | None) -> None:
        if self.first is None:
            self.first = done
        elapsed = max(time.monotonic() - self.t0, 1e-6)
        rate = human((done - self.first) / elapsed) + "/s"
        if total:
            filled = int(self.WIDTH * done / total)
            bar = "#" * filled + "." * (self.WIDTH - filled)
            text = f"{self.what} [{bar}] {100 * done // total:3d}%  {human(done)}/{human(total)}"
        else:
            text = f"{self.what} {human(done)}"
        self.line.show(f"{text}  {rate}")

    def end(self) -> None:
        self.line.end()


def image_line(i: dict[str, Any]) -> str:
    state = i["state"] + (", attached" if i["attached"] else "")
    return f"{i['name']:<40} {human(i['size']):>10}  {state:<20} {i['sha256'] or '-'}"


def drive_line(s: dict[str, Any]) -> str:
    if not s.get("available"):
        return f"no virtual media: {s.get('reason', 'unavailable')}"
    if not s.get("inserted"):
        return "drive empty"
    mode = "read-only" if s.get("read_only") else "read-write"
    return f"{s.get('image') or s.get('label')}: {s.get('kind')}, {mode} ({s.get('path')})"


def run(args: argparse.Namespace) -> int:
    from appliance.cli import CliError

    action: str = args.media_action
    if action == "upload" and not os.path.isfile(args.file):
        raise CliError(f"{args.file}: no such file")

    async def go(client: IpkvmClient) -> int:
        if action == "list":
            data = await client.media_images()
            if args.json:
                print(json.dumps(data))
            else:
                for i in data["images"]:
                    print(image_line(i))
                print(f"{human(data['free'])} free, images up to {human(data['max_image_size'])}")
        elif action == "status":
            s = await client.media_status()
            print(json.dumps(s) if args.json else drive_line(s))
        elif action == "upload":
            name = args.name or os.path.basename(args.file)
            bar = Bar(f"upload {name}")
            try:
                info = await client.media_upload(
                    args.file, name, resume=not args.restart, progress=bar.show
                )
            finally:
                bar.end()
            print(image_line(info))
        elif action == "fetch":
            job = await client.media_fetch(args.source, args.name, args.sha256)
            if args.no_wait:
                print(json.dumps(job))
                return 0
            bar = Bar("fetch")
            try:
                while job["status"] == "running":
                    bar.show(job["completed"], job["total"])
                    await _sleep(POLL)
                    job = await client.job(job["job"])
            finally:
                bar.end()
            if job["status"] != "done":
                raise CliError(f"fetch {job['status']}: {job.get('error', '')}")
            print(image_line(job["result"]))
        elif action == "attach":
            kind = "flash" if args.flash else "cdrom"
            if args.rw and not args.flash:
                raise CliError("--rw needs --flash: a CD-ROM is always read-only", 2)
            s = await client.media_attach(args.name, kind, read_only=not args.rw)
            print(drive_line(s))
        elif action == "detach":
            print(drive_line(await client.media_detach()))
        elif action == "rm":
            await client.media_delete(args.name)
            print(f"deleted {args.name}")
        return 0

    return with_client(args, go)


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)
