"""The QEMU target against real QEMU guests (SeaBIOS, and boot images the tests assemble),
driven through the real API on a real server: the boot menu reached through the HID path, typed
text arriving in order, a power cycle, an ISO inserted and booted, two guests as switch ports.

Guests are tiny (32 MB, no disk or a 1 MiB one, 10 fps display) and start in parallel per test.
Skipped, with the reason, when QEMU or the image tools are not installed.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from appliance.scripting.screen import ocr_words, tesseract_path, wait_for_text
from appliance.targets.facets import MediaSpec
from appliance.targets.qemu import QemuTarget
from appliance.targets.qemu.command import guest_argv
from appliance.targets.qemu.guest import QemuGuest
from appliance.targets.qemu.input import InputDecoder, key_event
from hid.controller import Device
from hid.reports import abs_mouse_report, keyboard_report, rel_mouse_report
from tests.conftest import Server, start_server, until
from tests.qemu_images import echo_disk, echo_iso, tools_missing

QEMU = shutil.which("qemu-system-x86_64")
needs_qemu = pytest.mark.skipif(
    QEMU is None, reason="qemu-system-x86_64 is not installed (Debian package qemu-system-x86)"
)
needs_tools = pytest.mark.skipif(tools_missing() is not None, reason=str(tools_missing()))
needs_ocr = pytest.mark.skipif(
    tesseract_path() is None, reason="tesseract is not installed (tesseract-ocr)"
)

BASE = """
[target]
kind = "qemu"
[video]
fps = 10
[qemu]
memory = 32
accel = "tcg"
"""
# TCG, not "auto": on nested virtualisation /dev/kvm may open and KVM initialise while guests
# then misbehave (seen on the CI host: SeaBIOS draws, but the disk's boot sector never runs).


def guest(srv: Server, index: int | None = None) -> QemuGuest:
    target = srv.appliance.target
    assert isinstance(target, QemuTarget) and target.rack is not None
    return target.rack.guest if index is None else target.rack.guests[index]


def read_log(path: Path) -> str:
    return path.read_bytes().decode(errors="replace") if path.exists() else ""


async def serial_until(path: Path, text: str, timeout: float = 20.0) -> str:
    """The serial log once it contains *text* (a file has no change event: polled)."""
    async with asyncio.timeout(timeout):
        while True:
            data = await asyncio.to_thread(read_log, path)
            if text in data:
                return data
            await asyncio.sleep(0.05)


async def power(http: aiohttp.ClientSession, action: str) -> None:
    async with http.post("/api/power", json={"action": action}) as resp:
        assert resp.status == 200, await resp.text()


async def power_state(http: aiohttp.ClientSession, state: str, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while True:
            async with http.get("/api/power") as resp:
                body: dict[str, Any] = await resp.json()
            if body["state"] == state:
                return
            await asyncio.sleep(0.05)


async def type_text(http: aiohttp.ClientSession, text: str) -> None:
    async with http.post("/api/hid/type", json={"text": text, "wait": True}) as resp:
        assert resp.status == 200, await resp.text()


# ---------------------------------------------------------------------- without QEMU
def test_reports_become_events_in_order() -> None:
    """Releases before presses, modifiers by bit, rollover holds, pointer and wheel."""
    d = InputDecoder()
    assert d.events(keyboard_report(0x02, [0x04])) == [
        key_event("shift", True),
        key_event("a", True),
    ]
    rollover = d.events(keyboard_report(0x02, [0x04, 5, 6, 7, 8, 9, 10]))
    assert rollover == []  # ErrorRollOver: the held keys stay held
    assert d.events(keyboard_report(0, [0x29])) == [
        key_event("a", False),
        key_event("shift", False),
        key_event("esc", True),
    ]
    events = d.events(abs_mouse_report(0x01, 100, 32767, wheel=-1))
    assert events[:3] == [
        {"type": "abs", "data": {"axis": "x", "value": 100}},
        {"type": "abs", "data": {"axis": "y", "value": 32767}},
        {"type": "btn", "data": {"down": True, "button": "left"}},
    ]
    assert [e["data"]["button"] for e in events[3:]] == ["wheel-down", "wheel-down"]
    assert d.events(rel_mouse_report(0x01, -5, 0)) == [
        {"type": "rel", "data": {"axis": "x", "value": -5}}
    ]
    assert [e["data"]["down"] for e in d.release_all()] == [False, False]


async def test_unreachable_guest_degrades(tmp_path: Path) -> None:
    """An attached guest whose socket answers nothing: power unknown, no video, HID offline —
    answers at once, nothing hangs."""
    sock = tmp_path / "nobody.qmp"
    srv, runner = await start_server(tmp_path, BASE + f'attach = ["{sock}"]\n')
    try:
        async with aiohttp.ClientSession(base_url=srv.url, headers=srv.basic()) as http:
            async with http.get("/api/power") as resp:
                assert (await resp.json())["state"] == "unknown"
            async with http.post("/api/power", json={"action": "reset"}) as resp:
                assert resp.status == 409
                assert "nobody.qmp" in (await resp.json())["error"]
            async with http.get("/api/state") as resp:
                state = await resp.json()
        assert state["video"]["status"] == "no_device"
        assert state["target"]["kind"] == "qemu"
    finally:
        await runner.cleanup()


# ---------------------------------------------------------------------- real guests
@needs_qemu
@needs_ocr
async def test_boot_menu_through_hid_and_power_cycle(tmp_path: Path) -> None:
    """SeaBIOS on an empty machine: Esc through /api/hid/key opens its boot menu (read by OCR);
    a hard power-off ends QEMU, power-on launches a new one that boots again."""
    srv, runner = await start_server(tmp_path, BASE + "splash_ms = 15000\n")
    try:
        hub = srv.appliance.hub
        await wait_for_text(hub, "Press ESC", timeout=30)
        async with aiohttp.ClientSession(base_url=srv.url, headers=srv.basic()) as http:
            for down in (True, False):
                async with http.post("/api/hid/key", json={"code": "Escape", "down": down}) as r:
                    assert r.status == 200
            await wait_for_text(hub, "Select boot device", timeout=20)
            # the pointer too: QEMU takes tablet moves, a click and the wheel without complaint
            # (failures before the guest was up, while the controller released all, are not it)
            failed = srv.appliance.hid.devices[Device.MOUSE].failed
            body = {"x": 0.5, "y": 0.25, "button": "left", "wheel": -2}
            async with http.post("/api/hid/mouse", json=body) as r:
                assert r.status == 200
            assert srv.appliance.hid.devices[Device.MOUSE].failed == failed

            g = guest(srv)
            await power(http, "off_hard")
            await power_state(http, "off")
            assert g.status == "off" and g.launches == 1
            await until(hub.subscribe, lambda: hub.signal.status == "target_off", "no picture")
            await power(http, "on")
            await power_state(http, "on")
            assert g.launches == 2
            await until(hub.subscribe, lambda: hub.signal.status == "ok", "the picture back")
            # the next frame is the new QEMU's (the old display session ended with its QEMU)
            await hub.next_frame(hub.latest.seq if hub.latest else 0)
            await wait_for_text(hub, "Press ESC", timeout=30)
    finally:
        await runner.cleanup()


@needs_qemu
@needs_tools
@needs_ocr
async def test_typing_in_order_on_two_guests_behind_the_switch(tmp_path: Path) -> None:
    """Two guests echo what they read with int 16h: text typed through the API arrives exactly
    and in order, on the guest of the selected switch port only; the video follows the switch
    and each guest's resolution; the guest's keyboard LEDs come back."""
    for name in ("guest1", "guest2"):
        disk = echo_disk(tmp_path / name, f"ECHO {name}")
        disk.rename(tmp_path / f"echo-{name}.img")
    toml = BASE + (
        "boot_menu = false\n"
        f'disks = ["{tmp_path}/echo-{{name}}.img"]\n'
        f'extra_args = ["-serial", "file:{tmp_path}/serial-{{name}}.log"]\n'
        '[switch]\ndriver = "qemu"\ncount = 2\n'
    )
    srv, runner = await start_server(tmp_path, toml)
    try:
        log1, log2 = tmp_path / "serial-guest1.log", tmp_path / "serial-guest2.log"
        await serial_until(log1, "ECHO guest1\r\n")
        await serial_until(log2, "ECHO guest2\r\n")
        text = "The quick brown fox: 0123456789 !@#$%^&*() -=_+[]{};'\\\",./<>?|`~ END"
        async with aiohttp.ClientSession(base_url=srv.url, headers=srv.basic()) as http:
            await type_text(http, text)
            assert (await serial_until(log1, " END")) == "ECHO guest1\r\n" + text
            hub = srv.appliance.hub  # the '#' typed switched guest 1 to mode 13h: VGA shows
            await until(hub.subscribe, lambda: hub.signal.width == 640, "the new resolution")
            assert hub.latest is not None and hub.latest.image.shape == (400, 640, 3)

            async with http.post("/api/switch/select", json={"port": 2}) as resp:
                assert resp.status == 200, await resp.text()
            await wait_for_text(hub, "ECHO guest2", timeout=20)
            assert hub.signal.width == 720  # guest 2 is still in text mode
            await type_text(http, "port two")
            assert (await serial_until(log2, "two")) == "ECHO guest2\r\nport two"

            # Caps Lock: SeaBIOS sets the keyboard's LEDs on its next int 16h call (after the
            # next key), QEMU tells the VNC display, the API shows it
            hid = srv.appliance.hid
            assert not hid.leds.caps_lock
            for down in (True, False):
                async with http.post("/api/hid/key", json={"code": "CapsLock", "down": down}):
                    pass
            await type_text(http, "!")
            await until(hid.subscribe, lambda: hid.leds.caps_lock, "the Caps Lock LED")
        assert log1.read_bytes().decode() == "ECHO guest1\r\n" + text
    finally:
        await runner.cleanup()


@needs_qemu
@needs_tools
@needs_ocr
async def test_inserted_iso_boots(tmp_path: Path) -> None:
    """An ISO built here, inserted into the guest's CD-ROM: after a reset the guest boots it.
    A QEMU killed behind the appliance's back is shown as failed and relaunched, empty."""
    iso = echo_iso(tmp_path, "ISO BOOTED")
    serial = tmp_path / "serial.log"
    toml = BASE + f'boot_menu = false\nextra_args = ["-serial", "file:{serial}"]\n'
    srv, runner = await start_server(tmp_path, toml)
    try:
        media = srv.appliance.target.media
        async with aiohttp.ClientSession(base_url=srv.url, headers=srv.basic()) as http:
            # as a user would: see the firmware give up, insert the ISO, reset (a reset early in
            # SeaBIOS's start under a loaded TCG host was seen to hang the guest before VGA init)
            await wait_for_text(srv.appliance.hub, "No bootable device", timeout=30)
            await media.insert(MediaSpec(iso, "cdrom", True, "echo.iso"))
            assert media.status() == {
                "available": True,
                "inserted": True,
                "label": "echo.iso",
                "kind": "cdrom",
                "read_only": True,
            }
            await power(http, "reset")
            try:
                await serial_until(serial, "ISO BOOTED", timeout=30)
            except TimeoutError:
                await fail_with_screen(srv, "the guest did not boot the ISO")
        await media.eject()
        assert media.status()["inserted"] is False
        assert not await cd_inserted(guest(srv))

        # QEMU dies unasked: the guest shows it, is relaunched, and nothing it held survives
        await media.insert(MediaSpec(iso, "cdrom", True, "echo.iso"))
        g = guest(srv)
        failures: list[str] = []
        g.on_change(lambda: failures.append(g.message) if g.status == "failed" else None)
        assert g._proc is not None
        g._proc.kill()
        on_change = lambda cb: g.on_change(lambda: cb(None))  # noqa: E731
        await until(on_change, lambda: g.status == "running" and g.launches == 2, "relaunch", 20)
        assert failures and "relaunching" in failures[0]
        assert media.status()["inserted"] is False
        assert not await cd_inserted(g)
    finally:
        await runner.cleanup()


async def fail_with_screen(srv: Server, what: str) -> None:
    """Fail saying what the guest's screen reads (the only witness of a firmware's trouble)."""
    frame = srv.appliance.hub.latest
    words = await ocr_words(frame.image) if frame is not None and tesseract_path() else []
    g = guest(srv)
    pytest.fail(
        f"{what}; guest {g.status} {g.message!r}; screen: {' '.join(w.text for w in words)}"
    )


async def cd_inserted(g: QemuGuest) -> bool:
    blocks = await g.execute("query-block")
    return "inserted" in next(b for b in blocks if b.get("qdev") == "cdrom0")


@needs_qemu
@needs_tools
async def test_attached_guest(tmp_path: Path) -> None:
    """A guest someone else runs, reached through its QMP socket: typing arrives, the picture
    comes over VNC, a hard off holds it (``stop``) and "on" boots it again from the start."""
    disk = echo_disk(tmp_path / "img", "ECHO attached")
    sock, serial = tmp_path / "vm.qmp", tmp_path / "serial.log"
    from appliance.config import build_config

    argv = guest_argv(build_config({"qemu": {"memory": 32, "accel": "tcg"}}).qemu, "vm")
    argv += ["-drive", f"file={disk},if=ide,index=0,format=raw", "-serial", f"file:{serial}"]
    argv += ["-qmp", f"unix:{sock},server=on,wait=off"]
    proc = await asyncio.create_subprocess_exec(*argv, stderr=asyncio.subprocess.DEVNULL)
    try:
        await serial_until(serial, "ECHO attached\r\n")
        srv, runner = await start_server(tmp_path, BASE + f'attach = ["{sock}"]\n')
        try:
            hub = srv.appliance.hub
            await until(hub.subscribe, lambda: hub.signal.status == "ok", "the picture")
            async with aiohttp.ClientSession(base_url=srv.url, headers=srv.basic()) as http:
                await type_text(http, "hi")
                await serial_until(serial, "ECHO attached\r\nhi")
                await power(http, "off_hard")
                await power_state(http, "off")
                await until(hub.subscribe, lambda: hub.signal.status == "target_off", "off")
                assert srv.appliance.hid.online is False  # the console says why keys wait
                await power(http, "on")
                await power_state(http, "on")
                log = await serial_until(serial, "hiECHO attached\r\n")
                assert log.count("ECHO attached") == 2
            assert proc.returncode is None  # attached: the appliance never ends someone's QEMU
        finally:
            await runner.cleanup()
    finally:
        proc.kill()
        await proc.wait()


def test_command_line_per_guest(tmp_path: Path) -> None:
    from appliance.config import ConfigError, build_config

    with pytest.raises(ConfigError, match=r"qemu.attach: 1 sockets for a qemu switch of 2 ports"):
        build_config({"qemu": {"attach": ["/a.qmp"]}, "switch": {"driver": "qemu", "count": 2}})

    config = build_config(
        {
            "target": {"kind": "qemu"},
            "qemu": {"disks": ["/d/{name}.qcow2"], "extra_args": ["-serial", "file:{name},x"]},
        }
    )
    argv = guest_argv(config.qemu, "guest2")
    assert "file=/d/guest2.qcow2,if=ide,index=0,media=disk,format=qcow2" in argv
    assert argv[argv.index("-serial") + 1] == "file:guest2,x"
    assert argv[argv.index("-accel") : argv.index("-accel") + 4] == [
        "-accel",
        "kvm",
        "-accel",
        "tcg",
    ]
