"""A flood on ``/api/ws`` never starves ``/api/health`` or another logged-in client's input.

A flooder process (tests/ws_flooder.py, its own event loop and CPU) sends key presses and releases
on several sockets as fast as TCP takes them. Meanwhile this test measures how long
``GET /api/health`` takes and how long another socket's key press takes to reach the target (the
demo machine's HID output). Without per-connection rate limits the flooders' reports queue up in
front of the victim's on the one keyboard and the event loop spends its time on them.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hid.keymap import usage_for
from hid.reports import Report, ReportKind
from tests.conftest import Server

ROOT = Path(__file__).resolve().parents[1]
SOCKETS = 3
FLOOD_SECONDS = 4.5
HEALTH_BOUND = 0.25
"""Seconds: the slowest /api/health answer allowed during the flood."""
KEY_BOUND = 0.25
"""Seconds: the slowest victim key press allowed to reach the target during the flood."""


def _session_cookie(session: aiohttp.ClientSession) -> str:
    for cookie in session.cookie_jar:
        if cookie.key == "ipkvm_session":
            return cookie.value
    raise AssertionError("no session cookie")


class KeyWatch:
    """Wraps the HID output's write: the time each report with *usage* pressed reached it."""

    def __init__(self, output: Any, usage: int) -> None:
        self.usage = usage
        self.seen = asyncio.Event()
        write = output.write

        async def watched(report: Report) -> None:
            await write(report)
            if report.kind is ReportKind.KEYBOARD and usage in report.data[2:]:
                self.seen.set()

        output.write = watched


async def measure(srv: Server, sockets: int, seconds: float) -> dict[str, Any]:
    """Health and victim key latencies (seconds) while *sockets* flood for *seconds*."""
    appliance: Any = srv.appliance
    watch = KeyWatch(appliance.hid.output, usage_for("KeyB"))
    session = await srv.login()
    flooder = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.ws_flooder",
        srv.url,
        _session_cookie(session),
        str(sockets),
        str(seconds),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    health: list[float] = []
    keys: list[float] = []
    try:
        async with session.ws_connect("/api/ws") as victim:
            assert flooder.stdout is not None
            for _ in range(sockets):
                assert (await flooder.stdout.readline()).strip() == b"ready"
            await asyncio.sleep(1.0)  # the flood is at full speed
            end = time.monotonic() + seconds - 2.0
            async with aiohttp.ClientSession() as fresh:
                while time.monotonic() < end:
                    t0 = time.monotonic()
                    async with fresh.get(f"{srv.url}/api/health") as resp:
                        assert resp.status == 200
                    health.append(time.monotonic() - t0)
                    watch.seen.clear()
                    t0 = time.monotonic()
                    await victim.send_str(json.dumps({"type": "key", "code": "KeyB", "down": True}))
                    try:
                        async with asyncio.timeout(10):
                            await watch.seen.wait()
                        keys.append(time.monotonic() - t0)
                    except TimeoutError:
                        keys.append(10.0)
                    await victim.send_str(
                        json.dumps({"type": "key", "code": "KeyB", "down": False})
                    )
                    await asyncio.sleep(0.1)
        out, _ = await asyncio.wait_for(flooder.communicate(), 30)
        result = json.loads(out.decode().strip().splitlines()[-1])
    finally:
        if flooder.returncode is None:
            flooder.kill()
            await flooder.wait()
        await session.close()
    return {
        "health_max": max(health),
        "health_median": sorted(health)[len(health) // 2],
        "key_max": max(keys),
        "key_median": sorted(keys)[len(keys) // 2],
        "samples": len(health),
        "flood_sent": result["sent"],
        "flood_errors": result["errors"],
        "flood_closed": result["closed"],
    }


@pytest.mark.slow
async def test_flood_does_not_starve_health_or_another_client(server: Server) -> None:
    figures = await measure(server, SOCKETS, FLOOD_SECONDS)
    print(figures)
    assert figures["health_max"] < HEALTH_BOUND, figures
    assert figures["key_max"] < KEY_BOUND, figures
    appliance: Any = server.appliance
    assert not appliance.hid.keyboard.held
