"""Redfish on the appliance image: the service root is public, a System without ATX wiring says
so, and ``InsertMedia`` of an HTTP URL puts the image on the real gadget LUN, where the VM's USB
host side reads the ISO's volume label; ``EjectMedia`` empties the LUN and deletes the download.

The stdlib's file server answers no range requests, so an insert that names no
``TransferMethod`` falls back from streaming to a download there (the slot may say ``Upload``);
with ``TransferMethod: Stream`` and a server that answers ranges, the hardened service streams
through the NBD helper (``ipkvm-nbd@.service``, docs/media.md): the LUN reads ``/dev/nbdN``.
"""

from __future__ import annotations

import functools
import glob
import http.server
import json
import os
import re
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


class RangeFiles(http.server.SimpleHTTPRequestHandler):
    """The stdlib's file server plus ``Range: bytes=A-B`` (what nbdkit's curl plugin sends) and
    ``Accept-Ranges`` (what it checks in its HEAD request before serving a connection)."""

    def log_message(self, *args: object) -> None:
        pass

    def end_headers(self) -> None:
        self.send_header("Accept-Ranges", "bytes")
        super().end_headers()

    def do_GET(self) -> None:
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        path = Path(self.translate_path(self.path))
        if not m or not path.is_file():
            return super().do_GET()
        data = path.read_bytes()
        start = int(m[1])
        end = min(int(m[2]), len(data) - 1) if m[2] else len(data) - 1
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        self.wfile.write(data[start : end + 1])


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


@timeout(180)
def test_insert_media_streams_when_asked_to() -> None:
    """TransferMethod Stream by the hardened service: nothing downloaded, /dev/nbdN on the LUN."""
    api = Api()
    www = Path("/var/tmp/redfish-www")
    www.mkdir(exist_ok=True)
    (www / "stream.iso").write_bytes(tiny_iso("REDFISH_NBD"))
    handler = functools.partial(RangeFiles, directory=str(www))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/stream.iso"
    try:
        body = {"Image": url, "TransferMethod": "Stream", "TransferProtocolType": "HTTP"}
        code, answer, _ = api.request("POST", CD + "/Actions/VirtualMedia.InsertMedia", body)
        assert code == 204, answer
        slot = api.get(CD)
        assert (slot["Inserted"], slot["TransferMethod"]) == (True, "Stream"), slot
        device = (LUN / "file").read_text().strip()
        assert device.startswith("/dev/nbd"), device
        disk = wait_for(usb_cdroms, 60, "the gadget's CD-ROM on the host side")[0]
        wait_for(lambda: label_on(disk) == b"REDFISH_NBD", 60, "the streamed ISO's label")
        code, answer, _ = api.request("POST", CD + "/Actions/VirtualMedia.EjectMedia", {})
        assert code == 204, answer
        assert (LUN / "file").read_text().strip() == ""
        size = Path("/sys/block") / Path(device).name / "size"
        wait_for(lambda: size.read_text().strip() == "0", 30, f"{device} disconnected")
    finally:
        server.shutdown()
        api.request("POST", CD + "/Actions/VirtualMedia.EjectMedia", {})
