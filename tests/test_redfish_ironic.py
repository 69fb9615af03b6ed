"""OpenStack Ironic's virtual-media boot, driven through ``sushy`` (Ironic's own Redfish client)
against the demo target served on 127.0.0.1, with the ISO served by a second local HTTP server.

The sequence is the one Ironic's ``redfish-virtual-media`` boot interface and ``redfish`` power
interface run for a deploy: find the System's manager through ``Links.ManagedBy``, eject every
inserted medium, insert the ISO URL into the first slot whose ``MediaTypes`` has CD, set the boot
override to Cd once (sushy PATCHes with the ETag it read), then reboot as Ironic does — ForceOff,
wait for PowerState Off, On, wait for On. The demo machine then boots from the CD: its screen,
read by OCR from the appliance's own video, shows the ISO's volume label; the Once override has
reverted; a later reboot comes back to the setup screen.

The duration of the sequence is printed (``-s``): ForceOff holds the simulated power button for
``atx.long_press_ms`` (4 s here, the minimum: ATX's override acts at 4 s), which dominates it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from appliance.media.iso9660 import tiny_iso
from appliance.scripting.screen import tesseract_path, wait_for_text
from tests.conftest import Server, free_port, start_server

pytestmark = pytest.mark.skipif(
    tesseract_path() is None, reason="needs tesseract (scripts/system-deps)"
)
sushy = pytest.importorskip("sushy")

LABEL = "IRONIC_DEPLOY_42"
TOML = "[atx]\nlong_press_ms = 4000\n"


@pytest.fixture
async def iso_url(tmp_path: Path) -> AsyncIterator[str]:
    """A plain HTTP server (another process's worth of aiohttp) serving one small ISO."""
    iso = tmp_path / "deploy.iso"
    iso.write_bytes(tiny_iso(LABEL, size=256 * 2048))
    app = web.Application()
    app.router.add_static("/images/", tmp_path)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/images/deploy.iso"
    finally:
        await runner.cleanup()


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    (tmp_path / "appliance").mkdir()
    srv, runner = await start_server(tmp_path / "appliance", TOML)
    try:
        yield srv
    finally:
        await runner.cleanup()


def connect(base: str, password: str) -> Any:
    """A sushy client as Ironic makes one (a Redfish session, X-Auth-Token)."""
    return sushy.Sushy(base + "/redfish/v1/", username="admin", password=password)


def log_out(conn: Any) -> None:
    """End the client's Redfish session now, in this thread. sushy does it in ``__del__``
    otherwise: whenever the garbage collector runs, which may be on the event loop serving the
    appliance, whose answer to that DELETE it would then wait for in vain."""
    conn.__del__()


def wait_power(system: object, state: object, timeout: float = 15.0) -> None:
    """Ironic's power-state poll (it polls too; there is no event to wait for from outside)."""
    deadline = time.monotonic() + timeout
    while True:
        system.refresh()  # type: ignore[attr-defined]
        if system.power_state == state:  # type: ignore[attr-defined]
            return
        assert time.monotonic() < deadline, f"PowerState stayed {system.power_state}"  # type: ignore[attr-defined]
        time.sleep(0.1)


def ironic_virtual_media_boot(base: str, password: str, iso: str) -> dict[str, float]:
    """What Ironic does, in sushy calls; returns how long each step took (seconds)."""
    steps: dict[str, float] = {}
    t = time.monotonic()
    conn = connect(base, password)
    system = conn.get_system("/redfish/v1/Systems/1")
    managers = system.managers  # through Links.ManagedBy
    assert [m.identity for m in managers] == ["bmc"]
    steps["connect"] = time.monotonic() - t

    t = time.monotonic()
    for manager in managers:  # _eject_all
        for media in manager.virtual_media.get_members():
            if media.inserted:
                media.eject_media()
    steps["eject"] = time.monotonic() - t

    t = time.monotonic()
    inserted = False
    for manager in managers:  # _insert_vmedia
        for media in manager.virtual_media.get_members():
            if sushy.VirtualMediaType.CD not in media.media_types:
                continue
            media.insert_media(iso, inserted=True, write_protected=True)
            inserted = True
            break
    assert inserted
    steps["insert"] = time.monotonic() - t

    t = time.monotonic()
    system.refresh()
    assert sushy.BootSource.CD in system.get_allowed_system_boot_source_values()
    system.set_system_boot_options(
        sushy.BootSource.CD, enabled=sushy.BootSourceOverrideEnabled.ONCE
    )
    steps["boot override"] = time.monotonic() - t

    t = time.monotonic()
    system.refresh()
    if system.power_state == sushy.PowerState.ON:  # the redfish power interface's reboot
        system.reset_system(sushy.ResetType.FORCE_OFF)
        wait_power(system, sushy.PowerState.OFF)
    system.reset_system(sushy.ResetType.ON)
    wait_power(system, sushy.PowerState.ON)
    steps["reboot"] = time.monotonic() - t
    log_out(conn)
    return steps


async def test_ironic_boots_the_demo_target_from_a_virtual_cd(server: Server, iso_url: str) -> None:
    began = time.monotonic()
    steps = await asyncio.to_thread(ironic_virtual_media_boot, server.url, server.password, iso_url)
    sequence = time.monotonic() - began
    hub = server.appliance.hub  # type: ignore[attr-defined]
    await wait_for_text(hub, f"Volume: {LABEL}", timeout=20)
    shown = time.monotonic() - began
    print(
        f"\nIronic virtual-media sequence on the demo target: {sequence:.2f} s "
        f"({', '.join(f'{k} {v:.2f} s' for k, v in steps.items())}); "
        f"label on screen (OCR) at {shown:.2f} s"
    )

    def after() -> tuple[object, object, object, bool]:
        conn = connect(server.url, server.password)
        system = conn.get_system("/redfish/v1/Systems/1")
        cd = system.managers[0].virtual_media.get_member("/redfish/v1/Managers/bmc/VirtualMedia/Cd")
        log_out(conn)
        return system.boot.enabled, system.boot.target, cd.image, cd.inserted

    enabled, target, image, inserted = await asyncio.to_thread(after)
    assert enabled == sushy.BootSourceOverrideEnabled.DISABLED  # Once was used by that boot
    assert target == sushy.BootSource.CD
    assert (image, inserted) == (iso_url, True)
    machine = server.appliance.target.single  # type: ignore[attr-defined]
    assert machine.state()["booted_cd"] == LABEL
    # The next reboot follows the normal boot order again: the setup screen.
    machine.set_power(False)
    machine.set_power(True)
    assert machine.state()["booted_cd"] is None
    await wait_for_text(hub, "Demo BIOS Setup Utility", timeout=20)


async def test_eject_deletes_the_download_and_errors_reach_sushy(
    server: Server, iso_url: str
) -> None:
    def run() -> tuple[list[str], str]:
        conn = connect(server.url, server.password)
        manager = conn.get_manager("/redfish/v1/Managers/bmc")
        cd = manager.virtual_media.get_member("/redfish/v1/Managers/bmc/VirtualMedia/Cd")
        usb = manager.virtual_media.get_member("/redfish/v1/Managers/bmc/VirtualMedia/Usb")
        cd.insert_media(iso_url)
        stored = [i.name for i in server.appliance.media.store.list()]  # type: ignore[attr-defined]
        with pytest.raises(sushy.exceptions.HTTPError) as busy:
            usb.insert_media(iso_url)  # one drive: the CD holds it
        cd.eject_media()
        cd.refresh()
        assert not cd.inserted and cd.image is None
        log_out(conn)
        return stored, busy.value.code

    stored, code = await asyncio.to_thread(run)
    assert stored == ["redfish-cd"]
    assert code == "Base.1.22.ResourceInUse"
    assert server.appliance.media.store.list() == []  # type: ignore[attr-defined]


async def test_inserted_false_downloads_without_attaching_and_eject_deletes_it(
    server: Server, iso_url: str
) -> None:
    """The download alone (no drive change on the way): deleting it on eject must publish the
    store's change from the event loop (a worker thread has none: the system test found a 500)."""
    import aiohttp

    cd = "/redfish/v1/Managers/bmc/VirtualMedia/Cd"
    async with aiohttp.ClientSession(base_url=server.url, headers=server.basic()) as http:
        insert = {"Image": iso_url, "Inserted": False}
        async with http.post(f"{cd}/Actions/VirtualMedia.InsertMedia", json=insert) as resp:
            assert resp.status == 204, await resp.text()
        async with http.get(cd) as resp:
            slot = await resp.json()
        assert (slot["Inserted"], slot["Image"], slot["TransferMethod"]) == (
            False,
            iso_url,
            "Upload",
        )
        store = server.appliance.media.store  # type: ignore[attr-defined]
        assert [i.name for i in store.list()] == ["redfish-cd"]
        assert not server.appliance.media.status()["inserted"]  # type: ignore[attr-defined]
        async with http.post(f"{cd}/Actions/VirtualMedia.EjectMedia") as resp:
            assert resp.status == 204, await resp.text()
        assert store.list() == []
