"""The switch drivers and SwitchController against simulated switches on real ptys and loopback
TCP (tests/switch_sim.py): every model's select and query, a switch that stops answering and comes
back, a front-panel change noticed by polling, garbage on the line, the serial port vanishing and
coming back, and the time from a select to the confirmed port."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from appliance.switch import (
    PortSettings,
    PortStore,
    SwitchBusy,
    SwitchController,
    SwitchTimeout,
    Timing,
)
from appliance.switch.extron import Extron
from appliance.switch.ezcoo import Ezcoo
from appliance.switch.hotkey import HotkeySwitch
from appliance.switch.link import SerialLink, TcpLink
from appliance.switch.pway import Pway
from appliance.switch.tesmart import Tesmart
from appliance.switch.wire import WireProtocol
from appliance.switch.wired import WiredSwitch
from appliance.switch.xh import Xh4401
from tests.switch_sim import MODELS, Model, PtySwitch, SwitchSim, TcpSwitch

LAYOUTS = ("us", "de", "fr")


def protocol(model: Model) -> WireProtocol:
    if model == "tesmart":
        return Tesmart()
    if model.startswith("ezcoo"):
        return Ezcoo("ezs" if model == "ezcoo-ezs" else "set")
    if model in ("xh1", "xh2"):
        return Xh4401(1 if model == "xh1" else 2)
    return Extron() if model == "extron" else Pway()


def store(tmp_path: Path, count: int = 4) -> PortStore:
    return PortStore(
        count,
        (),
        layout="us",
        mouse="absolute",
        state_dir=tmp_path,
        known_layouts=LAYOUTS,
    )


class Recorder:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.applied: list[PortSettings] = []
        self.changed = asyncio.Event()

    def publish(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        self.changed.set()

    def apply(self, settings: PortSettings) -> None:
        self.applied.append(settings)

    async def until(self, predicate: Callable[[], bool], timeout: float = 8.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()


def controller(
    driver: Any, tmp_path: Path, rec: Recorder, *, settle: float = 0.3, poll: float = 0.0
) -> SwitchController:
    return SwitchController(
        driver,
        store(tmp_path),
        Timing(settle=settle, gap=0.0, poll_interval=poll),
        publish=rec.publish,
        on_active=rec.apply,
    )


def serial_driver(model: Model, path: str | Path, timeout: float = 0.5) -> WiredSwitch:
    proto = protocol(model)
    return WiredSwitch(proto, SerialLink(Path(path), proto.baud, proto.scanner(), timeout), timeout)


@pytest.fixture
async def rec() -> Recorder:
    return Recorder()


TIMES: dict[str, float] = {}


async def until(predicate: Callable[[], bool], timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110 (the simulator's state, set by its pty reader)
            await asyncio.sleep(0.01)


@pytest.mark.parametrize("model", MODELS)
async def test_select_is_confirmed_on_every_model(
    model: Model, tmp_path: Path, rec: Recorder
) -> None:
    # TESmart with the real timings (1 s between commands, ~0.5 s to switch, 1 s settle).
    tesmart = model == "tesmart"
    queried = protocol(model).can_query
    sim = SwitchSim(model, switch_delay=0.5 if tesmart else 0.1 if queried else 0.0)
    pty = PtySwitch(sim).start()
    ctl = controller(serial_driver(model, pty.path), tmp_path, rec, settle=1.0 if tesmart else 0.3)
    try:
        await ctl.start()
        for port in (3, 2):
            started = time.monotonic()
            assert await ctl.select(port) == port
            took = time.monotonic() - started
            await until(lambda p=port: sim.active == p)  # type: ignore[misc]  # XH protocol 2: sent, nothing confirms it
            assert ctl.active == port and ctl.state == "online"
        TIMES[model] = took
        print(f"\n{model}: select → confirmed in {took * 1000:.0f} ms")
        assert rec.applied[-1].port == 2
        assert rec.events[-1]["active"] == 2
        assert sim.violations == []
        if model.startswith("ezcoo"):  # every command goes out twice: firmware drops some
            sets = [c for c in sim.commands if b"VS IN" in c]
            assert sets == [sets[0], sets[0], sets[2], sets[2]] and len(sets) == 4
        if protocol(model).can_query and not protocol(model).listen_only:
            assert sim.queries >= 2
    finally:
        await ctl.close()
        pty.close()


async def test_tesmart_over_tcp(tmp_path: Path, rec: Recorder) -> None:
    sim = SwitchSim("tesmart", switch_delay=0.3)
    server = await TcpSwitch(sim).start()
    proto = Tesmart()
    link = TcpLink("127.0.0.1", server.port, proto.scanner(), 0.5)
    ctl = controller(WiredSwitch(proto, link, 0.5), tmp_path, rec, settle=1.0)
    try:
        await ctl.start()
        assert ctl.active == 1
        started = time.monotonic()
        assert await ctl.select(4) == 4
        TIMES["tesmart-tcp"] = time.monotonic() - started
        assert sim.active == 4 and sim.violations == []
    finally:
        await ctl.close()
        await server.stop()


async def test_tcp_switch_goes_away_and_comes_back(tmp_path: Path, rec: Recorder) -> None:
    sim = SwitchSim("tesmart")
    server = await TcpSwitch(sim).start()
    proto = Tesmart()
    link = TcpLink("127.0.0.1", server.port, proto.scanner(), 0.4)
    ctl = controller(WiredSwitch(proto, link, 0.4), tmp_path, rec, settle=1.0, poll=0.3)
    try:
        await ctl.start()
        assert ctl.state == "online"
        await server.stop()
        await rec.until(lambda: ctl.state == "offline")
        assert ctl.error
        with pytest.raises(SwitchBusy, match="offline"):
            await ctl.select(2)
        sim.active = 3  # someone pressed a button while it was unreachable
        server = await TcpSwitch(sim, server.port).start()
        await rec.until(lambda: ctl.state == "online" and ctl.active == 3)
    finally:
        await ctl.close()
        await server.stop()


async def test_switch_stops_answering_then_answers_again(tmp_path: Path, rec: Recorder) -> None:
    sim = SwitchSim("ezcoo")
    pty = PtySwitch(sim).start()
    ctl = controller(serial_driver("ezcoo", pty.path, 0.3), tmp_path, rec, poll=0.2)
    try:
        await ctl.start()
        assert ctl.state == "online" and ctl.active == 1
        sim.silent = True
        await rec.until(lambda: ctl.state == "offline")
        assert "no reply" in (ctl.error or "")
        assert rec.events[-1]["state"] == "offline"
        with pytest.raises(SwitchBusy, match="offline"):
            await ctl.select(2)
        sim.silent = False
        await rec.until(lambda: ctl.state == "online")
        assert await ctl.select(2) == 2
    finally:
        await ctl.close()
        pty.close()


async def test_select_without_answer_times_out(tmp_path: Path, rec: Recorder) -> None:
    sim = SwitchSim("extron")
    pty = PtySwitch(sim).start()
    ctl = controller(serial_driver("extron", pty.path, 0.3), tmp_path, rec)
    try:
        await ctl.start()
        sim.silent = True
        with pytest.raises(SwitchTimeout):
            await ctl.select(2)
        assert ctl.state == "offline"
        sim.silent = False  # a switch that cannot be polled comes back with the next select
        assert await ctl.select(2) == 2
        assert ctl.state == "online"
    finally:
        await ctl.close()
        pty.close()


@pytest.mark.parametrize("model", ["ezcoo", "xh1"])
async def test_front_panel_change_is_noticed_by_polling(
    model: Model, tmp_path: Path, rec: Recorder
) -> None:
    sim = SwitchSim(model)
    pty = PtySwitch(sim).start()
    ctl = controller(serial_driver(model, pty.path), tmp_path, rec, poll=0.2)
    try:
        await ctl.start()
        assert ctl.active == 1
        sim.press_button(4)
        await rec.until(lambda: ctl.active == 4)
        assert rec.applied[-1].port == 4
        assert {"type": "switch", "active": 4}.items() <= rec.events[-1].items()
    finally:
        await ctl.close()
        pty.close()


@pytest.mark.parametrize("model", ["tesmart", "ezcoo-short", "pway"])
async def test_garbage_on_the_line_is_ignored(model: Model, tmp_path: Path, rec: Recorder) -> None:
    sim = SwitchSim(model)
    pty = PtySwitch(sim).start()
    ctl = controller(serial_driver(model, pty.path), tmp_path, rec, settle=0.1)
    try:
        pty.send_raw(b"\xaa\xbb\x03\x11\xff\x00\x00garbage\r\nOUT1 VS \xff\r\n\x00" * 3)
        sim.garbage_before_reply = b"\xee\xaa\xbbnoise V0 OUT1\r\n\x00\xff"
        await ctl.start()
        assert ctl.state == "online"
        assert ctl.active == (1 if protocol(model).can_query else None)
        pty.send_raw(bytes(range(256)))
        sim.garbage_before_reply = b"\r\n\x00PS VGA_SWITCH_CONTROL=\xaa\xbb\x03"
        assert await ctl.select(3) == 3
        assert sim.active == 3
    finally:
        await ctl.close()
        pty.close()


async def test_serial_port_vanishes_and_comes_back(tmp_path: Path, rec: Recorder) -> None:
    sim = SwitchSim("ezcoo")
    first = PtySwitch(sim).start()
    link = tmp_path / "ttyUSB-switch"  # a /dev/serial/by-id/ name: same path, new tty behind it
    link.symlink_to(first.path)
    ctl = controller(serial_driver("ezcoo", link, 0.3), tmp_path, rec, poll=0.2)
    second: PtySwitch | None = None
    try:
        await ctl.start()
        assert ctl.state == "online"
        first.close()
        link.unlink()
        await rec.until(lambda: ctl.state == "offline")
        await asyncio.sleep(0.5)  # polling a missing port neither raises nor hangs
        assert ctl.state == "offline"
        sim.active = 2
        second = PtySwitch(sim).start()
        link.symlink_to(second.path)
        await rec.until(lambda: ctl.state == "online" and ctl.active == 2)
        assert await ctl.select(4) == 4
    finally:
        await ctl.close()
        if second is not None:
            second.close()


async def test_one_select_at_a_time(tmp_path: Path, rec: Recorder) -> None:
    sim = SwitchSim("ezcoo", switch_delay=0.1)
    pty = PtySwitch(sim).start()
    ctl = controller(serial_driver("ezcoo", pty.path), tmp_path, rec, settle=0.4)
    try:
        await ctl.start()
        first = asyncio.create_task(ctl.select(2))
        await rec.until(lambda: ctl.state == "switching")
        with pytest.raises(SwitchBusy, match="in flight"):
            await ctl.select(3)
        assert await first == 2
        assert [e["state"] for e in rec.events][-2:] == ["switching", "online"]
    finally:
        await ctl.close()
        pty.close()


async def test_select_by_name_and_rename_persists(tmp_path: Path, rec: Recorder) -> None:
    sim = SwitchSim("pway")
    pty = PtySwitch(sim).start()
    ctl = controller(serial_driver("pway", pty.path), tmp_path, rec)
    try:
        ctl.rename(3, {"name": "db-01", "layout": "de", "mouse": "relative"})
        assert await ctl.select("DB-01") == 3
        assert rec.applied[-1] == PortSettings(3, "db-01", "de", "relative")
        again = store(tmp_path)
        assert again.get(3).name == "db-01" and again.find("db-01") == 3
    finally:
        await ctl.close()
        pty.close()


class FakeHid:
    online: bool | None = True
    last_error = None

    def __init__(self) -> None:
        self.presses: list[tuple[list[list[str]], float, float]] = []

    async def press_chords(self, client: str, chords: list[list[str]], **kw: Any) -> None:
        self.presses.append((chords, kw.get("gap", 0.05), time.monotonic()))


async def test_hotkey_sends_the_configured_sequence(tmp_path: Path, rec: Recorder) -> None:
    hid = FakeHid()
    driver = HotkeySwitch(hid, "ctrl ctrl {n}", gap=0.1)  # type: ignore[arg-type]
    ctl = controller(driver, tmp_path, rec)
    started = time.monotonic()
    assert await ctl.select(3) == 3
    TIMES["hotkey (HID calls only)"] = time.monotonic() - started
    assert hid.presses == [([["ControlLeft"], ["ControlLeft"], ["Digit3"]], 0.1, hid.presses[0][2])]
    hid.online = False
    with pytest.raises(Exception, match="keyboard offline"):
        await ctl.select(2)
    with pytest.raises(ValueError, match=r"\{n\}"):
        HotkeySwitch(hid, "scrolllock scrolllock")  # type: ignore[arg-type]


@pytest.fixture(scope="module", autouse=True)
def report_times() -> AsyncIterator[None]:  # type: ignore[misc]
    yield
    if TIMES:
        print(
            "\nselect → confirmed:", ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in TIMES.items())
        )
