"""`ipkvm serve` as a real process: first-start password, clean and prompt shutdown on SIGTERM
with viewers connected, and configuration errors that name the key."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import aiohttp

from tests.conftest import basic_header, free_port


async def start(tmp_path: Path, *extra: str) -> tuple[asyncio.subprocess.Process, str, list[str]]:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "appliance", "serve", "--target", "demo",
        "--listen", f"127.0.0.1:{port}", "--state-dir", str(tmp_path / "state"), *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    banner: list[str] = []
    async with asyncio.timeout(30):
        while not any(line.startswith("  password:") for line in banner):
            line = (await proc.stdout.readline()).decode()
            assert line, f"serve exited early: {(await proc.stderr.read()).decode()}"  # type: ignore[union-attr]
            banner.append(line.rstrip("\n"))
    return proc, f"http://127.0.0.1:{port}", banner


async def test_first_start_prints_a_password_once_and_sigterm_is_prompt(tmp_path: Path) -> None:
    proc, url, banner = await start(tmp_path)
    assert f"  URL:      {url}/" in banner
    password = next(line.split()[1] for line in banner if line.startswith("  password:"))
    async with aiohttp.ClientSession(base_url=url, headers=basic_header("admin", password)) as s:
        stream = await s.get("/api/stream.mjpeg")
        assert stream.status == 200
        await stream.content.readline()  # a viewer is watching
        async with s.ws_connect("/api/ws") as ws:
            await ws.send_json({"type": "key", "code": "ShiftLeft", "down": True})
            await ws.send_json({"type": "ping", "t": 0})
            while (await ws.receive_json(timeout=5))["type"] != "pong":
                pass
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(10):
                code = await proc.wait()
            took = loop.time() - t0
        stream.close()
    assert code == 0
    assert took < 2.9, f"shutdown took {took:.1f} s with a viewer connected"

    # Second start: the password exists, so it is not shown again.
    proc, _, banner = await start(tmp_path)
    assert any("the one set before" in line for line in banner)
    assert not any(password in line for line in banner)
    proc.send_signal(signal.SIGTERM)
    async with asyncio.timeout(10):
        assert await proc.wait() == 0


async def test_bad_config_names_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[hid]\noutput = "usb-magic"\n')
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "appliance", "serve", "--config", str(cfg),
        "--state-dir", str(tmp_path / "state"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(30):
        _, err = await proc.communicate()
    assert proc.returncode == 1
    message = err.decode()
    assert "hid.output" in message and "usb-magic" in message
    assert "Traceback" not in message
