"""ATX power of the demo target through the real API on a real server: status with LEDs and
busy, refusals (409), press with a duration, WebSocket ``power`` events, and the CLI."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp

from appliance.targets.demo.machine import DemoMachine
from tests.conftest import Server, ipkvm_cli, start_server

ROOT = Path(__file__).resolve().parent.parent


def machine(server: Server) -> DemoMachine:
    m = server.appliance.target.machine  # type: ignore[attr-defined]
    assert isinstance(m, DemoMachine)
    return m


async def until_state(http: aiohttp.ClientSession, state: str) -> dict[str, Any]:
    async with asyncio.timeout(3):
        while True:
            async with http.get("/api/power") as resp:
                body: dict[str, Any] = await resp.json()
            if body["state"] == state:
                return body
            await asyncio.sleep(0.02)


async def test_status_refusals_and_press(server: Server) -> None:
    async with aiohttp.ClientSession(base_url=server.url, headers=server.basic()) as http:
        async with http.get("/api/power") as resp:
            body = await resp.json()
        # the HDD LED may still show the controller's first reports (activity): only its type
        assert isinstance(body["leds"].pop("hdd"), bool)
        assert body == {
            "state": "on",
            "leds": {"power": True},
            "busy": False,
            "action": None,
            "available": True,
            "reason": None,
        }
        async with http.post("/api/power", json={"action": "on"}) as resp:
            assert resp.status == 409
            assert (await resp.json())["error"] == "the power LED says the machine is already on"
        # a press while another is held is refused, not queued
        long = asyncio.create_task(
            http.post("/api/power", json={"action": "press", "duration_ms": 600})
        )
        await asyncio.sleep(0.2)
        async with http.get("/api/power") as resp:
            body = await resp.json()
            assert body["busy"] is True and body["action"] == "press"
        async with http.post("/api/power", json={"action": "reset"}) as resp:
            assert resp.status == 409
            assert "busy: press" in (await resp.json())["error"]
        async with await long as resp:
            assert resp.status == 200
        # held 600 ms < 4 s on a running board: a shutdown request, so it went off
        assert machine(server).power is False
        await until_state(http, "off")
        for bad in (
            {"action": "press"},
            {"action": "press", "duration_ms": 0},
            {"action": "press", "duration_ms": 999999},
            {"action": "press", "duration_ms": 1.5},
        ):
            async with http.post("/api/power", json=bad) as resp:
                assert resp.status == 400, bad
                assert "duration_ms" in (await resp.json())["error"]


async def test_websocket_power_events_follow_the_leds(server: Server) -> None:
    session = await server.login()
    async with session, session.ws_connect("/api/ws") as ws:
        async with session.post("/api/power", json={"action": "off"}) as resp:
            assert resp.status == 200
        seen: list[dict[str, Any]] = []
        async with asyncio.timeout(3):
            while not seen or seen[-1]["state"] != "off":
                msg = await ws.receive_json()
                if msg["type"] == "power":
                    seen.append(msg)
        assert seen[0]["busy"] is True and seen[0]["action"] == "off"
        assert seen[-1]["leds"] == {"power": False, "hdd": False}
        # the HDD LED pulses when the machine works: power on, press a key
        async with session.post("/api/power", json={"action": "on"}) as resp:
            assert resp.status == 200
        await asyncio.sleep(0.2)
        async with session.post("/api/hid/keys", json={"keys": "a"}) as resp:
            assert resp.status == 200
        hdd: list[bool] = []
        async with asyncio.timeout(3):
            while hdd[-2:] != [True, False]:
                msg = await ws.receive_json()
                if msg["type"] == "power":
                    hdd.append(msg["leds"]["hdd"])


async def test_cli_power(server: Server, tmp_path: Path) -> None:
    ipkvm = ipkvm_cli(server, tmp_path, "cli-power")

    await asyncio.sleep(0.3)  # past the HDD LED's activity from the first HID reports
    assert await ipkvm("power", "status") == (0, "on  power LED on, HDD LED off\n", "")
    code, _, err = await ipkvm("power", "on")
    assert code == 1 and "already on" in err
    code, _, _ = await ipkvm("power", "off")
    assert code == 0 and machine(server).power is False
    await asyncio.sleep(0.2)
    code, out, _ = await ipkvm("power", "status", "--json")
    assert code == 0 and '"state": "off"' in out
    code, _, err = await ipkvm("power", "press")
    assert code == 2 and "--ms" in err
    assert (await ipkvm("power", "on"))[0] == 0
    assert machine(server).power is True


async def test_off_hard_holds_the_button_past_the_override(tmp_path: Path) -> None:
    """The long press at its shortest allowed setting (4 s): the board is forced off during the
    hold, before the button is released."""
    srv, runner = await start_server(tmp_path, "[atx]\nlong_press_ms = 4000\n")
    try:
        async with aiohttp.ClientSession(base_url=srv.url, headers=srv.basic()) as http:
            start = asyncio.get_running_loop().time()
            async with http.post("/api/power", json={"action": "off_hard"}) as resp:
                assert resp.status == 200
            assert asyncio.get_running_loop().time() - start >= 4.0
            assert machine(srv).power is False
            sim = srv.appliance.target.power.sim  # type: ignore[attr-defined]
            assert sim.presses[-1][0] == "power" and sim.presses[-1][1] >= 4.0
    finally:
        await runner.cleanup()
