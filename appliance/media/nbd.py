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
NBD device (CAP_SYS_ADMIN). The service does not have it: it runs nbdkit itself (as its own
user, socket in its RuntimeDirectory) and asks the socket-activated helper
(:mod:`appliance.media.nbd_helper`, ``ipkvm-nbd@.service``) to connect/disconnect the device.
As root (tests, development) the helper's code runs in-process. See docs/media.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from appliance.media import nbd_helper
from appliance.media.errors import MediaError
from appliance.media.fetch import check_url
from appliance.media.nbd_helper import NBD_CLIENT, SOCKET_PATH, HelperConfig

log = logging.getLogger(__name__)

NBDKIT = "nbdkit"
START_TIMEOUT = 20.0


class StreamFailed(MediaError):
    status = 502


class StreamUnavailable(MediaError):
    """This appliance cannot stream (tools or the kernel module missing): download instead."""

    status = 409


def streaming_available(
    sys_dir: Path = Path("/sys"), helper: Path | Literal["default"] | None = "default"
) -> str | None:
    """Why URL streaming cannot work here (None: it can). Through the NBD helper (*helper*:
    its socket; by default when not root, i.e. the appliance's service) its socket must be
    there, as only it may configure /dev/nbdN."""
    helper_socket = default_helper() if helper == "default" else helper
    for tool in (NBDKIT, NBD_CLIENT):
        if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists():
            return f"{tool} is not installed"
    if not (sys_dir / "module" / "nbd").is_dir():
        return "the nbd kernel module is not loaded (modprobe nbd)"
    if helper_socket is not None and not helper_socket.exists():
        return (
            f"the NBD helper is not installed or not running ({helper_socket}, "
            "ipkvm-nbd.socket): this unprivileged service cannot configure /dev/nbdN itself"
        )
    return None


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
        workdir = Path(tempfile.mkdtemp(prefix="nbd-", dir=runtime_dir()))
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

    async def said(self, wait: float = 0.5) -> str:
        """nbdkit's last error line so far, while it runs ("" if none within *wait*)."""
        if self.process.stderr is None:
            return ""
        try:
            data = await asyncio.wait_for(self.process.stderr.read(4096), wait)
        except (TimeoutError, OSError):
            return ""
        lines = data.decode(errors="replace").strip().splitlines()
        return lines[-1].strip() if lines else ""

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


async def _helper_request(
    line: str, socket_path: Path = SOCKET_PATH, timeout: float = START_TIMEOUT
) -> str:
    """One request to the NBD helper (:mod:`appliance.media.nbd_helper`) over its socket."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_unix_connection(str(socket_path)), timeout
        )
    except (OSError, TimeoutError) as exc:
        raise StreamUnavailable(
            f"cannot stream from a URL: the NBD helper ({socket_path}) is not reachable: "
            f"{getattr(exc, 'strerror', None) or exc or 'timed out'}"
        ) from exc
    try:
        async with asyncio.timeout(timeout):
            writer.write(line.encode() + b"\n")
            await writer.drain()
            answer = (await reader.readline()).decode(errors="replace").strip()
    except TimeoutError as exc:
        raise StreamFailed(f"the NBD helper did not answer within {timeout:g} s") from exc
    except OSError as exc:
        raise StreamFailed(f"the NBD helper failed: {exc.strerror or exc}") from exc
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    if answer == "ok" or answer.startswith("ok "):
        return answer[3:]
    raise StreamFailed(answer.removeprefix("error ") or "the NBD helper gave no answer")


def default_helper() -> Path | None:
    """The NBD helper's socket for this process: None when root (it can configure /dev/nbdN
    itself, with the helper's own code in-process)."""
    return None if os.geteuid() == 0 else SOCKET_PATH


async def _nbd(line: str, allowed_dir: Path, helper: Path | None) -> str:
    """Carry out a helper request: through the helper unit's socket, or in-process (the
    helper's own code, in a thread) when *helper* is None."""
    if helper is not None:
        return await _helper_request(line, helper)
    answer = await asyncio.to_thread(
        nbd_helper.handle, line.encode(), HelperConfig(allowed_dir=allowed_dir), None
    )
    if answer == "ok" or answer.startswith("ok "):
        return answer[3:]
    raise StreamFailed(answer.removeprefix("error "))


def runtime_dir() -> Path:
    """Where nbdkit's socket goes: the service's RuntimeDirectory (/run/ipkvm/nbd, which the helper
    accepts sockets under), else the temporary directory (root, tests)."""
    return Path(os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0] or tempfile.gettempdir())


@dataclass
class UrlStream:
    """A URL as ``/dev/nbdN``: :meth:`open` it, give ``device`` to the drive, :meth:`close`
    it after the eject."""

    url: str
    export: NbdExport
    device: Path
    size: int
    helper: Path | None = None
    """The NBD helper's socket (None: /dev/nbdN configured in-process, as root)."""

    @classmethod
    async def open(
        cls,
        url: str,
        sys_dir: Path = Path("/sys"),
        helper: Path | Literal["default"] | None = "default",
    ) -> UrlStream:
        helper = default_helper() if helper == "default" else helper
        reason = streaming_available(sys_dir, helper)
        if reason:
            raise StreamUnavailable(f"cannot stream from a URL: {reason}")
        size = await probe(url)
        export = await NbdExport.start(url)
        try:
            allowed = export.workdir.parent
            try:
                device = Path(await _nbd(f"connect {export.socket}", allowed, helper))
            except StreamFailed as exc:
                # nbd-client only says "Exiting."; nbdkit says why (e.g. no Accept-Ranges)
                said = await export.said()
                raise StreamFailed(f"{exc}: nbdkit: {said}" if said else str(exc)) from exc
            stream = cls(url, export, device, size, helper)
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
        try:
            await _nbd(f"disconnect {self.device}", self.export.workdir.parent, self.helper)
        except MediaError as exc:
            log.warning("disconnecting %s: %s", self.device, exc)
        await self.export.stop()
