"""Redfish on the appliance image: the service root is public, a System without ATX wiring says
so, and ``InsertMedia`` of an HTTP URL puts the image on the real gadget LUN, where the VM's USB
host side reads the ISO's volume label; ``EjectMedia`` empties the LUN and deletes the download.

The hardened service cannot configure ``/dev/nbdN`` (docs/media.md), so an insert that names no
``TransferMethod`` falls back from streaming to a download: the slot must then say ``Upload``.
"""

from __future__ import annotations

import functools
import glob
import http.server
import json
import os
import threading
import urllib.request
from pathlib import Path

from systest import API, Api, timeout, wait_for

LUN = Path("/sys/kernel/config/usb_gadget/ipkvm/functions/mass_storage.usb0/lun.0")
SECTOR = 2048
CD = "/redfish/v1/Managers/bmc/VirtualMedia/Cd"


def tiny_iso(label: str) -> bytes:
    pvd = bytearray(SECTOR)
    pvd[0], pvd[1:6], pvd[6] = 1, b"CD001", 1
    pvd[40:72] = label.encode().ljust(32)
    end = bytearray(SECTOR)
    end[0], end[1:6], end[6] = 255, b"CD001", 1
    return (bytes(16 * SECTOR) + bytes(pvd) + bytes(end)).ljust(512 * SECTOR, b"\0")


def usb_cdroms() -> list[str]:
    return sorted(
        os.path.basename(d) for d in glob.glob("/sys/block/sr*") if "/usb" in os.path.realpath(d)
    )


def label_on(disk: str) -> bytes:
    try:
        with open(f"/dev/{disk}", "rb", buffering=0) as f:
            f.seek(16 * SECTOR)
            return f.read(SECTOR)[40:72].rstrip()
    except OSError:
        return b""


def test_the_service_root_needs_no_login() -> None:
    with urllib.request.urlopen(API + "/redfish/v1", timeout=30) as resp:
        root = json.loads(resp.read())
    assert root["@odata.type"].startswith("#ServiceRoot.")
    assert root["Links"]["Sessions"]["@odata.id"] == "/redfish/v1/SessionService/Sessions"


@timeout(180)
def test_insert_media_puts_a_url_on_the_lun_and_eject_takes_it_off() -> None:
    api = Api()
    system = api.get("/redfish/v1/Systems/1")
    # The VM's ATX wiring is the gpio-sim chip (guest_45_atx): the System reports its LED.
    assert system["PowerState"] in ("On", "Off"), system
    assert "#ComputerSystem.Reset" in system["Actions"], system
    www = Path("/var/tmp/redfish-www")
    www.mkdir(exist_ok=True)
    (www / "deploy.iso").write_bytes(tiny_iso("REDFISH_VM"))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/deploy.iso"
    try:
        code, body, _ = api.request(
            "POST", CD + "/Actions/VirtualMedia.InsertMedia", {"Image": url}
        )
        assert code == 204, body
        slot = api.get(CD)
        assert (slot["Inserted"], slot["Image"]) == (True, url), slot
        assert slot["TransferMethod"] in ("Stream", "Upload"), slot
        assert (LUN / "cdrom").read_text().strip() == "1"
        disk = wait_for(usb_cdroms, 60, "the gadget's CD-ROM on the host side")[0]
        wait_for(lambda: label_on(disk) == b"REDFISH_VM", 60, "the ISO's label on the host side")
        code, body, _ = api.request("POST", CD + "/Actions/VirtualMedia.EjectMedia", {})
        assert code == 204, body
        assert (LUN / "file").read_text().strip() == ""
        names = [i["name"] for i in api.get("/api/media/images")["images"]]
        assert "redfish-cd" not in names, names
    finally:
        server.shutdown()
        api.request("POST", CD + "/Actions/VirtualMedia.EjectMedia", {})
