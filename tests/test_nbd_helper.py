"""The NBD helper (appliance/media/nbd_helper.py, ipkvm-nbd@.service): the one privileged step of
URL streaming. Run for real as its own process on a Unix socket connection, the way systemd's
``Accept=yes`` socket starts it, with temp dirs for /run/ipkvm and /sys/block; only
``nbd-client`` (the kernel's NBD client, which needs a kernel module and CAP_SYS_ADMIN) is a
stand-in script that records its arguments. Checks that it does exactly connect/disconnect of
/dev/nbdN to a socket of the caller's under the allowed directory, and refuses anything else
without running nbd-client; and the service side (UrlStream) through it with a real nbdkit."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from appliance.media.iso9660 import tiny_iso
from appliance.media.nbd import (
    StreamFailed,
    StreamUnavailable,
    UrlStream,
    _helper_request,
    streaming_available,
)
from appliance.media.nbd_helper import HelperConfig, handle
from tests.test_media_stream import RangeServer

REPO = Path(__file__).resolve().parent.parent
FAKE_NBD_CLIENT = """#!/bin/sh
# nbd-client stand-in: record the call; "connect" sets the device's size like the kernel does
echo "$@" >>"{log}"
if [ "$1" = -unix ]; then
    [ -e "{fail}" ] && {{ echo "Error: Socket failed: Connection refused"; exit 1; }}
    dev=$(basename "$3"); echo 8192 >"{sys_block}/$dev/size"; touch "{sys_block}/$dev/pid"
else
    dev=$(basename "$2"); echo 0 >"{sys_block}/$dev/size"; rm -f "{sys_block}/$dev/pid"
fi
"""


@dataclass
class Helper:
    """The helper behind a listening Unix socket, one process per connection."""

    socket: Path
    allowed: Path
    sys_block: Path
    calls: Path
    fail: Path

    def nbd_client_calls(self) -> list[str]:
        return self.calls.read_text().splitlines() if self.calls.exists() else []

    def ask(self, request: bytes) -> str:
        with socket.socket(socket.AF_UNIX) as conn:
            conn.settimeout(20)
            conn.connect(str(self.socket))
            conn.sendall(request)
            conn.shutdown(socket.SHUT_WR)
            return conn.makefile("rb").readline().decode().rstrip("\n")


@pytest.fixture
def helper(tmp_path: Path) -> Iterator[Helper]:
    allowed = tmp_path / "run"
    allowed.mkdir(mode=0o700)
    sys_block = tmp_path / "sys" / "block"
    for n in range(3):
        (sys_block / f"nbd{n}").mkdir(parents=True)
        (sys_block / f"nbd{n}" / "size").write_text("0\n")
    calls, fail = tmp_path / "calls", tmp_path / "fail"
    fake = tmp_path / "nbd-client"
    fake.write_text(FAKE_NBD_CLIENT.format(log=calls, fail=fail, sys_block=sys_block))
    fake.chmod(0o755)
    listen_path = tmp_path / "helper.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(listen_path))
    listener.listen()
    argv = [sys.executable, "-m", "appliance.media.nbd_helper", "--allowed-dir"]
    argv += [str(allowed), "--nbd-client", str(fake), "--sys-block", str(sys_block)]

    def accept_loop() -> None:  # what systemd does with Accept=yes
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                env = {**os.environ, "PYTHONPATH": str(REPO)}
                subprocess.run(argv, stdin=conn, stdout=conn, env=env, timeout=30, check=False)

    thread = threading.Thread(target=accept_loop, daemon=True)
    thread.start()
    yield Helper(listen_path, allowed, sys_block, calls, fail)
    listener.shutdown(socket.SHUT_RDWR)
    listener.close()
    thread.join(5)


def served_socket(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    return sock


def test_connect_and_disconnect_a_socket_of_the_callers(helper: Helper) -> None:
    with served_socket(helper.allowed / "nbd.sock"):
        sock = helper.allowed / "nbd.sock"
        assert helper.ask(f"connect {sock}\n".encode()) == "ok /dev/nbd0"
        # nbd0 is busy now: the next connect gets nbd1
        assert helper.ask(f"connect {sock}\n".encode()) == "ok /dev/nbd1"
        assert helper.ask(b"disconnect /dev/nbd0\n") == "ok"
    assert helper.nbd_client_calls() == [
        f"-unix {sock} /dev/nbd0 -readonly -block-size 2048 -timeout 30",
        f"-unix {sock} /dev/nbd1 -readonly -block-size 2048 -timeout 30",
        "-d /dev/nbd0",
    ]


def test_a_subdirectory_socket_is_accepted(helper: Helper) -> None:
    (helper.allowed / "nbd-abc").mkdir()
    with served_socket(helper.allowed / "nbd-abc" / "nbd.sock"):
        answer = helper.ask(f"connect {helper.allowed}/nbd-abc/nbd.sock\n".encode())
    assert answer == "ok /dev/nbd0"


def test_nbd_client_failures_come_back_as_the_reason(helper: Helper) -> None:
    helper.fail.touch()
    with served_socket(helper.allowed / "nbd.sock"):
        answer = helper.ask(f"connect {helper.allowed}/nbd.sock\n".encode())
    assert answer == "error nbd-client failed: Error: Socket failed: Connection refused"


def test_no_free_device_is_refused(helper: Helper) -> None:
    for n in range(3):
        (helper.sys_block / f"nbd{n}" / "pid").touch()
    with served_socket(helper.allowed / "nbd.sock"):
        answer = helper.ask(f"connect {helper.allowed}/nbd.sock\n".encode())
    assert answer.startswith("error no free NBD device"), answer
    assert helper.nbd_client_calls() == []


def test_requests_it_must_refuse(helper: Helper, tmp_path: Path) -> None:
    """Whatever a compromised service sends, nbd-client never runs on anything else."""
    outside = served_socket(tmp_path / "outside.sock")
    inside = served_socket(helper.allowed / "nbd.sock")
    (helper.allowed / "link.sock").symlink_to(tmp_path / "outside.sock")
    (helper.allowed / "linkdir").symlink_to(tmp_path)
    (helper.allowed / "file").write_text("")
    a = helper.allowed
    refused = {
        f"connect {tmp_path}/outside.sock": "not under",
        f"connect {a}/../outside.sock": "not an acceptable socket path",
        f"connect {a}/./nbd.sock": "not an acceptable socket path",
        f"connect {a}/link.sock": "not under",
        f"connect {a}/linkdir/outside.sock": "not under",
        f"connect {a}/file": "not a Unix socket",
        f"connect {a}/missing.sock": "No such file",
        f"connect {a}": "not under",
        "connect nbd.sock": "not an acceptable socket path",
        f"connect {a}/nbd.sock;reboot": "not an acceptable socket path",
        f"connect {a}/nbd.sock /dev/nbd0": "unknown request",
        f"connect  {a}/nbd.sock": "unknown request",
        "disconnect /dev/sda": "not an NBD device",
        "disconnect /dev/nbd3": "not an NBD device",  # this kernel has nbd0..2
        "disconnect /dev/nbd0x": "not an NBD device",
        "disconnect /dev/../dev/nbd0": "not an NBD device",
        "disconnect": "unknown request",
        "reboot": "unknown request",
        "": "unknown request",
    }
    with outside, inside:
        for request, reason in refused.items():
            answer = helper.ask(request.encode() + b"\n")
            assert answer.startswith("error ") and reason in answer, (request, answer)
        assert helper.ask("connect /run/é\n".encode()).startswith("error the request is not")
        assert helper.ask(b"x" * 600 + b"\n") == "error a request is one line of at most 512 bytes"
        assert helper.ask(b"no newline") == "error a request is one line of at most 512 bytes"
    assert helper.nbd_client_calls() == []


def test_a_socket_of_another_user_is_refused(tmp_path: Path) -> None:
    """The owner check (SO_PEERCRED against the socket's owner): an ipkvm-owned socket path
    that is a hard link to, or a stand-in for, someone else's socket is not connected."""
    with served_socket(tmp_path / "nbd.sock"):
        config = HelperConfig(tmp_path, tmp_path, nbd_client="/bin/false")
        uid = os.getuid()
        answer = handle(f"connect {tmp_path}/nbd.sock".encode(), config, uid + 1)
    assert (
        answer
        == f"error {tmp_path}/nbd.sock: not owned by the caller (uid {uid}, caller {uid + 1})"
    )


async def test_the_service_side_through_the_helper(helper: Helper) -> None:
    answer = await _helper_request("disconnect /dev/nbd0", helper.socket)
    assert answer == ""
    with pytest.raises(StreamFailed, match="not an NBD device"):
        await _helper_request("disconnect /dev/sda", helper.socket)
    with pytest.raises(StreamUnavailable, match=r"NBD helper .* is not reachable"):
        await _helper_request("disconnect /dev/nbd0", helper.allowed / "missing.sock")


def test_without_the_helper_streaming_says_why(tmp_path: Path) -> None:
    if shutil.which("nbdkit") is None or shutil.which("nbd-client") is None:
        pytest.skip("nbdkit and nbd-client (scripts/system-deps) are not installed")
    (tmp_path / "module" / "nbd").mkdir(parents=True)
    missing = tmp_path / "ipkvm-nbd.sock"
    reason = streaming_available(tmp_path, missing)
    assert reason is not None and "NBD helper is not installed or not running" in reason
    with served_socket(missing):
        assert streaming_available(tmp_path, missing) is None
    assert streaming_available(tmp_path, None) is None  # root: no helper needed


@pytest.mark.skipif(shutil.which("nbdkit") is None, reason="nbdkit is not installed")
async def test_a_url_stream_through_the_helper(
    helper: Helper, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """UrlStream as the unprivileged service runs it: nbdkit (real) in the runtime directory,
    the helper connecting the device, then disconnecting it on close."""
    if shutil.which("nbd-client") is None:
        pytest.skip("nbd-client is not installed")
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(helper.allowed))
    (tmp_path / "sys" / "module" / "nbd").mkdir(parents=True)
    async with RangeServer(tiny_iso("HELPED", size=1 << 20)) as http:
        stream = await UrlStream.open(http.url, tmp_path / "sys", helper.socket)
        try:
            assert (stream.device, stream.size) == (Path("/dev/nbd0"), 1 << 20)
            assert stream.export.socket.parent.parent == helper.allowed
            assert await asyncio.to_thread(helper.nbd_client_calls) == [
                f"-unix {stream.export.socket} /dev/nbd0 -readonly -block-size 2048 -timeout 30"
            ]
        finally:
            await stream.close()
    assert helper.nbd_client_calls()[-1] == "-d /dev/nbd0"
    assert not stream.export.workdir.exists()


@pytest.mark.skipif(shutil.which("nbdkit") is None, reason="nbdkit is not installed")
async def test_a_refused_connect_stops_nbdkit_and_says_why(
    helper: Helper, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if shutil.which("nbd-client") is None:
        pytest.skip("nbd-client is not installed")
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(helper.allowed))
    (tmp_path / "sys" / "module" / "nbd").mkdir(parents=True)
    helper.fail.touch()
    async with RangeServer(tiny_iso("REFUSED", size=1 << 20)) as http:
        with pytest.raises(StreamFailed, match="nbd-client failed: Error: Socket failed"):
            await UrlStream.open(http.url, tmp_path / "sys", helper.socket)
    assert list(helper.allowed.iterdir()) == []  # nbdkit stopped, its directory gone
