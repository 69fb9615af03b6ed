"""Streaming an image from a URL without downloading it: nbdkit's curl plugin serving a local
HTTP server's file (with range requests) as NBD, read back with nbdcopy; a server without range
support refused; URL attach falling back to a download where the kernel cannot stream; and —
where the nbd module is loaded and we are root — the whole path to /dev/nbdN."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from appliance.media.iso9660 import tiny_iso, volume_label
from appliance.media.nbd import NbdExport, StreamFailed, UrlStream, probe, streaming_available
from tests.conftest import Server, until
from tests.test_media_api import http_for, image_bytes

MiB = 1 << 20

needs_nbdkit = pytest.mark.skipif(
    shutil.which("nbdkit") is None or shutil.which("nbdcopy") is None,
    reason="nbdkit and nbdcopy (scripts/system-deps) are not installed",
)


class RangeServer:
    """A local HTTP server for one file, recording each request's Range header; ``ranges``
    false makes it ignore them (always the whole file, 200)."""

    def __init__(self, data: bytes, *, ranges: bool = True) -> None:
        self.data = data
        self.ranges = ranges
        self.seen: list[str | None] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(request.headers.get("Range"))
        if not self.ranges:
            return web.Response(body=self.data)
        return await self._file(request)

    async def _file(self, request: web.Request) -> web.StreamResponse:
        header = request.http_range
        size = len(self.data)
        if request.headers.get("Range") is None:
            return web.Response(body=self.data, headers={"Accept-Ranges": "bytes"})
        start = header.start or 0
        stop = size if header.stop is None else min(header.stop, size)
        body = self.data[start:stop] if request.method == "GET" else b""
        return web.Response(
            status=206,
            body=body,
            headers={"Content-Range": f"bytes {start}-{stop - 1}/{size}", "Accept-Ranges": "bytes"},
        )

    async def __aenter__(self) -> RangeServer:
        app = web.Application()
        app.router.add_route("GET", "/{name}", self.handle)
        app.router.add_route("HEAD", "/{name}", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}/installer.iso"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


@needs_nbdkit
async def test_nbdkit_streams_the_url_with_range_requests(tmp_path: Path) -> None:
    data = image_bytes(8 * MiB + 2048, seed=7)
    async with RangeServer(data) as http:
        export = await NbdExport.start(http.url)
        try:
            out = tmp_path / "copy"
            proc = await asyncio.create_subprocess_exec(
                "nbdcopy", export.uri, str(out), stderr=asyncio.subprocess.PIPE
            )
            _, err = await proc.communicate()
            assert proc.returncode == 0, err.decode()
        finally:
            await export.stop()
        assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(data).digest()
        # block reads became HTTP range requests, never one download of the whole file
        ranged = [r for r in http.seen if r is not None and r.startswith("bytes=")]
        assert len(ranged) >= 2
        assert all(r is not None for r in http.seen[1:])
    assert not export.workdir.exists()


async def test_a_server_without_ranges_is_refused() -> None:
    async with RangeServer(b"x" * 4096, ranges=False) as http:
        with pytest.raises(StreamFailed, match="range requests"):
            await probe(http.url)
    async with RangeServer(b"x" * 4096) as http:
        assert await probe(http.url) == 4096


async def test_url_attach_downloads_where_it_cannot_stream(server: Server) -> None:
    iso = tiny_iso("RESCUE")
    async with RangeServer(iso) as web_server, http_for(server) as api:
        body: dict[str, Any] = {"url": web_server.url, "transfer": "download"}
        async with api.post("/api/media/attach", json=body) as r:
            assert r.status == 202, await r.text()
            job = await r.json()
        async with api.get(f"/api/jobs/{job['job']}") as r:
            job = await r.json()
        appliance: Any = server.appliance
        await _job_done(appliance, job["job"])
        async with api.get("/api/media") as r:
            status = await r.json()
        assert status["image"] == "installer.iso" and status["volume_label"] == "RESCUE"
        async with api.post("/api/media/detach") as r:
            assert r.status == 200
        # an image of that name is there now: attached again without a second download
        before = len(web_server.seen)
        async with api.post("/api/media/attach", json=body) as r:
            assert r.status == 200 and (await r.json())["image"] == "installer.iso"
        assert len(web_server.seen) == before
        async with api.post("/api/media/detach") as r:
            assert r.status == 200
        if streaming_available() is not None:
            stream = {"url": web_server.url, "transfer": "stream"}
            async with api.post("/api/media/attach", json=stream) as r:
                assert r.status == 409
                assert "cannot stream" in (await r.json())["error"]
        async with api.post("/api/media/attach", json={"url": "ftp://x/y.iso"}) as r:
            assert r.status == 400


async def _job_done(appliance: Any, job_id: int) -> None:
    await until(
        appliance.events.add, lambda: not appliance.jobs.get(job_id).running, "the download"
    )
    job = appliance.jobs.get(job_id)
    assert job.status == "done", job.as_dict()


@pytest.mark.skipif(
    streaming_available() is not None or os.geteuid() != 0,
    reason=f"kernel NBD unavailable here: {streaming_available() or 'not root'}",
)
async def test_a_url_becomes_a_block_device() -> None:
    size = 4 * MiB
    iso = tiny_iso("STREAMED", size=size)
    async with RangeServer(iso) as http:
        stream = await UrlStream.open(http.url)
        try:
            assert stream.size == size
            assert await asyncio.to_thread(volume_label, stream.device) == "STREAMED"

            def last_sector() -> bytes:
                with open(stream.device, "rb") as f:
                    f.seek(size - 2048)
                    return f.read(2048)

            assert await asyncio.to_thread(last_sector) == iso[-2048:]
        finally:
            await stream.close()


def test_tiny_iso_label_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "x.iso"
    path.write_bytes(b"\x33" * 512 + tiny_iso("HYBRID LABEL")[512:])  # an MBR does not matter
    assert volume_label(path) == "HYBRID LABEL"
    path.write_bytes(image_bytes(64 * 2048))
    assert volume_label(path) is None
    assert volume_label(tmp_path / "missing") is None


async def test_probe_reports_a_dead_server() -> None:
    with pytest.raises(StreamFailed):
        await probe("http://127.0.0.1:9/x.iso", timeout=2)
