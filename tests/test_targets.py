"""A target is a set of facets: the API offers what the target has and says what it lacks."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from tests.conftest import Server, start_server


async def test_demo_target_power_facet_switches_the_machine(server: Server) -> None:
    async with aiohttp.ClientSession(base_url=server.url, headers=server.basic()) as http:
        async with http.get("/api/state") as resp:
            target = (await resp.json())["target"]
        assert target == {
            "kind": "demo",
            "power": "on",
            "facets": {"video": True, "hid": True, "power": True, "media": True},
        }
        async with http.post("/api/power", json={"action": "off"}) as resp:
            assert resp.status == 200
            assert (await resp.json())["busy"] is False
        async with http.get("/api/demo/state") as resp:
            assert (await resp.json())["power"] == "off"
        # the power LED is debounced: the state follows it within atx.debounce_ms
        await asyncio.sleep(0.3)
        async with http.get("/api/state") as resp:
            assert (await resp.json())["target"]["power"] == "off"
        async with http.post("/api/power", json={"action": "reset"}) as resp:
            assert resp.status == 409  # a board that is off ignores reset: say so
            assert "off" in (await resp.json())["error"]
        async with http.post("/api/power", json={"action": "on"}) as resp:
            assert resp.status == 200
        async with http.get("/api/demo/state") as resp:
            assert (await resp.json())["power"] == "on"
        async with http.post("/api/power", json={"action": "explode"}) as resp:
            assert resp.status == 400
            assert "off_hard" in (await resp.json())["error"]


async def test_hardware_target_without_power_has_no_power_route(tmp_path: Path) -> None:
    """A bare hardware target (here borrowing the demo screen while its capture card is missing,
    with OTG device files that do not exist) lists power as absent and serves no /api/power."""
    toml = (
        '[target]\nkind = "hardware"\n[video]\nsource = "demo"\n'
        f'[hid.otg]\nkeyboard = "{tmp_path}/kbd"\nmouse = "{tmp_path}/abs"\n'
        f'mouse_rel = "{tmp_path}/rel"\n'
    )
    srv, runner = await start_server(tmp_path, toml)
    try:
        async with aiohttp.ClientSession(base_url=srv.url, headers=srv.basic()) as http:
            async with http.get("/api/state") as resp:
                state = await resp.json()
            assert state["target"]["kind"] == "hardware"
            assert state["target"]["facets"]["power"] is False
            assert state["target"]["power"] == "unknown"
            assert state["hid"]["output"] == "otg"
            async with http.post("/api/power", json={"action": "on"}) as resp:
                assert resp.status in (404, 405)
            async with http.get("/api/demo/state") as resp:
                assert resp.status == 404
    finally:
        await runner.cleanup()


def test_a_hardware_appliance_does_not_load_the_demo_machine(tmp_path: Path) -> None:
    """The demo's menus and drawing are for the demo target only: building the app for a hardware
    target (V4L2 + OTG) must not import them (start-up time and memory on a 512 MB board)."""
    import subprocess
    import sys

    code = """
import sys
from appliance.api.app import create_app
from appliance.auth import AuthStore
from appliance.config import build_config
from appliance.runtime import build_appliance
config = build_config({"target": {"kind": "hardware"}, "server": {"state_dir": sys.argv[1]}})
create_app(build_appliance(config), AuthStore(config.server.state_dir))
print(sorted(m for m in sys.modules if m.startswith("appliance.targets.demo.")))
"""
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "state")],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    assert out.strip() == "[]", out
