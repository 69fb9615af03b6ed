"""Stream an image from an HTTP(S) URL as a local block device, without downloading it.

Two existing engines, each doing what it is made for:

- ``nbdkit`` with its **curl plugin** serves the URL as an NBD export on a Unix socket, turning
  every block read into an HTTP range request (the ``readahead`` filter makes the sequential reads
  of an installer larger requests). Read-only (``-r``): the remote image is never written.
- The kernel's **NBD client** (``nbd.ko``), configured by ``nbd-client -unix SOCKET /dev/nbdN``,
  turns that export into ``/dev/nbdN``, a block device the gadget's LUN opens like a file.

Why this pair rather than ``nbdfuse`` or ``nbdkit --run``: the kernel client is what NBD is for on
Linux (a block device any kernel consumer can open, no FUSE daemon in the read path), nbd-client
is the reference client packaged everywhere, and nbdkit's curl plugin is the maintained
HTTP-to-block engine (it is what virt-v2v and libguestfs use for remote disks). ``--run`` ties the
device's life to one shell command, where the appliance needs to detach whenever the user asks.

Needs ``nbdkit``, ``nbd-client`` and the ``nbd`` kernel module, and the privilege to configure an
NBD device (CAP_SYS_ADMIN): see docs/media.md for how the appliance's service gets it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from appliance.media.errors import MediaError
from appliance.media.fetch import check_url

log = logging.getLogger(__name__)

NBDKIT = "nbdkit"
NBD_CLIENT = "nbd-client"
START_TIMEOUT = 20.0
IO_TIMEOUT = 30
"""Seconds the kernel waits for one NBD request before failing it (``nbd-client -t``): a dead
web server gives the host read errors instead of a hung drive."""
MAX_DEVICES = 16


class StreamFailed(MediaError):
    status = 502


class StreamUnavailable(MediaError):
    """This appliance cannot stream (tools or the kernel module missing): download instead."""

    status = 409


def streaming_available(sys_dir: Path = Path("/sys")) -> str | None:
    """Why URL streaming cannot work here (None: it can)."""
    for tool in (NBDKIT, NBD_CLIENT):
        if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists():
            return f"{tool} is not installed"
    if not (sys_dir / "module" / "nbd").is_dir():
        return "the nbd kernel module is not loaded (modprobe nbd)"
    return None


def free_device(sys_block: Path = Path("/sys/block"), dev: Path = Path("/dev")) -> Path:
    """The first ``/dev/nbdN`` no client has configured (its ``pid`` attribute is absent and
    its size is 0)."""
    for n in range(MAX_DEVICES):
        block = sys_block / f"nbd{n}"
        if not block.is_dir():
            break
        if (block / "pid").exists():
            continue
        try:
            if int((block / "size").read_text().strip() or "0"):
                continue
        except (OSError, ValueError):
            continue
        return dev / f"nbd{n}"
    raise StreamFailed("no free NBD device (/dev/nbd0..): detach a streamed image first")


async def probe(url: str, timeout: float = 20.0) -> int:
    """The image's size, from a one-byte range request; refuses a server that ignores ranges
    (streaming would then read the whole image for every block)."""
    import aiohttp

    check_url(url)
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    try:
        async with (
            aiohttp.ClientSession(timeout=client_timeout, auto_decompress=False) as session,
            session.get(url, headers={"Range": "bytes=0-0", "Accept-Encoding": "identity"}) as r,
        ):
            if r.status != 206:
                raise StreamFailed(
                    f"{url}: the server does not answer range requests (HTTP {r.status}): "
                    "download the image instead"
                )
            content_range = r.headers.get("Content-Range", "")
            total = content_range.rpartition("/")[2]
            if not total.isdigit():
                raise StreamFailed(f"{url}: no image size in Content-Range {content_range!r}")
            return int(total)
    except aiohttp.ClientError as exc:
        raise StreamFailed(f"{url}: {exc or type(exc).__name__}") from exc
    except TimeoutError as exc:
        raise StreamFailed(f"{url}: no answer within {timeout:g} s") from exc


@dataclass
class NbdExport:
    """nbdkit serving one URL on a Unix socket (the first half; also what tests read)."""

    url: str
    socket: Path
    process: asyncio.subprocess.Process
    workdir: Path

    @classmethod
    async def start(cls, url: str, *, timeout: float = START_TIMEOUT) -> NbdExport:
        check_url(url)
        workdir = Path(tempfile.mkdtemp(prefix="ipkvm-nbd-"))
        sock = workdir / "nbd.sock"
        process = await asyncio.create_subprocess_exec(
            NBDKIT,
            "--exit-with-parent",
            "--foreground",
            "--readonly",
            "--unix",
            str(sock),
            "--filter=readahead",
            "curl",
            f"url={url}",
            f"timeout={int(timeout)}",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        export = cls(url, sock, process, workdir)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not sock.exists():
            if process.returncode is not None or loop.time() > deadline:
                err = await export._stderr()
                await export.stop()
                raise StreamFailed(f"nbdkit could not serve {url}: {err or 'timed out'}")
            await asyncio.sleep(0.05)
        return export

    async def _stderr(self) -> str:
        if self.process.stderr is None or self.process.returncode is None:
            return ""
        data = await self.process.stderr.read(4096)
        return data.decode(errors="replace").strip().splitlines()[-1] if data.strip() else ""

    @property
    def uri(self) -> str:
        return f"nbd+unix:///?socket={self.socket}"

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            try:
                async with asyncio.timeout(5):
                    await self.process.wait()
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)


async def _run(*args: str, timeout: float = START_TIMEOUT) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with asyncio.timeout(timeout):
            out, _ = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return -1, f"{args[0]} timed out"
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace").strip()


@dataclass
class UrlStream:
    """A URL as ``/dev/nbdN``: :meth:`open` it, give ``device`` to the drive, :meth:`close`
    it after the eject."""

    url: str
    export: NbdExport
    device: Path
    size: int

    @classmethod
    async def open(cls, url: str, sys_dir: Path = Path("/sys")) -> UrlStream:
        reason = streaming_available(sys_dir)
        if reason:
            raise StreamUnavailable(f"cannot stream from a URL: {reason}")
        size = await probe(url)
        export = await NbdExport.start(url)
        try:
            device = free_device(sys_dir / "block")
            code, out = await _run(
                NBD_CLIENT,
                "-unix",
                str(export.socket),
                str(device),
                "-readonly",
                "-block-size",
                "2048",
                "-timeout",
                str(IO_TIMEOUT),
            )
            if code != 0:
                raise StreamFailed(f"nbd-client could not attach {device}: {out}")
            stream = cls(url, export, device, size)
            await stream._wait_size(sys_dir)
        except BaseException:
            await export.stop()
            raise
        return stream

    async def _wait_size(self, sys_dir: Path) -> None:
        size_file = sys_dir / "block" / self.device.name / "size"
        async with asyncio.timeout(START_TIMEOUT):
            while True:
                with contextlib.suppress(OSError, ValueError):
                    if int(size_file.read_text().strip()) > 0:
                        return
                await asyncio.sleep(0.05)

    async def close(self) -> None:
        """Disconnect the device, then stop nbdkit."""
        code, out = await _run(NBD_CLIENT, "-d", str(self.device))
        if code != 0:
            log.warning("nbd-client -d %s: %s", self.device, out)
        await self.export.stop()
