"""/api/switch on a real server: the demo switch (a rack of demo machines) and an ezCoo simulated
on a pty for the error answers (409 busy/offline, 504 no answer)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp

from tests.conftest import start_server
from tests.switch_sim import PtySwitch, SwitchSim

DEMO = """
[switch]
driver = "demo"
count = 3
poll_interval = 0.2
[[switch.ports]]
name = "web-01"
[[switch.ports]]
name = "db-01"
layout = "de"
mouse = "relative"
"""


async def test_demo_switch_api(tmp_path: Path) -> None:
    srv, runner = await start_server(tmp_path, DEMO)
    try:
        rack = srv.appliance.target.rack  # type: ignore[attr-defined]
        async with await srv.login() as s:
            async with s.get("/api/switch") as r:
                body = await r.json()
            assert body["driver"] == "demo" and body["state"] == "online"
            assert body["active"] == 1
            assert [p["name"] for p in body["ports"]] == ["web-01", "db-01", "port 3"]

            async with s.post("/api/switch/select", json={"port": "db-01"}) as r:
                assert r.status == 200, await r.text()
                assert (await r.json())["active"] == 2
            assert rack.active == 1  # 0-based: the second machine is on the console
            async with s.get("/api/state") as r:
                state = await r.json()
            assert state["switch"]["active"] == 2
            assert state["hid"]["layout"] == "de" and state["hid"]["mouse_mode"] == "relative"

            # the HID reports reach the active machine only
            async with s.post("/api/hid/type", json={"text": "xy"}) as r:
                assert r.status in (200, 202), await r.text()
            for _ in range(100):
                if rack.machines[1].state()["text"].endswith("xy"):
                    break
                await asyncio.sleep(0.05)
            assert rack.machines[1].state()["text"].endswith("xy")
            assert not rack.machines[0].state()["text"].endswith("xy")

            for bad, status in (({"port": 9}, 400), ({"port": "nope"}, 400), ({}, 400)):
                async with s.post("/api/switch/select", json=bad) as r:
                    assert r.status == status
                    assert "error" in await r.json()

            async with s.patch("/api/switch/ports/3", json={"name": "mail-01"}) as r:
                assert r.status == 200 and (await r.json())["name"] == "mail-01"
            assert rack.machines[2].name == "mail-01"  # its screen shows the new name
            async with s.patch("/api/switch/ports/3", json={"name": "DB-01"}) as r:
                assert r.status == 400 and "already names port 2" in (await r.json())["error"]
            async with s.patch("/api/switch/ports/3", json={"colour": "red"}) as r:
                assert r.status == 400

            # the front panel: polling notices, a WebSocket client gets a switch event
            async with s.ws_connect("/api/ws") as ws:
                rack.press_button(3)
                async with asyncio.timeout(5):
                    while True:
                        msg = json.loads((await ws.receive()).data)
                        if msg.get("type") == "switch" and msg["active"] == 3:
                            break
    finally:
        await runner.cleanup()
    saved = json.loads((tmp_path / "state" / "switch.json").read_text())
    assert saved["ports"]["3"] == {"name": "mail-01"}
    # a restart keeps the runtime name (a fresh server whose state dir holds the saved file)
    again = tmp_path / "again"
    (again / "state").mkdir(parents=True)
    (again / "state" / "switch.json").write_text(json.dumps(saved))
    srv, runner = await start_server(again, DEMO)
    try:
        async with await srv.login() as s, s.get("/api/switch") as r:
            assert (await r.json())["ports"][2]["name"] == "mail-01"
    finally:
        await runner.cleanup()


async def test_no_switch_no_routes(tmp_path: Path) -> None:
    srv, runner = await start_server(tmp_path)
    try:
        async with await srv.login() as s:
            async with s.get("/api/switch") as r:
                assert r.status == 404
            async with s.get("/api/state") as r:
                assert (await r.json())["switch"] is None
    finally:
        await runner.cleanup()


async def test_busy_offline_and_timeout_answers(tmp_path: Path) -> None:
    sim = SwitchSim("ezcoo", switch_delay=0.1)
    pty = PtySwitch(sim).start()
    toml = f"""
[switch]
driver = "ezcoo"
device = "{pty.path}"
settle = 0.5
reply_timeout = 0.3
poll_interval = 30
"""
    srv, runner = await start_server(tmp_path, toml)
    try:
        async with await srv.login() as s:
            first = asyncio.create_task(s.post("/api/switch/select", json={"port": 2}))
            await asyncio.sleep(0.2)
            async with s.post("/api/switch/select", json={"port": 3}) as r:
                assert r.status == 409
                assert "in flight" in (await r.json())["error"]
            async with await first as r:
                assert r.status == 200
            sim.silent = True
            async with s.post("/api/switch/select", json={"port": 3}) as r:
                assert r.status == 504, await r.text()
                assert "no reply" in (await r.json())["error"]
            async with s.get("/api/switch") as r:
                assert (await r.json())["state"] == "offline"
            async with s.post("/api/switch/select", json={"port": 3}) as r:
                assert r.status == 409
                assert "offline" in (await r.json())["error"]
    except aiohttp.ClientError:
        raise
    finally:
        await runner.cleanup()
        pty.close()


async def test_power_follows_the_machine_on_the_console_port(tmp_path: Path) -> None:
    """With a demo switch the power button and LEDs are those of the machine on the console port:
    port 1 powered off stays off, port 2 shows on, and powering port 2 off leaves port 1 alone."""
    from tests.test_power_api import until_state

    srv, runner = await start_server(tmp_path, DEMO)
    try:
        async with aiohttp.ClientSession(base_url=srv.url, headers=srv.basic()) as http:
            async with http.post("/api/power", json={"action": "off"}) as resp:
                assert resp.status == 200, await resp.text()
            await until_state(http, "off")
            async with http.post("/api/switch/select", json={"port": 2}) as resp:
                assert resp.status == 200, await resp.text()
            await until_state(http, "on")  # the LED now shows port 2's machine
            async with http.post("/api/power", json={"action": "off"}) as resp:
                assert resp.status == 200, await resp.text()
            await until_state(http, "off")
            async with http.post("/api/switch/select", json={"port": 3}) as resp:
                assert resp.status == 200
            await until_state(http, "on")
            rack = srv.appliance.target.rack  # type: ignore[attr-defined]
            assert [m.power for m in rack.machines] == [False, False, True]
    finally:
        await runner.cleanup()
