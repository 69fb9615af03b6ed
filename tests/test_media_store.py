"""The image store on a temp dir: names, busy marks, transfers that end every way, checksums
that go stale, and a cancelled download leaving nothing behind."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import pytest
from aiohttp import web

from appliance.jobs import JobRunner
from appliance.media.errors import ImageBusy, ImageNotFound, InvalidName
from appliance.media.names import MAX_NAME, check_name
from appliance.media.store import ImageStore, OffsetMismatch
from appliance.mediactl import MediaControl
from appliance.targets.demo.media import DemoMedia

MiB = 1 << 20


@pytest.mark.parametrize(
    "name",
    ["", ".", "..", ".x", "a/b", "a\\b", "x" * (MAX_NAME + 1), "é" * 101, "a\nb", " a", "a\x7f"],
)
def test_bad_names(name: str) -> None:
    with pytest.raises(InvalidName):
        check_name(name)


@pytest.mark.parametrize("name", ["debian-12.7.0-amd64-netinst.iso", "Win 11 (x64).iso", "ä"])
def test_good_names(name: str) -> None:
    assert check_name(name) == name


def store(tmp_path: Path, **kw: int) -> ImageStore:
    s = ImageStore(tmp_path / "media", max_size=kw.get("max_size", 64 * MiB), reserve=0)
    s.prepare()
    return s


async def test_one_transfer_per_name_and_no_delete_meanwhile(tmp_path: Path) -> None:
    s = store(tmp_path)
    t = s.begin("a.iso", total=10)
    with pytest.raises(ImageBusy):
        s.begin("a.iso")
    with pytest.raises(ImageBusy):
        s.delete("a.iso")
    assert s.info("a.iso").state == "transferring"  # type: ignore[union-attr]
    await t.write(b"01234")
    await t.suspend()
    assert s.info("a.iso").state == "incomplete"  # type: ignore[union-attr]
    with pytest.raises(OffsetMismatch) as exc:
        s.begin("a.iso", start=3, total=10)
    assert exc.value.info == {"offset": 5}
    t = s.begin("a.iso", start=5, total=10)
    await t.write(b"56789")
    info = await t.finish()
    assert info.state == "ready" and info.sha256 is None  # resumed: computed in the background
    assert await s.checksum("a.iso") == hashlib.sha256(b"0123456789").hexdigest()
    assert s.info("a.iso").sha256 is not None  # type: ignore[union-attr]
    # the file changes behind the store's back: the old checksum is not shown
    path = s.path("a.iso")
    path.write_bytes(b"changed")
    os.utime(path, ns=(1, 1))
    assert s.info("a.iso").sha256 is None  # type: ignore[union-attr]
    t = s.begin("b.iso")
    await t.write(b"x")
    await t.abort()
    assert s.info("b.iso") is None
    assert sorted(p.name for p in s.root.iterdir()) == [".a.iso.sha256", "a.iso"]


async def test_listing_skips_what_is_not_an_image(tmp_path: Path) -> None:
    s = store(tmp_path)
    (s.root / "dir.iso").mkdir()
    (s.root / "link.iso").symlink_to(tmp_path)
    (s.root / ".hidden").write_bytes(b"x")
    (s.root / "ok.img").write_bytes(b"x" * 4096)
    assert [i.name for i in s.list()] == ["ok.img"]
    assert s.name_of(s.root / "ok.img") == "ok.img"
    assert s.name_of(tmp_path / "ok.img") is None
    with pytest.raises(ImageNotFound):
        s.image_path("missing.iso")
    with pytest.raises(InvalidName):
        s.image_path("dir.iso")


async def test_a_cancelled_download_leaves_nothing(tmp_path: Path) -> None:
    started = asyncio.Event()
    release = asyncio.Event()

    async def slow(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Length": str(8 * MiB)})
        await resp.prepare(request)
        await resp.write(bytes(2 * MiB))
        started.set()
        await release.wait()
        return resp

    app = web.Application()
    app.router.add_get("/slow.iso", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/slow.iso"
    jobs = JobRunner()
    s = store(tmp_path)
    control = MediaControl(s, DemoMedia(), jobs)
    try:
        job = control.fetch(url, "slow.iso")
        await asyncio.wait_for(started.wait(), 10)
        jobs.cancel(job.id)
        await jobs.stopped([job])
        assert job.status == "cancelled"
        assert list(s.root.iterdir()) == []
        assert s.busy("slow.iso") is None
    finally:
        release.set()
        await runner.cleanup()
