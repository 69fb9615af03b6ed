"""The privileged half of URL streaming: connect ``/dev/nbdN`` to the service's nbdkit socket.

Configuring an NBD device needs CAP_SYS_ADMIN, which the hardened ``ipkvm.service`` does not
have (it keeps only CAP_NET_BIND_SERVICE). Rather than give the whole web-facing service that
capability, this small program holds it, and can do exactly two things:

- ``connect SOCKET``: ``nbd-client -unix SOCKET /dev/nbdN -readonly`` on the first free device,
  where SOCKET must be a Unix socket *owned by the caller* under the allowed directory
  (``/run/ipkvm/nbd``, the service's RuntimeDirectory) with no symlink or ``..`` on the way;
- ``disconnect /dev/nbdN``: ``nbd-client -d /dev/nbdN`` (``N`` below :data:`MAX_DEVICES`).

``systemd/ipkvm-nbd.socket`` listens on :data:`SOCKET_PATH` (mode 0660, group ipkvm) with
``Accept=yes``: each connection starts one ``ipkvm-nbd@.service`` instance running :func:`main`
with the connection as stdin/stdout. Protocol, ASCII, one line each way (at most
:data:`MAX_LINE` bytes): the request, then ``ok [DEVICE]`` or ``error REASON``.

Stdlib only, synchronous (its own short-lived process), and the same code runs in-process when
the service is root (tests, a development machine): see :func:`handle`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import socket
import stat
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

SOCKET_PATH = Path("/run/ipkvm-nbd.sock")
ALLOWED_DIR = Path("/run/ipkvm/nbd")
MAX_LINE = 512
MAX_DEVICES = 16
NBD_CLIENT = "nbd-client"
IO_TIMEOUT = 30
"""Seconds the kernel waits for one NBD request before failing it (``nbd-client -timeout``): a
dead web server gives the host read errors instead of a hung drive."""
RUN_TIMEOUT = 20.0
DEVICE_RE = re.compile(r"/dev/nbd([0-9]{1,2})")
SOCKET_RE = re.compile(r"/[A-Za-z0-9._/-]{1,200}")


class Refused(Exception):
    """A request the helper will not carry out (the message goes back to the caller)."""


@dataclass(frozen=True)
class HelperConfig:
    allowed_dir: Path = ALLOWED_DIR
    sys_block: Path = Path("/sys/block")
    dev: Path = Path("/dev")
    nbd_client: str = NBD_CLIENT


def check_socket(path: str, config: HelperConfig, peer_uid: int | None) -> str:
    """*path* if it names a Unix socket owned by *peer_uid* somewhere under the allowed
    directory, reached without symlinks or ``..``; else :class:`Refused`."""
    if not SOCKET_RE.fullmatch(path) or "/../" in path + "/" or "/./" in path + "/":
        raise Refused(f"not an acceptable socket path: {path[:80]!r}")
    root = os.path.realpath(config.allowed_dir)
    if os.path.realpath(path) != path or not path.startswith(root + "/"):
        raise Refused(f"{path}: not under {root} (or reached through a symlink)")
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise Refused(f"{path}: {exc.strerror}") from exc
    if not stat.S_ISSOCK(st.st_mode):
        raise Refused(f"{path}: not a Unix socket")
    if peer_uid is not None and st.st_uid != peer_uid:
        raise Refused(f"{path}: not owned by the caller (uid {st.st_uid}, caller {peer_uid})")
    return path


def check_device(path: str, config: HelperConfig) -> str:
    """*path* if it is ``/dev/nbdN`` for an NBD device this kernel has."""
    m = DEVICE_RE.fullmatch(path)
    if not m or int(m[1]) >= MAX_DEVICES or not (config.sys_block / f"nbd{int(m[1])}").is_dir():
        raise Refused(f"not an NBD device: {path[:80]!r}")
    return str(config.dev / f"nbd{int(m[1])}")


def free_device(config: HelperConfig) -> str:
    """The first ``/dev/nbdN`` no client has configured (no ``pid`` attribute, size 0)."""
    for n in range(MAX_DEVICES):
        block = config.sys_block / f"nbd{n}"
        if not block.is_dir():
            break
        if (block / "pid").exists():
            continue
        try:
            if int((block / "size").read_text().strip() or "0"):
                continue
        except (OSError, ValueError):
            continue
        return str(config.dev / f"nbd{n}")
    raise Refused("no free NBD device (/dev/nbd0..): detach a streamed image first")


def _run(*args: str) -> None:
    tool = os.path.basename(args[0])
    try:
        done = subprocess.run(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=RUN_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise Refused(f"{tool} timed out") from exc
    except OSError as exc:
        raise Refused(f"{tool}: {exc.strerror}") from exc
    if done.returncode != 0:
        out = done.stdout.decode(errors="replace").strip().splitlines()
        raise Refused(f"{tool} failed: {out[-1] if out else f'exit {done.returncode}'}")


def handle(line: bytes, config: HelperConfig, peer_uid: int | None) -> str:
    """One request line in, one answer line out (without the newline); never raises."""
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        return "error the request is not ASCII"
    words = text.rstrip("\n").split(" ")
    try:
        if len(words) == 2 and words[0] == "connect":
            sock = check_socket(words[1], config, peer_uid)
            device = free_device(config)
            _run(
                config.nbd_client,
                "-unix",
                sock,
                device,
                "-readonly",
                "-block-size",
                "2048",
                "-timeout",
                str(IO_TIMEOUT),
            )
            return f"ok {device}"
        if len(words) == 2 and words[0] == "disconnect":
            _run(config.nbd_client, "-d", check_device(words[1], config))
            return "ok"
        return f"error unknown request: {text[:60]!r} (connect SOCKET | disconnect DEVICE)"
    except Refused as exc:
        return f"error {' '.join(str(exc).split())}"


def read_line(fd: int) -> bytes:
    """The request: bytes up to the first newline, at most :data:`MAX_LINE`."""
    data = b""
    while b"\n" not in data and len(data) <= MAX_LINE:
        chunk = os.read(fd, MAX_LINE + 1 - len(data))
        if not chunk:
            break
        data += chunk
    line, newline, _ = data.partition(b"\n")
    if not newline or len(line) > MAX_LINE:
        raise Refused("a request is one line of at most 512 bytes")
    return line


def peer_uid(fd: int) -> int | None:
    """The uid of the process at the other end of Unix socket *fd* (None: not a socket)."""
    try:
        conn = socket.socket(fileno=os.dup(fd))
    except OSError:
        return None
    with conn:
        if conn.family != socket.AF_UNIX:
            return None
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ipkvm-nbd", description=__doc__.split("\n\n")[0])
    parser.add_argument("--allowed-dir", type=Path, default=ALLOWED_DIR)
    parser.add_argument("--nbd-client", default=NBD_CLIENT)
    parser.add_argument("--sys-block", type=Path, default=Path("/sys/block"), help="for tests")
    args = parser.parse_args(argv)
    config = HelperConfig(args.allowed_dir, args.sys_block, nbd_client=args.nbd_client)
    uid = peer_uid(0)
    try:
        answer = handle(read_line(0), config, uid)
    except Refused as exc:
        answer = f"error {exc}"
    print(f"ipkvm-nbd: uid {uid}: {answer}", file=sys.stderr)  # the journal: who asked what
    with contextlib.suppress(OSError):  # the caller gave up: nothing to tell
        os.write(1, answer.encode() + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
