"""Virtual media through the real API on a real server: streaming uploads (complete, resumed,
cut off, oversize, disk full), names and symbolic links refused, attach/detach against a gadget
LUN tree in a temp dir (hardware target) and the demo drive, and URL downloads from a local
HTTP server."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from appliance.media.iso9660 import tiny_iso
from hid import gadget
from tests.conftest import Server, start_server, until

MiB = 1 << 20


def image_bytes(size: int, seed: int = 1) -> bytes:
    return hashlib.sha256(bytes([seed])).digest() * (size // 32) + bytes(size % 32)


async def chunks(data: bytes, step: int = 256 * 1024) -> AsyncIterator[bytes]:
    for i in range(0, len(data), step):
        yield data[i : i + step]


def media_dir(server: Server) -> Path:
    return server.state_dir / "media"


def http_for(server: Server) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(base_url=server.url, headers=server.basic())


async def listing(http: aiohttp.ClientSession) -> dict[str, dict[str, Any]]:
    async with http.get("/api/media/images") as resp:
        assert resp.status == 200
        return {i["name"]: i for i in (await resp.json())["images"]}


async def test_upload_streams_lists_and_deletes(server: Server) -> None:
    data = image_bytes(3 * MiB + 123)
    async with http_for(server) as http:
        async with http.put("/api/media/images/disk one.img", data=chunks(data)) as resp:
            assert resp.status == 201, await resp.text()
            body = await resp.json()
        assert body["size"] == len(data) and body["state"] == "ready"
        assert body["sha256"] == hashlib.sha256(data).hexdigest()
        assert (media_dir(server) / "disk one.img").read_bytes() == data
        assert (await listing(http))["disk one.img"]["sha256"] == body["sha256"]
        # a complete image is never overwritten by another upload
        async with http.put("/api/media/images/disk one.img", data=b"x") as resp:
            assert resp.status == 409
            assert "exists" in (await resp.json())["error"]
        async with http.delete("/api/media/images/disk one.img") as resp:
            assert resp.status == 200
        async with http.delete("/api/media/images/disk one.img") as resp:
            assert resp.status == 404
        assert await listing(http) == {}


async def test_resume_with_content_range(server: Server) -> None:
    data = image_bytes(5 * MiB + 7, seed=2)
    cut = 2 * MiB + 3
    total = len(data)
    async with http_for(server) as http:
        head = {"Content-Range": f"bytes 0-{cut - 1}/{total}"}
        async with http.put("/api/media/images/r.iso", data=data[:cut], headers=head) as resp:
            assert resp.status == 200, await resp.text()
            assert (await resp.json())["state"] == "incomplete"
        # until it is complete the image does not exist under its name
        assert not (media_dir(server) / "r.iso").exists()
        async with http.get("/api/media/images/r.iso") as resp:
            info = await resp.json()
        assert info == {**info, "size": cut, "state": "incomplete", "sha256": None}
        async with http.post("/api/media/attach", json={"image": "r.iso"}) as resp:
            assert resp.status == 409 and "incomplete" in (await resp.json())["error"]
        # resuming from anywhere but the end of what is there is refused, with the offset
        wrong = {"Content-Range": f"bytes 100-{total - 1}/{total}"}
        async with http.put("/api/media/images/r.iso", data=data[100:], headers=wrong) as resp:
            assert resp.status == 409
            assert (await resp.json())["offset"] == cut
        rest = {"Content-Range": f"bytes {cut}-{total - 1}/{total}"}
        async with http.put("/api/media/images/r.iso", data=data[cut:], headers=rest) as resp:
            assert resp.status == 201, await resp.text()
        assert (media_dir(server) / "r.iso").read_bytes() == data
        appliance: Any = server.appliance
        want = hashlib.sha256(data).hexdigest()

        def known() -> bool:
            info = appliance.media.store.info("r.iso")
            return info is not None and info.sha256 == want

        # the checksum of a resumed upload is computed from the file afterwards
        await until(appliance.events.add, known, "the checksum of the resumed image")


async def _send_partial(url: str, auth: str, path: str, total: int, send: bytes) -> None:
    """An upload whose connection dies after *send* of *total* bytes."""
    host, port = url.removeprefix("http://").split(":")
    _reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        f"PUT {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {total}\r\n\r\n".encode()
    )
    writer.write(send)
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def test_a_lost_connection_leaves_an_incomplete_image_that_resumes(server: Server) -> None:
    data = image_bytes(4 * MiB, seed=3)
    sent = 3 * MiB
    appliance: Any = server.appliance
    store = appliance.media.store
    await _send_partial(
        server.url,
        server.basic()["Authorization"],
        "/api/media/images/cut.img",
        len(data),
        data[:sent],
    )

    def settled() -> bool:
        info = store.info("cut.img")
        return info is not None and info.state == "incomplete"

    await until(appliance.events.add, settled, "the cut upload to be kept as incomplete")
    assert not (media_dir(server) / "cut.img").exists()
    async with http_for(server) as http:
        have = (await listing(http))["cut.img"]
        assert have["state"] == "incomplete" and 0 < have["size"] <= sent
        start = have["size"]
        rest = {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"}
        async with http.put("/api/media/images/cut.img", data=data[start:], headers=rest) as r:
            assert r.status == 201, await r.text()
    assert (media_dir(server) / "cut.img").read_bytes() == data


async def test_oversize_and_no_space(tmp_path: Path) -> None:
    srv, runner = await start_server(tmp_path, "[media]\nmax_image_mb = 2\n")
    try:
        async with http_for(srv) as http:
            big = image_bytes(3 * MiB)
            # announced: refused before a byte is written
            async with http.put("/api/media/images/big.iso", data=big) as resp:
                assert resp.status == 413
                assert "limit" in (await resp.json())["error"]
            # chunked (no length): refused once it passes the limit, and nothing is kept
            async with http.put("/api/media/images/big.iso", data=chunks(big)) as resp:
                assert resp.status == 413
            assert await listing(http) == {}
            assert [p.name for p in media_dir(srv).iterdir()] == []
    finally:
        await runner.cleanup()
    free = os.statvfs(tmp_path).f_bavail * os.statvfs(tmp_path).f_frsize
    reserve = free // MiB + 10  # more than is free: nothing fits
    (tmp_path / "b").mkdir()
    srv, runner = await start_server(tmp_path / "b", f"[media]\nreserve_mb = {reserve}\n")
    try:
        async with http_for(srv) as http:
            async with http.put("/api/media/images/a.iso", data=b"x" * 1000) as resp:
                assert resp.status == 507
                assert "not enough space" in (await resp.json())["error"]
    finally:
        await runner.cleanup()


@pytest.fixture
def small_disk(tmp_path: Path) -> Any:
    """A 4 MiB tmpfs (needs root to mount): a disk that really fills up."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


async def test_disk_full_mid_upload_keeps_the_part(tmp_path: Path, small_disk: Path) -> None:
    toml = f'[media]\ndir = "{small_disk / "media"}"\nreserve_mb = 0\n'
    srv, runner = await start_server(tmp_path, toml)
    try:
        async with http_for(srv) as http:
            # chunked: no size up front, so the disk fills during the upload
            async with http.put(
                "/api/media/images/full.iso", data=chunks(image_bytes(8 * MiB))
            ) as r:
                assert r.status == 507, await r.text()
                body = await r.json()
            assert "disk is full" in body["error"] and body["offset"] > 0
            info = (await listing(http))["full.iso"]
            assert info["state"] == "incomplete"
            assert not (small_disk / "media" / "full.iso").exists()
            # announced: refused up front
            async with http.put("/api/media/images/b.iso", data=image_bytes(6 * MiB)) as r:
                assert r.status == 507
    finally:
        await runner.cleanup()


async def test_names_traversal_and_symlinks_are_refused(server: Server, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"secret")
    async with http_for(server) as http:
        for name in [".hidden", ".x.part", "a%5Cb", "x" * 201, "%20lead", "tab%09"]:
            async with http.put(f"/api/media/images/{name}", data=b"x") as resp:
                assert resp.status == 400, (name, await resp.text())
        # ".." is resolved by the client or the router before it is a name: never a file
        async with http.put("/api/media/images/..", data=b"x") as resp:
            assert resp.status in (400, 404)
        async with http.put("/api/media/images/..%2F..%2Fescape", data=b"x") as resp:
            assert resp.status in (400, 404)
        assert not (server.state_dir / "escape").exists()
        assert not (server.state_dir.parent / "escape").exists()
        media_dir(server).mkdir(exist_ok=True)
        (media_dir(server) / "link.iso").symlink_to(secret)
        assert "link.iso" not in await listing(http)
        async with http.get("/api/media/images/link.iso") as resp:
            assert resp.status == 400 and "symbolic link" in (await resp.json())["error"]
        async with http.post("/api/media/attach", json={"image": "link.iso"}) as resp:
            assert resp.status == 400
        async with http.put("/api/media/images/link.iso", data=b"overwrite") as resp:
            assert resp.status == 400
        async with http.delete("/api/media/images/link.iso") as resp:
            assert resp.status == 400
        async with http.post("/api/media/attach", json={"image": "../secret"}) as resp:
            assert resp.status == 400
    assert secret.read_bytes() == b"secret"


def lun_tree(tmp_path: Path) -> tuple[str, Path]:
    """A gadget with mass storage built in a plain temp dir (what ``ipkvm gadget setup`` makes
    in configfs), plus the kernel's ``forced_eject``; the config that points the appliance at it."""
    root = tmp_path / "configfs"
    root.mkdir()
    cfg = gadget.GadgetConfig(root=root, mass_storage=gadget.MassStorage())
    gadget.setup(cfg, udc=None)
    lun = cfg.path / "functions" / gadget.MASS_STORAGE / "lun.0"
    (lun / "forced_eject").write_text("")
    toml = (
        '[target]\nkind = "hardware"\n[video]\nsource = "demo"\n[hid]\noutput = "demo"\n'
        f'[gadget]\nmass_storage = true\nroot = "{root}"\n'
        f'[media]\ndir = "{tmp_path / "images"}"\n'
    )
    return toml, lun


async def test_attach_detach_on_the_gadget_lun(tmp_path: Path) -> None:
    toml, lun = lun_tree(tmp_path)
    srv, runner = await start_server(tmp_path, toml)
    try:
        async with http_for(srv) as http:
            async with http.put("/api/media/images/a.iso", data=tiny_iso("ALPHA")) as r:
                assert r.status == 201
            async with http.put("/api/media/images/b.img", data=image_bytes(MiB)) as r:
                assert r.status == 201
            async with http.post("/api/media/attach", json={"image": "nope.iso"}) as r:
                assert r.status == 404
            # a CD-ROM is read-only whatever the request says
            attach = {"image": "a.iso", "kind": "cdrom", "read_only": False}
            async with http.post("/api/media/attach", json=attach) as r:
                assert r.status == 200, await r.text()
                status = await r.json()
            path = str(tmp_path / "images" / "a.iso")
            assert status["inserted"] and status["image"] == "a.iso"
            assert status["kind"] == "cdrom" and status["read_only"] is True
            assert (lun / "file").read_text().strip() == path
            assert (lun / "cdrom").read_text().strip() == "1"
            assert (lun / "ro").read_text().strip() == "1"
            # the drive holds one medium; the attached image is neither removed nor rewritten
            async with http.post("/api/media/attach", json={"image": "b.img"}) as r:
                assert r.status == 409 and "inserted" in (await r.json())["error"]
            async with http.delete("/api/media/images/a.iso") as r:
                assert r.status == 409 and "attached" in (await r.json())["error"]
            async with http.put("/api/media/images/a.iso", data=b"x") as r:
                assert r.status == 409
            async with http.get("/api/state") as r:
                assert (await r.json())["media"]["image"] == "a.iso"
            async with http.post("/api/media/detach") as r:
                assert r.status == 200 and (await r.json())["inserted"] is False
            assert (lun / "forced_eject").read_text().strip() == "1"
            assert (lun / "file").read_text().strip() == ""
            # a flash drive read-write: the host must enumerate again to see a disk, so the
            # gadget is unbound and bound again around the change (and left bound)
            udc = lun.parents[2] / "UDC"
            udc.write_text("dummy_udc.0\n")
            attach = {"image": "b.img", "kind": "flash", "read_only": False}
            async with http.post("/api/media/attach", json=attach) as r:
                assert r.status == 200
            assert udc.read_text().strip() == "dummy_udc.0"
            assert (lun / "cdrom").read_text().strip() == "0"
            assert (lun / "ro").read_text().strip() == "0"
            async with http.delete("/api/media/images/a.iso") as r:
                assert r.status == 200
    finally:
        await runner.cleanup()
    # a restarted service finds the medium still in the drive and keeps it busy
    (tmp_path / "again").mkdir()
    srv, runner = await start_server(tmp_path / "again", toml)
    try:
        async with http_for(srv) as http:
            async with http.get("/api/media") as r:
                assert (await r.json())["image"] == "b.img"
            async with http.delete("/api/media/images/b.img") as r:
                assert r.status == 409
    finally:
        await runner.cleanup()


async def test_a_cd_over_the_kernels_cap_is_refused_but_flash_works(tmp_path: Path) -> None:
    toml, lun = lun_tree(tmp_path)
    images = tmp_path / "images"
    images.mkdir(mode=0o700)
    with (images / "win.iso").open("wb") as f:  # sparse: 5 GiB on a few blocks
        f.truncate(5 << 30)
    # "on": the cap applies whatever module this host runs ("auto" asks the loaded module, and a
    # host with ipkvm's patched usb_f_mass_storage would accept the CD)
    toml = toml.replace("[media]\n", '[media]\ncdrom_size_cap = "on"\n')
    srv, runner = await start_server(tmp_path, toml)
    try:
        async with http_for(srv) as http:
            async with http.post("/api/media/attach", json={"image": "win.iso"}) as r:
                assert r.status == 409
                assert "1151999 sectors" in (await r.json())["error"]
            assert (lun / "file").read_text().strip() == ""
            async with http.post(
                "/api/media/attach", json={"image": "win.iso", "kind": "flash"}
            ) as r:
                assert r.status == 200
            assert (lun / "file").read_text().strip() == str(images / "win.iso")
    finally:
        await runner.cleanup()


async def test_hid_only_gadget_has_no_media_routes(tmp_path: Path) -> None:
    toml, _ = lun_tree(tmp_path)
    srv, runner = await start_server(tmp_path, toml.replace("mass_storage = true", ""))
    try:
        async with http_for(srv) as http:
            async with http.get("/api/media") as r:
                assert r.status == 404
            async with http.get("/api/state") as r:
                body = await r.json()
            assert body["target"]["facets"]["media"] is False
    finally:
        await runner.cleanup()


async def test_demo_drive_reads_the_volume_label(server: Server) -> None:
    events: list[dict[str, Any]] = []
    appliance: Any = server.appliance
    stop = appliance.events.add(events.append)
    try:
        async with http_for(server) as http:
            async with http.put("/api/media/images/debian.iso", data=tiny_iso("DEBIAN 12")) as r:
                assert r.status == 201
            async with http.post("/api/media/attach", json={"image": "debian.iso"}) as r:
                status = await r.json()
            assert status["volume_label"] == "DEBIAN 12"
            assert any(e["type"] == "media" and e.get("image") == "debian.iso" for e in events)
            async with http.post("/api/media/detach") as r:
                assert (await r.json())["inserted"] is False
    finally:
        stop()


# --------------------------------------------------------------------------- URL downloads
async def file_server(tmp_path: Path, files: dict[str, bytes]) -> tuple[str, web.AppRunner]:
    """A local HTTP server with Content-Length and range support (aiohttp's static files)."""
    root = tmp_path / "www"
    root.mkdir()
    for name, data in files.items():
        (root / name).write_bytes(data)
    app = web.Application()
    app.router.add_static("/", root)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return f"http://127.0.0.1:{port}", runner


async def fetch(http: aiohttp.ClientSession, **body: Any) -> dict[str, Any]:
    async with http.post("/api/media/fetch", json={**body, "wait": True}) as resp:
        assert resp.status == 200, await resp.text()
        job: dict[str, Any] = await resp.json()
        return job


async def test_fetch_from_a_url_with_checksum(server: Server, tmp_path: Path) -> None:
    data = image_bytes(3 * MiB + 5, seed=9)
    base, www = await file_server(tmp_path, {"netinst.iso": data})
    events: list[dict[str, Any]] = []
    appliance: Any = server.appliance
    stop = appliance.events.add(events.append)
    try:
        async with http_for(server) as http:
            job = await fetch(
                http, url=f"{base}/netinst.iso", sha256=hashlib.sha256(data).hexdigest()
            )
            assert job["status"] == "done", job
            assert job["result"]["name"] == "netinst.iso"
            assert (media_dir(server) / "netinst.iso").read_bytes() == data
            progress = [e for e in events if e["type"] == "job" and e["kind"] == "media_fetch"]
            assert progress[-1]["completed"] == len(data) and progress[-1]["total"] == len(data)
            # a wrong checksum: failed, and nothing is left behind
            job = await fetch(http, url=f"{base}/netinst.iso", name="bad.iso", sha256="0" * 64)
            assert job["status"] == "failed" and "SHA-256 mismatch" in job["error"]
            job = await fetch(http, url=f"{base}/missing.iso", name="missing.iso")
            assert job["status"] == "failed" and "404" in job["error"]
            assert set(await listing(http)) == {"netinst.iso"}
            assert sorted(p.name for p in media_dir(server).iterdir()) == [
                ".netinst.iso.sha256",
                "netinst.iso",
            ]
            async with http.post("/api/media/fetch", json={"url": f"{base}/netinst.iso"}) as r:
                assert r.status == 409
            async with http.post("/api/media/fetch", json={"url": "file:///etc/passwd"}) as r:
                assert r.status == 400
    finally:
        stop()
        await www.cleanup()
