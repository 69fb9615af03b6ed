"""Wake-on-LAN: MAC notations, the exact magic packet on a UDP listener, the API and the CLI."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from appliance.config import ConfigError, build_config
from appliance.wol import BadMac, parse_mac, send_magic_packet
from tests.conftest import ipkvm_cli, start_server

MAC = bytes.fromhex("0a1b2c3d4e5f")
PACKET = b"\xff" * 6 + MAC * 16
ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "text", ["0a:1b:2c:3d:4e:5f", "0A-1B-2C-3D-4E-5F", "0a1b.2c3d.4e5f", "0A:1b:2C:3d:4E:5f"]
)
def test_mac_notations(text: str) -> None:
    assert parse_mac(text) == MAC


@pytest.mark.parametrize(
    "text",
    ["", "0a:1b:2c:3d:4e", "0a:1b:2c:3d:4e:5f:00", "0a:1b-2c:3d:4e:5f", "0a1b2c3d4e5f",
     "0a:1b:2c:3d:4e:5g", "0a:1b:2c:3d:4e:5f\n", "0a1b.2c3d.4e5f.0000"],
)  # fmt: skip
def test_bad_macs(text: str) -> None:
    with pytest.raises(BadMac, match="is not a MAC address"):
        parse_mac(text)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    yield sock
    sock.close()


def test_send_magic_packet_exact_bytes(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    assert send_magic_packet("0a-1b-2c-3d-4e-5f", "127.0.0.1", port) == PACKET
    data, _ = listener.recvfrom(1024)
    assert data == PACKET and len(data) == 102


def test_config_checks_the_mac() -> None:
    assert build_config({"wol": {"mac": "0a1b.2c3d.4e5f"}}).wol.mac == "0a1b.2c3d.4e5f"
    with pytest.raises(ConfigError, match=r"wol\.mac: 'nope' is not a MAC address"):
        build_config({"wol": {"mac": "nope"}})
    with pytest.raises(ConfigError, match=r"wol\.address: must be an IP address"):
        build_config({"wol": {"address": "broadcast"}})


async def test_api_and_cli_send_to_the_configured_or_given_mac(
    tmp_path: Path, listener: socket.socket
) -> None:
    port = listener.getsockname()[1]
    toml = f'[wol]\nmac = "0a:1b:2c:3d:4e:5f"\naddress = "127.0.0.1"\nport = {port}\n'
    srv, runner = await start_server(tmp_path, toml)
    loop = asyncio.get_running_loop()
    try:
        async with aiohttp.ClientSession(base_url=srv.url, headers=srv.basic()) as http:
            async with http.get("/api/wol") as resp:
                assert (await resp.json())["mac"] == "0a:1b:2c:3d:4e:5f"
            async with http.post("/api/wol") as resp:  # no body: the configured MAC
                assert resp.status == 200
                assert (await resp.json())["mac"] == "0a:1b:2c:3d:4e:5f"
            data, _ = await loop.run_in_executor(None, listener.recvfrom, 1024)
            assert data == PACKET
            async with http.post("/api/wol", json={"mac": "aabb.ccdd.eeff"}) as resp:
                assert resp.status == 200
            data, _ = await loop.run_in_executor(None, listener.recvfrom, 1024)
            assert data == b"\xff" * 6 + bytes.fromhex("aabbccddeeff") * 16
            async with http.post("/api/wol", json={"mac": "aa:bb"}) as resp:
                assert resp.status == 400
                assert "'aa:bb' is not a MAC address" in (await resp.json())["error"]
            async with http.post("/api/wol", json={"mac": 5}) as resp:
                assert resp.status == 400
        async with aiohttp.ClientSession(base_url=srv.url) as anon:
            async with anon.post("/api/wol") as resp:
                assert resp.status == 401
        code, out, err = await ipkvm_cli(srv, tmp_path, "cli-wol")("wol", "0A-1B-2C-3D-4E-5F")
        assert code == 0, err
        assert out == f"magic packet for 0a:1b:2c:3d:4e:5f sent to 127.0.0.1:{port}\n"
        data, _ = await loop.run_in_executor(None, listener.recvfrom, 1024)
        assert data == PACKET
    finally:
        await runner.cleanup()


async def test_without_a_configured_mac_the_body_must_name_one(tmp_path: Path) -> None:
    srv, runner = await start_server(tmp_path)
    try:
        async with aiohttp.ClientSession(base_url=srv.url, headers=srv.basic()) as http:
            async with http.get("/api/wol") as resp:
                assert (await resp.json())["mac"] is None
            async with http.post("/api/wol", json={}) as resp:
                assert resp.status == 400
                assert "no MAC address" in (await resp.json())["error"]
    finally:
        await runner.cleanup()
