"""The Python client and the script/screen routes against a real appliance with the demo target:
what the demo machine shows and reports is what a user would see on a real screen."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from typing import Any

import aiohttp
import cv2
import numpy as np
import pytest

from appliance.client import IpkvmClient, IpkvmError, SyncClient, WaitTimeout, basic_header
from appliance.scripting import screen
from appliance.targets.demo.machine import DemoMachine
from tests.conftest import Server


def demo(server: Server) -> DemoMachine:
    machine = server.appliance.target.machine  # type: ignore[attr-defined]
    assert isinstance(machine, DemoMachine)
    return machine


@pytest.fixture
async def kvm(server: Server) -> Any:
    async with IpkvmClient(server.url, password=server.password) as client:
        yield client


async def demo_state(kvm: IpkvmClient) -> dict[str, Any]:
    state: dict[str, Any] = await kvm.request("GET", "/api/demo/state")
    return state


async def screen_image(kvm: IpkvmClient, after: int = 0) -> Any:
    """The screen as the API shows it (a PNG snapshot, decoded)."""
    png = await kvm.snapshot("png")
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def cut(image: Any, rect: tuple[int, int, int, int]) -> bytes:
    x, y, w, h = rect
    ok, buf = cv2.imencode(".png", image[y : y + h, x : x + w])
    assert ok
    return bytes(buf.tobytes())


async def until(server: Server, condition: Callable[[dict[str, Any]], bool]) -> None:
    """Wait until the demo machine's state satisfies *condition*, re-checking on each frame."""
    hub = server.appliance.hub  # type: ignore[attr-defined]
    seq = 0
    async with asyncio.timeout(5):
        while not condition(demo(server).state()):
            seq = (await hub.next_frame(seq)).seq


async def until_screen_shows(server: Server, kvm: IpkvmClient, tab: str) -> Any:
    """A snapshot taken once the demo's frame shows *tab* (two frames after the state changed)."""
    hub = server.appliance.hub  # type: ignore[attr-defined]
    await until(server, lambda s: s["tab"] == tab)
    async with asyncio.timeout(5):
        seq = (await hub.next_frame(0)).seq
        await hub.next_frame(seq)
        await hub.next_frame(seq + 1)
    return await screen_image(kvm)


# ---------------------------------------------------------------------------- basics
async def test_state_and_errors_carry_the_server_message(server: Server, kvm: IpkvmClient) -> None:
    state = await kvm.state()
    assert state["target"]["kind"] == "demo"
    with pytest.raises(IpkvmError) as info:
        await kvm.keys("ctrl+nosuchkey")
    assert info.value.status == 400
    assert info.value.message == "unknown key name 'nosuchkey'"
    async with IpkvmClient(server.url, password="wrong") as bad:
        with pytest.raises(IpkvmError) as info:
            await bad.state()
    assert info.value.status == 401
    assert info.value.message  # the server's own words, not "HTTP 401"
    assert not info.value.message.startswith("HTTP")


async def test_unreachable_appliance_is_status_0() -> None:
    from tests.conftest import free_port

    async with IpkvmClient(f"http://127.0.0.1:{free_port()}", token="x") as client:
        with pytest.raises(IpkvmError) as info:
            await client.state()
    assert info.value.status == 0
    assert "cannot reach" in info.value.message


async def test_type_with_progress_reaches_the_demo(kvm: IpkvmClient) -> None:
    seen: list[tuple[int, int]] = []
    result = await kvm.type_text(
        "Rack 42/B", pacing_ms=2, progress=lambda t, n: seen.append((t, n))
    )
    assert result["chars"] == 9 and result["untypable"] == []
    assert (await demo_state(kvm))["text"] == "Rack 42/B"
    assert seen[-1] == (9, 9)
    assert [t for t, _ in seen] == sorted({t for t, _ in seen})  # increasing, no repeats


async def test_keys_mouse_and_release(server: Server, kvm: IpkvmClient) -> None:
    await kvm.keys("right right")
    assert (await demo_state(kvm))["tab"] == "Boot"
    await kvm.mouse_abs(0.25, 0.5)
    state = await demo_state(kvm)
    assert abs(state["pointer"]["x"] - 320) <= 1 and abs(state["pointer"]["y"] - 360) <= 1
    await kvm.key("ShiftLeft", True)
    assert (await kvm.state())["hid"]["keys_held"] == ["ShiftLeft"]
    await kvm.release_all()
    assert (await kvm.state())["hid"]["keys_held"] == []


async def test_sync_client(server: Server) -> None:
    def work() -> tuple[dict[str, Any], bytes]:
        with SyncClient(server.url, password=server.password) as kvm:
            kvm.type_text("sync")
            return kvm.request("GET", "/api/demo/state"), kvm.snapshot("jpeg", width=640)

    state, jpeg = await asyncio.to_thread(work)
    assert state["text"] == "sync"
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (360, 640, 3)


# ---------------------------------------------------------------------------- screen waits
async def test_wait_for_image_found_and_timeout(server: Server, kvm: IpkvmClient) -> None:
    machine = demo(server)
    main = await screen_image(kvm)
    tab = cut(main, machine.tab_rect("Main"))
    found = await kvm.wait_for_image(tab, timeout=5)
    x, y, w, h = machine.tab_rect("Main")
    assert (found["x"], found["y"], found["w"], found["h"]) == (x, y, w, h)
    assert found["score"] > 0.99
    # The selected "Boot" tab is not on screen: 408 with the best score, after the timeout.
    await kvm.keys("right right")
    boot_screen = await until_screen_shows(server, kvm, "Boot")
    boot_panel = cut(boot_screen, machine.item_rect("Boot", "Boot Mode"))
    await kvm.keys("left left")
    await until_screen_shows(server, kvm, "Main")  # no stale Boot frame may be matched
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(WaitTimeout) as info:
        await kvm.wait_for_image(boot_panel, timeout=0.5)
    assert loop.time() - start >= 0.5
    assert info.value.status == 408
    assert "timed out" in info.value.message
    assert info.value.best_score is not None and info.value.best_score < 0.9


async def test_wait_for_image_bad_input(kvm: IpkvmClient) -> None:
    with pytest.raises(IpkvmError) as info:
        await kvm.request("POST", "/api/screen/wait", {"image": "%%%", "timeout": 1})
    assert (info.value.status, info.value.message) == (400, "field 'image' is not valid base64")
    with pytest.raises(IpkvmError, match="exactly one"):
        await kvm.request("POST", "/api/screen/wait", {"timeout": 1})
    with pytest.raises(IpkvmError, match="at most 300"):
        await kvm.request("POST", "/api/screen/wait", {"text": "x", "timeout": 301})
    noise = np.random.default_rng(1).integers(0, 255, (20, 20, 3), dtype=np.uint8)
    _, png = cv2.imencode(".png", noise)
    with pytest.raises(IpkvmError, match="outside the 1280x720 picture") as info:
        await kvm.wait_for_image(png.tobytes(), timeout=1, region=(1200, 700, 100, 100))
    assert info.value.status == 400


@pytest.mark.skipif(
    screen.tesseract_path() is None,
    reason="tesseract is not installed (apt-get install tesseract-ocr; make test does it)",
)
async def test_wait_for_text_reads_the_title(kvm: IpkvmClient) -> None:
    found = await kvm.wait_for_text("ipkvm Demo BIOS Setup Utility", timeout=60)
    # The title is centred in the top bar of the 1280x720 screen.
    assert found["y"] < 30
    assert 400 < found["x"] < 640 < found["x"] + found["w"] < 880


@pytest.mark.skipif(
    screen.tesseract_path() is None,
    reason="tesseract is not installed (apt-get install tesseract-ocr; make test does it)",
)
async def test_script_waitfor_text(server: Server, kvm: IpkvmClient) -> None:
    # The help line "Firmware boot mode." is only on screen once the Boot tab is shown.
    result = await kvm.run_script(
        "WAITFOR_TEXT ipkvm Demo BIOS Setup Utility 60\n"
        "RIGHT\n"
        "RIGHT\n"
        "WAITFOR_TEXT Firmware boot mode 60\n"
        "ENTER\n"
    )
    assert result["commands"] == 5
    state = await demo_state(kvm)
    assert (state["tab"], state["settings"]["Boot/Boot Mode"]) == ("Boot", "Legacy")


async def test_wait_for_text_without_tesseract_is_501(
    kvm: IpkvmClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")  # the server runs in this process
    with pytest.raises(IpkvmError) as info:
        await kvm.wait_for_text("anything", timeout=1)
    assert info.value.status == 501
    assert info.value.message == "text matching needs tesseract (apt-get install tesseract-ocr)"
    with pytest.raises(IpkvmError) as info:
        await kvm.run_script("ENTER\nWAITFOR_TEXT Setup\n")
    assert (info.value.status, info.value.body["line"]) == (501, 2)


# ---------------------------------------------------------------------------- scripts
async def test_script_navigates_waits_and_types(server: Server, kvm: IpkvmClient) -> None:
    machine = demo(server)
    # A template of the Boot tab's first line, cut from a snapshot of that screen.
    await kvm.keys("right right")
    boot_screen = await until_screen_shows(server, kvm, "Boot")
    template = cut(boot_screen, machine.item_rect("Boot", "Boot Mode"))
    await kvm.keys("left left")
    await until_screen_shows(server, kvm, "Main")

    events: list[dict[str, Any]] = []
    finished = asyncio.Event()
    session = aiohttp.ClientSession(headers={"Authorization": basic_header(server.password)})
    ws = await session.ws_connect(server.url + "/api/ws")

    async def collect() -> None:
        async for msg in ws:
            event = msg.json()
            if event.get("type") == "script_progress":
                events.append(event)
                if event["done"]:
                    finished.set()

    collector = asyncio.create_task(collect())
    try:
        result = await kvm.run_script(
            "REM go to the Boot tab, wait for it, change Boot Option #1\n"
            "RIGHT\n"
            "REPEAT 1\n"
            "WAITFOR boot.png 10\n"
            "DOWN\n"
            "ENTER\n"
            "LEFT\n"
            "LEFT\n"
            "STRING asset-7\n",
            {"boot.png": template},
        )
        assert result["commands"] == 8
        state = await demo_state(kvm)
        assert state["settings"]["Boot/Boot Option #1"] == "Hard Disk"
        assert state["tab"] == "Main"
        assert state["text"] == "asset-7"
        async with asyncio.timeout(5):
            await finished.wait()
    finally:
        collector.cancel()
        await ws.close()
        await session.close()
    lines = [e["line"] for e in events if not e["done"]]
    assert lines[0] == 2 and lines[-1] == 9 and 4 in lines
    assert events[-1]["commands"] == 8


async def test_waitfor_really_waits_for_the_screen(server: Server, kvm: IpkvmClient) -> None:
    machine = demo(server)
    await kvm.keys("right right")
    boot_screen = await until_screen_shows(server, kvm, "Boot")
    template = cut(boot_screen, machine.item_rect("Boot", "Boot Mode"))
    await kvm.keys("left left")
    await until_screen_shows(server, kvm, "Main")

    waiting = asyncio.Event()
    lines: list[int] = []
    session = aiohttp.ClientSession(headers={"Authorization": basic_header(server.password)})
    ws = await session.ws_connect(server.url + "/api/ws")

    async def watch() -> None:
        async for msg in ws:
            event = msg.json()
            if event.get("type") == "script_progress" and "line" in event:
                lines.append(event["line"])
                waiting.set()

    watcher = asyncio.create_task(watch())
    try:
        script = asyncio.create_task(
            kvm.run_script("WAITFOR boot.png 20\nLEFT\nLEFT\nSTRING late\n", {"boot.png": template})
        )
        reports = machine.reports
        hub = server.appliance.hub  # type: ignore[attr-defined]
        async with asyncio.timeout(5):
            await waiting.wait()
            seq = 0
            for _ in range(6):  # let six frames (~0.2 s) go by: the script must stay put
                seq = (await hub.next_frame(seq)).seq
        assert not script.done()
        assert lines == [1]
        assert machine.reports == reports
        # Only now does the Boot screen appear; the script goes on from there.
        await kvm.keys("right right")
        async with asyncio.timeout(20):
            await script
    finally:
        watcher.cancel()
        await ws.close()
        await session.close()
    state = await demo_state(kvm)
    assert (state["tab"], state["text"]) == ("Main", "late")


async def test_script_wait_timeout_stops_the_script(server: Server, kvm: IpkvmClient) -> None:
    noise = np.random.default_rng(2).integers(0, 255, (30, 30, 3), dtype=np.uint8)
    _, png = cv2.imencode(".png", noise)
    with pytest.raises(WaitTimeout) as info:
        await kvm.run_script("WAITFOR never.png 0.5\nSTRING x\n", {"never.png": png.tobytes()})
    assert info.value.body["line"] == 1
    assert info.value.message.startswith("line 1: WAITFOR never.png: timed out")
    assert (await demo_state(kvm))["text"] == ""  # line 2 never ran


async def test_parse_error_sends_nothing(server: Server, kvm: IpkvmClient) -> None:
    machine = demo(server)
    before = await demo_state(kvm)
    reports = machine.reports
    with pytest.raises(IpkvmError) as info:
        await kvm.run_script("STRING typed first?\nRIGHT\nCTRL ALT DELET\n")
    err = info.value
    assert err.status == 400
    assert (err.body["line"], err.body["column"]) == (3, 10)
    assert err.message == "line 3, column 10: unknown command or key 'DELET'"
    with pytest.raises(IpkvmError) as info:
        await kvm.run_script("ENTER\nWAITFOR missing.png\n")
    assert (info.value.body["line"], info.value.body["column"]) == (2, 9)
    assert "not uploaded" in info.value.message
    with pytest.raises(IpkvmError) as info:
        await kvm.run_script("STRING ok\nSTRING 5€\n")
    assert (info.value.status, info.value.body["line"], info.value.body["column"]) == (400, 2, 9)
    assert info.value.message == "line 2, column 9: the 'us' layout cannot type '€' (U+20AC)"
    assert machine.reports == reports
    assert await demo_state(kvm) == before


async def test_cancel_a_running_script(server: Server, kvm: IpkvmClient) -> None:
    task = asyncio.create_task(kvm.run_script("STRING a\nDELAY 5000\nSTRING b\n"))
    await until(server, lambda s: s["text"] == "a")
    assert await kvm.cancel_script() == 1
    with pytest.raises(IpkvmError) as info:
        await task
    assert info.value.status == 409
    assert (await demo_state(kvm))["text"] == "a"
    assert (await kvm.state())["hid"]["keys_held"] == []


async def test_run_script_with_progress_events(server: Server, kvm: IpkvmClient) -> None:
    events: list[dict[str, Any]] = []
    result = await kvm.run_script("STRING p\nREPEAT 2\nENTER\n", progress=events.append)
    assert result["commands"] == 3
    assert [(e["step"], e["line"]) for e in events] == [(0, 1), (1, 2), (2, 3), (3, 3)]
    assert events[0]["command"] == "STRING p"
    assert (await demo_state(kvm))["text"] == "ppp"

    _, png = cv2.imencode(".png", np.random.default_rng(4).integers(0, 255, (16, 16, 3), np.uint8))
    with pytest.raises(WaitTimeout) as info:
        await kvm.run_script(
            "ENTER\nWAITFOR n.png 3\n", {"n.png": png.tobytes()}, progress=events.append
        )
    assert info.value.body["line"] == 2
    assert info.value.best_score is not None and info.value.best_score < 0.9
    assert info.value.message.startswith("line 2: WAITFOR n.png: timed out after 3 s")


async def test_scripts_run_one_after_another(server: Server, kvm: IpkvmClient) -> None:
    first = asyncio.create_task(kvm.run_script("STRING a\nDELAY 400\nSTRING b\n"))
    await until(server, lambda s: s["text"] == "a")
    second = asyncio.create_task(kvm.run_script("STRING c\nSTRING d\n"))
    async with asyncio.timeout(20):
        await asyncio.gather(first, second)
    assert (await demo_state(kvm))["text"] == "abcd"  # not "acdb": no interleaving


def test_bad_base64_template_names_the_line() -> None:
    from appliance.scripting import ducky

    script = ducky.parse("REM\nWAITFOR x.png\n")
    with pytest.raises(ducky.DuckyError) as info:
        ducky.decode_templates(script, {"x.png": base64.b64encode(b"GIF89a").decode()})
    assert info.value.line == 2 and "not a PNG" in info.value.message


async def test_self_signed_tls_needs_insecure(tmp_path: Any) -> None:
    """The appliance's own self-signed certificate, served on loopback by a one-route app."""
    from aiohttp import web

    from appliance.tls import ensure_certificate, ssl_context
    from tests.conftest import free_port

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    ensure_certificate(cert, key, ["127.0.0.1", "localhost"])

    async def state(request: web.Request) -> web.Response:
        return web.json_response({"via": request.headers.get("Authorization")})

    app = web.Application()
    app.router.add_get("/api/state", state)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=ssl_context(cert, key))
    await site.start()
    url = f"https://127.0.0.1:{port}"
    try:
        async with IpkvmClient(url, token="t0k") as strict:
            with pytest.raises(IpkvmError) as info:
                await strict.state()
        assert info.value.status == 0
        assert "certificate" in info.value.message.lower()
        async with IpkvmClient(url, token="t0k", verify_tls=False) as lax:
            assert await lax.state() == {"via": "Bearer t0k"}
    finally:
        await runner.cleanup()
