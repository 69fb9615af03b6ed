"""Per-port settings of a KVM switch made real: Wake-on-LAN wakes the active port's machine (or a
named one), the power facet follows the active port's ATX wiring, and switching never splits a
press between machines. A real server on 127.0.0.1, magic packets caught by a UDP listener on
loopback, each port's ATX wiring on its own simulated board (``chip = "sim"``)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from appliance.atx.sim import SimBoard, SimLines
from appliance.switch.power import PortPower
from tests.conftest import Server, ipkvm_cli, start_server, until

ROOT = Path(__file__).resolve().parent.parent
MAC_A = "52:54:00:00:00:0a"
MAC_B = "52:54:00:00:00:0b"


def packet(mac: str) -> bytes:
    return b"\xff" * 6 + bytes.fromhex(mac.replace(":", "")) * 16


def config(udp_port: int) -> str:
    # A hardware target borrowing the demo's screen and keyboard; a hotkey switch (it cannot be
    # asked, so the active port is unknown until the first select). Ports: "a" on [atx]'s own
    # lines, "b" on a wiring of its own, "c" with none (and no MAC), "d" on a chip that is
    # missing.
    return f"""
[target]
kind = "hardware"
[video]
source = "demo"
[hid]
output = "demo"
[atx]
chip = "sim"
press_ms = 100
[atx.wirings.b-lines]
chip = "sim"
power_line = 0
power_led_line = 1
power_active_low = true
[atx.wirings.broken]
chip = "/nonexistent/gpiochip9"
power_line = 3
[wol]
address = "127.0.0.1"
port = {udp_port}
[switch]
driver = "hotkey"
hotkey_gap_ms = 40
[[switch.ports]]
name = "a"
wol_mac = "{MAC_A}"
atx = "default"
[[switch.ports]]
name = "b"
wol_mac = "{MAC_B}"
atx = "b-lines"
[[switch.ports]]
name = "c"
[[switch.ports]]
name = "d"
atx = "broken"
"""


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    yield sock
    sock.close()


@pytest.fixture
async def rack(tmp_path: Path, listener: socket.socket) -> AsyncIterator[Server]:
    srv, runner = await start_server(tmp_path, config(listener.getsockname()[1]))
    try:
        yield srv
    finally:
        await runner.cleanup()


def lines(srv: Server, wiring: str) -> SimLines:
    power = srv.appliance.target.power
    assert isinstance(power, PortPower)
    sim = power.wirings[wiring].lines
    assert isinstance(sim, SimLines)
    return sim


def board(srv: Server, wiring: str) -> SimBoard:
    b = lines(srv, wiring).board
    assert isinstance(b, SimBoard)
    return b


async def received(sock: socket.socket) -> bytes:
    data, _ = await asyncio.get_running_loop().run_in_executor(None, sock.recvfrom, 1024)
    return data


async def select(http: aiohttp.ClientSession, port: int | str) -> None:
    async with http.post("/api/switch/select", json={"port": port}) as resp:
        assert resp.status == 200, await resp.text()


async def call(
    http: aiohttp.ClientSession, method: str, path: str, body: Any = None
) -> tuple[int, dict[str, Any]]:
    async with http.request(method, path, json=body) as resp:
        data: dict[str, Any] = await resp.json()
        return resp.status, data


async def test_wake_on_lan_follows_the_active_port(rack: Server, listener: socket.socket) -> None:
    async with aiohttp.ClientSession(base_url=rack.url, headers=rack.basic()) as http:
        # Nothing selected yet (a hotkey switch cannot be asked): no guessing whom to wake.
        status, body = await call(http, "GET", "/api/wol")
        assert body["mac"] is None and body["switch_port"] is None
        status, body = await call(http, "POST", "/api/wol", {})
        assert status == 400 and "active port is not known" in body["error"]
        # A port named explicitly, by name or number, whatever is active.
        status, body = await call(http, "POST", "/api/wol", {"switch_port": "b"})
        assert status == 200 and body["mac"] == MAC_B and body["switch_port"] == 2
        assert await received(listener) == packet(MAC_B)
        status, body = await call(http, "POST", "/api/wol", {"switch_port": 1})
        assert status == 200 and await received(listener) == packet(MAC_A)

        await select(http, "a")
        status, body = await call(http, "GET", "/api/wol")
        assert (body["mac"], body["switch_port"]) == (MAC_A, 1)
        status, body = await call(http, "POST", "/api/wol")  # no body: the active port's MAC
        assert status == 200 and body["switch_port"] == 1
        assert await received(listener) == packet(MAC_A)

        await select(http, 2)
        status, body = await call(http, "POST", "/api/wol", {})
        assert status == 200 and await received(listener) == packet(MAC_B)

        # A port without a MAC: refused with the reason, never another port's MAC or wol.mac.
        await select(http, "c")
        status, body = await call(http, "GET", "/api/wol")
        assert body["mac"] is None and body["switch_port"] == 3
        assert "port 3 (c) has no Wake-on-LAN MAC" in body["reason"]
        status, body = await call(http, "POST", "/api/wol", {})
        assert status == 400 and "port 3 (c) has no Wake-on-LAN MAC" in body["error"]
        # ... until one is set on it.
        status, _ = await call(
            http, "PATCH", "/api/switch/ports/3", {"wol_mac": "52-54-00-00-00-0C"}
        )
        assert status == 200
        status, body = await call(http, "POST", "/api/wol", {})
        assert status == 200 and await received(listener) == packet("52:54:00:00:00:0c")

        for bad, words in (
            ({"switch_port": "zz"}, "no port named 'zz'"),
            ({"switch_port": 9}, "no port 9"),
            ({"switch_port": True}, "switch_port"),
            ({"switch_port": 1, "mac": MAC_A}, "not both"),
        ):
            status, body = await call(http, "POST", "/api/wol", bad)
            assert status == 400 and words in body["error"], (bad, body)

    # The CLI: a port by name, and no argument (the active port, now "c").
    ipkvm = ipkvm_cli(rack, rack.state_dir, "cli-wol")
    for args, mac, words in (
        (["b"], MAC_B, "(switch port 2)"),
        ([], "52:54:00:00:00:0c", "(switch port 3)"),
    ):
        code, out, err = await ipkvm("wol", *args)
        assert code == 0, err
        assert f"magic packet for {mac} {words} sent to 127.0.0.1:" in out
        assert await received(listener) == packet(mac)


async def test_power_follows_the_active_ports_wiring(rack: Server) -> None:
    a, b = lines(rack, "default"), lines(rack, "b-lines")
    async with aiohttp.ClientSession(base_url=rack.url, headers=rack.basic()) as http:
        status, body = await call(http, "GET", "/api/power")
        assert body["available"] is False and "active port is not known" in body["reason"]
        status, body = await call(http, "POST", "/api/power", {"action": "on"})
        assert status == 409 and "active port is not known" in body["error"]

        await select(http, "a")
        status, body = await call(http, "POST", "/api/power", {"action": "on"})
        assert status == 200 and body["available"] is True
        assert board(rack, "default").power is True and board(rack, "b-lines").power is False
        assert [line for line, _ in a.presses] == ["power"] and b.presses == []
        assert 0.09 <= a.presses[0][1] < 0.5  # press_ms = 100

        await select(http, "b")
        status, body = await call(http, "GET", "/api/power")
        assert body["state"] == "off" and body["available"] is True  # machine b's own LED
        status, body = await call(http, "POST", "/api/power", {"action": "on"})
        assert status == 200
        assert board(rack, "b-lines").power is True and len(a.presses) == 1
        assert [line for line, _ in b.presses] == ["power"]

        # A port without wiring is unavailable with the reason, not machine b's lines.
        await select(http, "c")
        status, body = await call(http, "GET", "/api/power")
        assert body["available"] is False and body["state"] == "unknown"
        assert "port 3 (c) has no ATX wiring" in body["reason"]
        status, body = await call(http, "POST", "/api/power", {"action": "off"})
        assert status == 409 and "port 3 (c) has no ATX wiring" in body["error"]
        assert len(a.presses) == len(b.presses) == 1
        code, out, err = await ipkvm_cli(rack, rack.state_dir, "cli-power")("power", "status")
        assert code == 0, err
        assert out.startswith("unavailable: port 3 (c) has no ATX wiring"), out
        # A wiring whose chip is missing: that port is unavailable, the service runs on.
        await select(http, "d")
        status, body = await call(http, "GET", "/api/power")
        assert body["available"] is False and "cannot claim the ATX lines" in body["reason"]

        # Wiring a port through the API applies at once while it is active.
        await select(http, "c")
        status, _ = await call(http, "PATCH", "/api/switch/ports/3", {"atx": "b-lines"})
        assert status == 200
        status, body = await call(http, "GET", "/api/power")
        assert body["available"] is True and body["state"] == "on"
        status, body = await call(http, "PATCH", "/api/switch/ports/3", {"atx": "nope"})
        assert status == 400 and "no ATX wiring named 'nope'" in body["error"]


async def test_no_switching_while_a_button_is_held_and_no_press_while_switching(
    rack: Server,
) -> None:
    a = lines(rack, "default")
    appliance = rack.appliance
    switch = appliance.switch
    assert switch is not None
    async with aiohttp.ClientSession(base_url=rack.url, headers=rack.basic()) as http:
        await select(http, "a")
        held = asyncio.create_task(
            call(http, "POST", "/api/power", {"action": "press", "duration_ms": 500})
        )
        await until(appliance.target.power.subscribe, lambda: "power" in a.pressed, "pressed")
        status, body = await call(http, "POST", "/api/switch/select", {"port": "b"})
        assert status == 409 and "power action (press) is in progress" in body["error"]
        assert switch.active == 1
        status, _ = await held
        assert status == 200 and a.presses[-1][0] == "power" and a.presses[-1][1] >= 0.45
        await select(http, "b")  # released: switching works again
        assert switch.active == 2

        # The other way round: a power action while the switch is changing ports is refused.
        selecting = asyncio.create_task(call(http, "POST", "/api/switch/select", {"port": "a"}))
        await until(lambda cb: appliance.events.add(cb), lambda: switch.selecting == 1, "selecting")
        status, body = await call(http, "POST", "/api/power", {"action": "on"})
        assert status == 409 and "changing to port 1" in body["error"]
        status, _ = await selecting
        assert status == 200 and len(a.presses) == 1


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (
            {"atx": {"wirings": {"x": {"chip": "/dev/gpiochip1"}}}},
            "atx.wirings.x.power_line: missing",
        ),
        (
            {"atx": {"wirings": {"x": {"chip": "c", "power_line": 1, "led": 2}}}},
            "x.led: unknown key",
        ),
        ({"atx": {"wirings": {"default": {"chip": "c", "power_line": 1}}}}, "[atx]'s own lines"),
        ({"atx": {"wirings": {"a b": {"chip": "c", "power_line": 1}}}}, "must be a simple name"),
        (
            {"atx": {"wirings": {"x": {"chip": "c", "power_line": 1, "power_led_line": 1}}}},
            "line 1 of c is already x.power_line",
        ),
        (
            {
                "atx": {"wirings": {"x": {"chip": "c", "power_line": 1}}},
                "switch": {"driver": "hotkey", "ports": [{"atx": "y"}]},
            },
            "switch.ports[1].atx: no ATX wiring named 'y' (wirings: 'x'",
        ),
        (
            {"switch": {"driver": "hotkey", "ports": [{"atx": "default"}]}},
            "no ATX wiring named 'default' (wirings: none",
        ),
    ],
)
def test_wiring_config_is_checked(raw: dict[str, Any], words: str) -> None:
    from appliance.config import ConfigError, build_config

    with pytest.raises(ConfigError) as caught:
        build_config(raw)
    assert words in str(caught.value)


def test_wirings_are_read_with_atx_press_times() -> None:
    from appliance.atx.wiring import named_wirings
    from appliance.config import build_config

    config = build_config(
        {
            "atx": {
                "chip": "/dev/gpiochip0",
                "press_ms": 120,
                "wirings": {"b": {"chip": "/dev/gpiochip1", "power_line": 4, "hdd_led_line": 5,
                                  "hdd_led_active_low": True}},
            }
        }
    )  # fmt: skip
    wirings = named_wirings(config.atx)
    assert set(wirings) == {"default", "b"}
    b = wirings["b"]
    assert (b.chip, b.power, b.reset, b.power_led, b.hdd_led) == (
        "/dev/gpiochip1",
        4,
        None,
        None,
        5,
    )
    assert b.active_low == frozenset({"hdd_led"}) and b.times.short == 0.12
    assert wirings["default"].power == 17  # [atx]'s own lines keep their defaults
