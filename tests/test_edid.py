"""EDID building, parsing and checking (capture/edid.py); the ioctls are tested on vivid in the
system test (tests/system/guest_20_video.py)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from capture import edid
from tests.conftest import Server


def test_default_offers_1080p_60_50_30_and_720p_rgb_only() -> None:
    info = edid.parse(edid.DEFAULT)
    assert len(edid.DEFAULT) == 256
    assert info.timings[0] == "1920x1080p60"  # the preferred mode
    assert set(info.vics) == {16, 31, 34, 4, 19}
    assert {"1920x1080p50", "1920x1080p30", "1280x720p60"} <= set(info.timings)
    assert not info.ycbcr444 and not info.ycbcr422
    assert info.hdmi and info.name == "ipkvm" and info.vendor == "IPK"


def test_every_block_sums_to_zero() -> None:
    for off in (0, 128):
        assert sum(edid.DEFAULT[off : off + 128]) % 256 == 0
    assert edid.checksum(edid.DEFAULT[:128]) == edid.DEFAULT[127]


def test_a_wrong_checksum_header_or_length_is_refused_with_the_reason() -> None:
    broken = bytearray(edid.DEFAULT)
    broken[60] ^= 0x01
    with pytest.raises(edid.EdidError, match="block 0: checksum"):
        edid.parse(bytes(broken))
    with pytest.raises(edid.EdidError, match="header"):
        edid.parse(b"\x01" + edid.DEFAULT[1:])
    with pytest.raises(edid.EdidError, match="multiple of 128"):
        edid.parse(edid.DEFAULT[:200])
    with pytest.raises(edid.EdidError, match="announces 1 extensions, 0 follow"):
        edid.parse(edid.DEFAULT[:128])


def test_detailed_timings_round_trip() -> None:
    for timing in edid.CEA_MODES.values():
        assert edid.decode_dtd(edid.encode_dtd(timing)) == timing
    assert str(edid.CEA_MODES[19]) == "1280x720p50"


def test_ycbcr_flags_and_mode_choice() -> None:
    custom = edid.build((4, 16), ycbcr444=True, name="my receiver")
    info = edid.parse(custom)
    assert info.timings[0] == "1280x720p60" and info.ycbcr444 and not info.ycbcr422
    assert info.name == "my receiver"
    with pytest.raises(edid.EdidError, match="VICs"):
        edid.build((99,))


def test_load_takes_binary_or_hex_text() -> None:
    text = " ".join(f"{b:02x}" for b in edid.DEFAULT)
    assert edid.load(text.encode()) == edid.DEFAULT
    assert edid.load(edid.DEFAULT) == edid.DEFAULT
    with pytest.raises(edid.EdidError, match="hex"):
        edid.load(b"zz")


@pytest.mark.skipif(shutil.which("edid-decode") is None, reason="edid-decode not installed")
def test_an_independent_decoder_finds_the_default_conformant(tmp_path: Path) -> None:
    path = tmp_path / "edid.bin"
    path.write_bytes(edid.DEFAULT)
    result = subprocess.run(
        ["edid-decode", "--check", str(path)], capture_output=True, text=True, timeout=30
    )
    assert "EDID conformity: PASS" in result.stdout, result.stdout[-2000:]
    assert "VIC  31:  1920x1080   50.000000 Hz" in result.stdout


async def test_api_says_why_a_source_without_edid_cannot_have_one(server: Server) -> None:
    async with aiohttp.ClientSession(headers=server.basic()) as http:
        async with http.get(f"{server.url}/api/video/edid") as resp:
            assert resp.status == 409
            assert "has no EDID" in (await resp.json())["error"]
        async with http.put(f"{server.url}/api/video/edid", json={"default": True}) as resp:
            assert resp.status == 409
        broken = bytearray(edid.DEFAULT)
        broken[127] ^= 0xFF
        async with http.put(f"{server.url}/api/video/edid", json={"edid": broken.hex()}) as resp:
            assert resp.status == 400
            assert "block 0: checksum" in (await resp.json())["error"]
        async with http.put(f"{server.url}/api/video/edid", json={}) as resp:
            assert resp.status == 400


async def test_cli_checks_the_file_before_sending_and_reports_the_server_refusal(
    server: Server, tmp_path: Path
) -> None:
    from appliance.auth import AuthStore

    _, token = AuthStore(server.state_dir).create_token("edid-test")
    env = {k: v for k, v in os.environ.items() if not k.startswith("IPKVM_")}
    env.update(IPKVM_URL=server.url, IPKVM_TOKEN=token, HOME=str(tmp_path))
    bad = tmp_path / "bad.bin"
    bad.write_bytes(edid.DEFAULT[:100])

    async def ipkvm(*args: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "appliance", "edid", *args, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        async with asyncio.timeout(60):
            out, err = await proc.communicate()
        return proc.returncode or 0, out.decode(), err.decode()

    code, _, err = await ipkvm("set", str(bad))
    assert code == 1 and "not a valid EDID: an EDID is a multiple of 128 bytes" in err
    code, _, err = await ipkvm("show")
    assert code == 1 and "has no EDID" in err


def test_cli_describes_an_edid() -> None:
    from appliance.cli.edid import describe

    text = describe(
        {"edid": edid.DEFAULT.hex(), "info": edid.parse(edid.DEFAULT).as_dict(), "configured": None}
    )
    assert "256 bytes" in text and "1920x1080p60" in text and "RGB only" in text
    assert describe({"edid": "", "info": None}).startswith("no EDID set")


async def test_v4l2_source_on_a_file_that_is_no_receiver_says_it_has_no_edid(
    tmp_path: Path,
) -> None:
    from capture.source import EdidUnsupported
    from capture.v4l2 import V4l2Source

    not_a_device = tmp_path / "video7"
    not_a_device.write_bytes(b"")
    source = V4l2Source(str(not_a_device), edid=edid.DEFAULT)
    with pytest.raises(EdidUnsupported, match="has no EDID"):
        await source.read_edid()
    with pytest.raises(EdidUnsupported, match="has no EDID"):
        await source.write_edid(edid.DEFAULT)
    assert source.edid_state()["supported"] is False
    missing = V4l2Source(str(tmp_path / "video8"))
    with pytest.raises(EdidUnsupported, match="cannot open"):
        await missing.read_edid()


async def test_an_edid_request_to_a_running_source_without_device_is_answered(
    tmp_path: Path,
) -> None:
    """The supervisor thread serves EDID requests even while it waits for the device to appear."""
    from capture.hub import FrameHub
    from capture.source import EdidUnsupported
    from capture.v4l2 import V4l2Source

    source = V4l2Source(str(tmp_path / "video9"), retry_interval=0.2)
    await source.start(FrameHub())
    try:
        async with asyncio.timeout(5):
            with pytest.raises(EdidUnsupported, match="cannot open"):
                await source.write_edid(edid.DEFAULT)
    finally:
        await source.close()
