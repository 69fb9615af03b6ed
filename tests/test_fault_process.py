"""Fault matrix, rows 4 and 9 (docs/reliability.md): the capture device vanishing and returning,
and SIGTERM in the middle of a paste (the real ``ipkvm serve`` process, OTG output to FIFOs).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

import aiohttp

from capture.hub import FrameHub
from capture.v4l2 import V4l2Source
from tests.conftest import basic_header, free_port, start_server
from tests.faultkit import Stopwatch, record
from tests.test_v4l2 import wait_signal


# =========================================================================== row 4: capture
async def test_capture_device_vanishes_and_returns(tmp_path: Path) -> None:
    """No V4L2 device exists here, so "returning" is a node reappearing at the path (a non-video
    node: /dev/null) and vanishing again. What is tested is the supervisor's re-check of the path
    on every retry and the explanatory frame; frames from a real device after a replug are the
    system test's (tests/system, on the board)."""
    path = tmp_path / "video0"
    os.symlink("/dev/null", path)
    hub = FrameHub()
    source = V4l2Source(str(path), 320, 240, retry_interval=0.05)
    await source.start(hub)
    try:
        await wait_signal(hub, lambda s: "not a V4L2 video device" in s.message)
        clock = Stopwatch()
        path.unlink()  # the capture card is pulled
        lost = await wait_signal(hub, lambda s: s.message.startswith("No capture device"))
        record("4 capture gone: no_device shown", clock.elapsed)
        assert lost.status == "no_device" and str(path) in lost.message
        assert hub.latest is not None and hub.latest.image.shape == (240, 320, 3)
        clock.reset()
        os.symlink("/dev/null", path)  # something is back at the path
        await wait_signal(hub, lambda s: "not a V4L2 video device" in s.message)
        record("4 capture back: noticed", clock.elapsed)
    finally:
        await source.close()


async def test_server_without_capture_device_keeps_serving(tmp_path: Path) -> None:
    """The whole service with a V4L2 source whose device is missing: state says why, snapshots
    are the explanatory picture, input still works."""
    device = tmp_path / "video7"
    srv, runner = await start_server(tmp_path, f'[video]\nsource = "v4l2"\ndevice = "{device}"\n')
    try:
        async with aiohttp.ClientSession(base_url=srv.url, headers=srv.basic()) as s:
            async with asyncio.timeout(5):
                while True:
                    async with s.get("/api/state") as resp:
                        video = (await resp.json())["video"]
                    if video["status"] == "no_device":
                        break
                    await asyncio.sleep(0.05)  # the supervisor thread reports soon after start
            assert str(device) in video["message"]
            async with s.get("/api/snapshot") as resp:
                assert resp.status == 200 and resp.content_type == "image/jpeg"
            async with s.post("/api/hid/type", json={"text": "ok", "pacing_ms": 1}) as resp:
                assert resp.status == 200
    finally:
        await runner.cleanup()


# =========================================================================== row 9: SIGTERM
def read_available(fd: int) -> bytes:
    data = b""
    with contextlib.suppress(BlockingIOError):
        while chunk := os.read(fd, 65536):
            data += chunk
    return data


async def test_sigterm_during_a_paste_exits_promptly_with_all_released(tmp_path: Path) -> None:
    fifos = [tmp_path / f"hidg{i}" for i in range(3)]
    readers = []
    for path in fifos:
        os.mkfifo(path)
        readers.append(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
    cfg = tmp_path / "ipkvm.toml"
    cfg.write_text(
        '[hid]\noutput = "otg"\npacing_ms = 2\n[hid.otg]\n'
        f'keyboard = "{fifos[0]}"\nmouse = "{fifos[1]}"\nmouse_rel = "{fifos[2]}"\n'
    )
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "appliance", "serve", "--config", str(cfg), "--target", "demo",
        "--listen", f"127.0.0.1:{port}", "--state-dir", str(tmp_path / "state"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        password = ""
        async with asyncio.timeout(30):
            while not password:
                line = (await proc.stdout.readline()).decode()
                assert line, f"serve exited: {(await proc.stderr.read()).decode()}"  # type: ignore[union-attr]
                if line.startswith("  password:"):
                    password = line.split()[1]
        url = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession(
            base_url=url, headers=basic_header("admin", password)
        ) as s:
            async with s.post("/api/hid/type", json={"text": "A" * 3000, "wait": False}) as resp:
                assert resp.status == 202, await resp.text()
            typed = b""
            async with asyncio.timeout(10):
                while typed.count(b"\x02\x00\x04") < 10:  # Shift+a reports: the paste is going
                    await asyncio.sleep(0.01)  # a FIFO read end cannot be awaited from here
                    typed += read_available(readers[0])
        clock = Stopwatch()
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            code = await proc.wait()
        took = record("9 SIGTERM mid-paste: process exited", clock.elapsed)
        typed += read_available(readers[0])
        assert code == 0
        assert took < 3.0
        assert len(typed) % 8 == 0
        assert typed[-8:] == bytes(8), "the last keyboard report must be 'all released'"
        assert typed.count(b"\x02\x00\x04") < 3000, "the paste ran to the end instead of stopping"
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        for fd in readers:
            os.close(fd)
