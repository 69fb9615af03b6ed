"""Virtual media for real: a 5 GiB sparse CD image in the store, attached through the API,
is readable to its last sector by the VM's USB host side (usb-storage → /dev/srX); a URL is
streamed through nbdkit's curl plugin and the kernel's NBD client onto the LUN and read back
on the host side, with only range requests reaching the web server."""

from __future__ import annotations

import ctypes
import fcntl
import glob
import http.server
import os
import pwd
import re
import subprocess
import threading
import time
from pathlib import Path

from systest import Api, timeout, wait_for

LUN = Path("/sys/kernel/config/usb_gadget/ipkvm/functions/mass_storage.usb0/lun.0")
MEDIA = Path("/var/lib/ipkvm/media")
SECTOR = 2048
BIG = 5 * (1 << 30) + 3 * SECTOR  # over 4 GiB and over mainline's 2.36 GB CD-ROM cap
CDROM_CAP_BYTES = 1151999 * SECTOR  # where mainline f_mass_storage cuts a CD-ROM
LAST = b"ipkvm-systest-last-sector".ljust(SECTOR, b".")


def iso_header(label: str) -> bytes:
    """Sectors 0-17 of an ISO 9660 image: the primary volume descriptor and the terminator."""
    pvd = bytearray(SECTOR)
    pvd[0], pvd[1:6], pvd[6] = 1, b"CD001", 1
    pvd[40:72] = label.encode().ljust(32)
    end = bytearray(SECTOR)
    end[0], end[1:6], end[6] = 255, b"CD001", 1
    return bytes(16 * SECTOR) + bytes(pvd) + bytes(end)


def make_image(path: Path, size: int, label: str) -> None:
    with path.open("wb") as f:
        f.write(iso_header(label))
        f.seek(size - SECTOR)
        f.write(LAST)
    user = pwd.getpwnam("ipkvm")
    os.chown(path, user.pw_uid, user.pw_gid)


def usb_cdroms() -> list[str]:
    return sorted(
        os.path.basename(d) for d in glob.glob("/sys/block/sr*") if "/usb" in os.path.realpath(d)
    )


def size_of(disk: str) -> int:
    return int(Path(f"/sys/block/{disk}/size").read_text()) * 512


def read_at(disk: str, offset: int, n: int = SECTOR) -> bytes:
    try:
        with open(f"/dev/{disk}", "rb", buffering=0) as f:
            f.seek(offset)
            return f.read(n)
    except OSError:
        return b""


def media_dir() -> Path:
    if not MEDIA.is_dir():
        MEDIA.mkdir(mode=0o700)
        user = pwd.getpwnam("ipkvm")
        os.chown(MEDIA, user.pw_uid, user.pw_gid)
    return MEDIA


def usb_disks() -> list[str]:
    return sorted(
        os.path.basename(d) for d in glob.glob("/sys/block/sd*") if "/usb" in os.path.realpath(d)
    )


def big_image() -> Path:
    image = media_dir() / "big.iso"
    if not image.exists():
        make_image(image, BIG, "IPKVM BIG")
    return image


def eject() -> None:
    Api().request("POST", "/api/media/detach", {})
    if (LUN / "file").read_text().strip():  # left by a failed helper: the root way
        (LUN / "forced_eject").write_text("1\n")


@timeout(240)
def test_a_5gib_sparse_image_reads_to_its_last_sector() -> None:
    """Attached through the API as a (read-only) flash drive: the host side reads all of it."""
    api = Api()
    image = big_image()
    try:
        names = {i["name"]: i for i in api.get("/api/media/images")["images"]}
        assert names["big.iso"]["size"] == BIG and names["big.iso"]["state"] == "ready"
        status = api.post("/api/media/attach", {"image": "big.iso", "kind": "flash"})
        assert status["inserted"] and status["read_only"] and status["kind"] == "flash", status
        assert (LUN / "file").read_text().strip() == str(image)
        assert (LUN / "ro").read_text().strip() == "1"
        disk = wait_for(usb_disks, 60, "the gadget's disk on the host side")[0]
        wait_for(lambda: size_of(disk) == BIG, 60, f"/dev/{disk} with the whole {BIG} bytes")
        assert read_at(disk, BIG - SECTOR) == LAST
        assert read_at(disk, 16 * SECTOR)[40:49] == b"IPKVM BIG"
        # attached: the API refuses to remove it
        code, body, _ = api.request("DELETE", "/api/media/images/big.iso")
        assert code == 409, body
    finally:
        eject()
    assert (LUN / "file").read_text().strip() == ""


class _SgIoHdr(ctypes.Structure):
    """``struct sg_io_hdr`` (<scsi/sg.h>): one SCSI command to the host side's /dev/srX."""

    _fields_ = [
        ("interface_id", ctypes.c_int),
        ("dxfer_direction", ctypes.c_int),
        ("cmd_len", ctypes.c_ubyte),
        ("mx_sb_len", ctypes.c_ubyte),
        ("iovec_count", ctypes.c_ushort),
        ("dxfer_len", ctypes.c_uint),
        ("dxferp", ctypes.c_void_p),
        ("cmdp", ctypes.c_void_p),
        ("sbp", ctypes.c_void_p),
        ("timeout", ctypes.c_uint),
        ("flags", ctypes.c_uint),
        ("pack_id", ctypes.c_int),
        ("usr_ptr", ctypes.c_void_p),
        ("status", ctypes.c_ubyte),
        ("masked_status", ctypes.c_ubyte),
        ("msg_status", ctypes.c_ubyte),
        ("sb_len_wr", ctypes.c_ubyte),
        ("host_status", ctypes.c_ushort),
        ("driver_status", ctypes.c_ushort),
        ("resid", ctypes.c_int),
        ("duration", ctypes.c_uint),
        ("info", ctypes.c_uint),
    ]


def scsi_in(disk: str, cdb: bytes, n: int) -> bytes:
    """The data-in answer to *cdb* (SG_IO), as the host's CD stack would get it."""
    data, cmd, sense = (ctypes.create_string_buffer(k) for k in (n, len(cdb), 32))
    cmd.raw = cdb
    hdr = _SgIoHdr(
        interface_id=ord("S"),
        dxfer_direction=-3,  # SG_DXFER_FROM_DEV
        cmd_len=len(cdb),
        mx_sb_len=32,
        dxfer_len=n,
        dxferp=ctypes.addressof(data),
        cmdp=ctypes.addressof(cmd),
        sbp=ctypes.addressof(sense),
        timeout=10_000,
    )
    fd = os.open(f"/dev/{disk}", os.O_RDONLY | os.O_NONBLOCK)
    try:
        fcntl.ioctl(fd, 0x2285, hdr)  # SG_IO
    finally:
        os.close(fd)
    assert hdr.status == 0 and hdr.host_status == 0, (cdb.hex(), hdr.status, sense.raw.hex())
    return data.raw[: n - hdr.resid]


def lead_out(disk: str, msf: bool) -> bytes:
    """The lead-out address in READ TOC (format 0, from track 1): LBA or minute:second:frame."""
    toc = scsi_in(disk, bytes([0x43, 2 if msf else 0, 0, 0, 0, 0, 1, 0, 20, 0]), 20)
    assert toc[14] == 0xAA, toc.hex()  # the second descriptor is the lead-out
    return toc[16:20]


@timeout(300)
def test_a_5gib_sparse_cd_reads_to_its_last_sector() -> None:
    """The image's usb_f_mass_storage (image/oot-modules) serves a CD-ROM past mainline's
    1151999 sectors: the host side sees and reads all of it, READ CAPACITY and READ TOC by LBA
    give its real end, and READ TOC in MSF form answers 255:59:74 instead of wrapping."""
    param = Path("/sys/module/usb_f_mass_storage/parameters/large_cdrom")
    assert param.read_text().strip() == "Y", "the kernel runs Debian's capped module"
    api = Api()
    image = big_image()
    try:
        status = api.post("/api/media/attach", {"image": image.name})
        assert status["kind"] == "cdrom" and status["read_only"], status
        disk = wait_for(usb_cdroms, 60, "the gadget's CD-ROM on the host side")[0]
        wait_for(lambda: size_of(disk) == BIG, 60, f"/dev/{disk} with the whole {BIG} bytes")
        started = time.monotonic()
        assert read_at(disk, BIG - SECTOR) == LAST
        last_ms = (time.monotonic() - started) * 1000
        assert read_at(disk, 16 * SECTOR)[40:49] == b"IPKVM BIG"
        sectors = BIG // SECTOR
        capacity = scsi_in(disk, bytes([0x25] + [0] * 9), 8)  # READ CAPACITY(10)
        assert int.from_bytes(capacity[:4], "big") == sectors - 1, capacity.hex()
        assert int.from_bytes(capacity[4:], "big") == SECTOR, capacity.hex()
        assert int.from_bytes(lead_out(disk, msf=False), "big") == sectors
        assert tuple(lead_out(disk, msf=True)[1:]) == (255, 59, 74)
        # a sequential read across mainline's old end: what an installer copying files does
        span = 256 << 20
        offset = CDROM_CAP_BYTES - span // 2
        started = time.monotonic()
        with open(f"/dev/{disk}", "rb", buffering=0) as f:
            f.seek(offset)
            left = span
            while left:
                chunk = f.read(min(left, 1 << 20))
                assert chunk, f"/dev/{disk} ended {left} bytes early"
                left -= len(chunk)
        took = time.monotonic() - started
        print(
            f"CD-ROM {BIG} bytes = {sectors} sectors on /dev/{disk}: last sector read in "
            f"{last_ms:.0f} ms; {span >> 20} MiB across sector 1151999 at "
            f"{(span >> 20) / took:.1f} MiB/s",
            flush=True,
        )
        log = subprocess.run(["dmesg"], capture_output=True, text=True).stdout
        assert "file too big" not in log
    finally:
        eject()
        image.unlink()


class _Ranges(http.server.BaseHTTPRequestHandler):
    """A static file server that answers Range requests (the stdlib's does not)."""

    data_path: Path = Path()
    seen: list[tuple[str, str | None]] = []

    def log_message(self, *args: object) -> None:
        pass

    def _serve(self, body: bool) -> None:
        size = self.data_path.stat().st_size
        header = self.headers.get("Range")
        self.seen.append((self.command, header))
        start, end = 0, size - 1
        m = re.match(r"bytes=(\d+)-(\d*)$", header or "")
        if m:
            start = int(m[1])
            end = min(int(m[2]), size - 1) if m[2] else size - 1
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        else:
            self.send_response(200)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        if body:
            with self.data_path.open("rb") as f:
                f.seek(start)
                left = end - start + 1
                while left:
                    chunk = f.read(min(left, 1 << 20))
                    self.wfile.write(chunk)
                    left -= len(chunk)

    def do_GET(self) -> None:
        self._serve(True)

    def do_HEAD(self) -> None:
        self._serve(False)


HELPER = """
import asyncio, sys
from pathlib import Path
from appliance.media.nbd import UrlStream
from appliance.targets.facets import MediaSpec
from appliance.targets.lun import LunMedia

async def main():
    stream = await UrlStream.open(sys.argv[1])
    lun = LunMedia(Path(sys.argv[2]))
    await lun.insert(MediaSpec(stream.device, "cdrom", True, sys.argv[1]))
    print(stream.device, stream.size, flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    await lun.eject()
    await stream.close()
    print("closed", flush=True)

asyncio.run(main())
"""


@timeout(180)
def test_a_url_streams_onto_the_lun_through_nbd() -> None:
    """The streaming engine for real, as root (the helper's checks in-process; the next test
    is the hardened service through ipkvm-nbd@.service)."""
    assert Path("/sys/module/nbd").is_dir(), "the nbd kernel module is not loaded"
    src = Path("/var/tmp/stream.iso")
    size = 12 * (1 << 20)
    make_image(src, size, "STREAMED")
    _Ranges.data_path, _Ranges.seen = src, []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ranges)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/stream.iso"
    helper = subprocess.Popen(
        ["/opt/ipkvm/bin/python", "-c", HELPER, url, str(LUN)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert helper.stdout is not None and helper.stdin is not None
        line = helper.stdout.readline().split()
        assert line, helper.stderr.read() if helper.stderr else "helper died"
        device, announced = line[0], int(line[1])
        assert device.startswith("/dev/nbd") and announced == size
        assert (LUN / "file").read_text().strip() == device
        disk = wait_for(usb_cdroms, 60, "the gadget's CD-ROM on the host side")[0]
        wait_for(lambda: size_of(disk) == size, 60, f"/dev/{disk} streamed from {url}")
        assert read_at(disk, size - SECTOR) == LAST
        assert read_at(disk, 16 * SECTOR)[40:48] == b"STREAMED"
        # every read was a range request (HEAD asks for the size), never the whole file
        gets = [r for method, r in _Ranges.seen if method == "GET"]
        assert len(gets) >= 2 and all(r and r.startswith("bytes=") for r in gets), gets
        helper.stdin.write("\n")
        helper.stdin.flush()
        assert helper.stdout.readline().strip() == "closed"
        assert helper.wait(timeout=30) == 0
        assert (LUN / "file").read_text().strip() == ""
    finally:
        if helper.poll() is None:
            helper.kill()
            helper.wait()
        eject()
        subprocess.run(["nbd-client", "-d", "/dev/nbd0"], capture_output=True)
        server.shutdown()
        src.unlink()


HELPER_SOCKET = Path("/run/ipkvm-nbd.sock")


def ask_helper(line: str) -> str:
    """One request to ipkvm-nbd.socket as the service's user (what the service can do)."""
    code = (
        "import socket, sys\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        f"s.connect({str(HELPER_SOCKET)!r})\n"
        "s.sendall(sys.argv[1].encode() + b'\\n')\n"
        "print(s.makefile().readline().strip())\n"
    )
    done = subprocess.run(
        ["/usr/bin/python3", "-c", code, line],
        user="ipkvm",
        group="ipkvm",
        extra_groups=[],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@timeout(120)
def test_the_service_streams_a_url() -> None:
    """ipkvm.service (only CAP_NET_BIND_SERVICE) streams through ipkvm-nbd@.service."""
    st = HELPER_SOCKET.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (0, pwd.getpwnam("ipkvm").pw_gid, 0o660)
    api = Api()
    assert api.get("/api/media")["streaming"] is None
    # the helper does nothing but connect/disconnect /dev/nbdN to a socket of the caller's (every
    # refusal is in tests/test_nbd_helper.py; each request costs a Python start, 2-9 s under TCG)
    for bad in ("connect /run/systemd/private", "disconnect /dev/sda"):
        assert ask_helper(bad).startswith("error "), bad
    src = Path("/var/tmp/stream2.iso")
    size = 4 * (1 << 20)
    make_image(src, size, "SERVICE")
    _Ranges.data_path, _Ranges.seen = src, []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ranges)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/stream2.iso"
        code, body, _ = api.request("POST", "/api/media/attach", {"url": url, "transfer": "stream"})
        assert code == 200, body
        device = (LUN / "file").read_text().strip()
        assert device.startswith("/dev/nbd"), device
        assert api.get("/api/media")["url"] == url
        disk = wait_for(usb_cdroms, 60, "the gadget's CD-ROM on the host side")[0]
        wait_for(lambda: size_of(disk) == size, 60, f"/dev/{disk} streamed by the service")
        assert read_at(disk, size - SECTOR) == LAST
        assert read_at(disk, 16 * SECTOR)[40:47] == b"SERVICE"
        gets = [r for method, r in _Ranges.seen if method == "GET"]
        assert gets and all(r and r.startswith("bytes=") for r in gets), gets
        api.post("/api/media/detach", {})
        assert (LUN / "file").read_text().strip() == ""
        nbd = Path("/sys/block") / Path(device).name
        wait_for(lambda: int((nbd / "size").read_text()) == 0, 30, f"{device} disconnected")
    finally:
        eject()
        server.shutdown()
        src.unlink()


@timeout(120)
def test_without_the_helper_the_service_says_why_and_downloads() -> None:
    subprocess.run(["systemctl", "stop", "ipkvm-nbd.socket"], check=True)
    api = Api()
    src = Path("/var/tmp/fallback.iso")
    make_image(src, 1 << 20, "FALLBACK")
    _Ranges.data_path, _Ranges.seen = src, []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ranges)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert "NBD helper" in api.get("/api/media")["streaming"]
        url = f"http://127.0.0.1:{server.server_address[1]}/fallback.iso"
        code, body, _ = api.request("POST", "/api/media/attach", {"url": url, "transfer": "stream"})
        assert code == 409 and b"NBD helper" in body, body
        code, body, _ = api.request("POST", "/api/media/attach", {"url": url})
        assert code in (200, 202), body
        wait_for(
            lambda: (LUN / "file").read_text().strip() == str(MEDIA / "fallback.iso"),
            60,
            "the downloaded image in the drive",
        )
    finally:
        eject()
        subprocess.run(["systemctl", "start", "ipkvm-nbd.socket"], check=True)
        server.shutdown()
        src.unlink()
        Api().request("DELETE", "/api/media/images/fallback.iso")
