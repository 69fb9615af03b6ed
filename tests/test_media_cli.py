"""``ipkvm media ...`` against a real server: upload (fresh and resumed), list, attach conflicts,
detach, rm, fetch from a local HTTP server; errors exit non-zero with the server's reason."""

from __future__ import annotations

import asyncio
import hashlib
import sys
from pathlib import Path
from typing import Any

import aiohttp

from appliance.auth import AuthStore
from tests.conftest import Server, ipkvm_cli
from tests.test_media_api import file_server, image_bytes

ROOT = Path(__file__).resolve().parent.parent
MiB = 1 << 20


async def test_cli_media(server: Server, tmp_path: Path) -> None:
    cli = ipkvm_cli(server, tmp_path, "cli-media")

    async def ipkvm(*args: str) -> tuple[int, str, str]:
        return await cli("media", *args)

    data = image_bytes(3 * MiB + 1, seed=5)
    src = tmp_path / "rescue.iso"
    src.write_bytes(data)
    # an interrupted upload of the first MiB: the CLI continues it from there
    cut = MiB
    async with aiohttp.ClientSession(base_url=server.url, headers=server.basic()) as http:
        head = {"Content-Range": f"bytes 0-{cut - 1}/{len(data)}"}
        async with http.put("/api/media/images/rescue.iso", data=data[:cut], headers=head) as r:
            assert r.status == 200
    code, out, err = await ipkvm("upload", str(src))
    assert code == 0, err
    assert "rescue.iso" in out and hashlib.sha256(data).hexdigest() not in out  # computed later
    assert (server.state_dir / "media" / "rescue.iso").read_bytes() == data
    code, out, _ = await ipkvm("list")
    assert code == 0 and "rescue.iso" in out and "ready" in out
    code, out, _ = await ipkvm("attach", "rescue.iso")
    assert code == 0 and "cdrom, read-only" in out
    code, _, err = await ipkvm("rm", "rescue.iso")
    assert code == 1 and "attached" in err
    code, _, err = await ipkvm("attach", "rescue.iso", "--rw")
    assert code == 2 and "--flash" in err
    code, out, _ = await ipkvm("status", "--json")
    status: dict[str, Any] = __import__("json").loads(out)
    assert status["image"] == "rescue.iso"
    assert (await ipkvm("detach"))[1] == "drive empty\n"
    assert (await ipkvm("rm", "rescue.iso"))[0] == 0
    code, _, err = await ipkvm("upload", str(tmp_path / "missing.iso"))
    assert code == 1 and "no such file" in err

    base, www = await file_server(tmp_path, {"fw.img": data[:MiB]})
    try:
        sha = hashlib.sha256(data[:MiB]).hexdigest()
        code, out, err = await ipkvm("fetch", f"{base}/fw.img", "--sha256", sha)
        assert code == 0, err
        assert "fw.img" in out and sha in out
        code, _, err = await ipkvm(
            "fetch", f"{base}/fw.img", "--name", "x.img", "--sha256", "1" * 64
        )
        assert code == 1 and "mismatch" in err
    finally:
        await www.cleanup()


async def test_cli_upload_shows_a_progress_bar_on_a_terminal(
    server: Server, tmp_path: Path
) -> None:
    import os
    import pty

    _, token = AuthStore(server.state_dir).create_token("cli-bar")
    src = tmp_path / "bar.img"
    src.write_bytes(image_bytes(4 * MiB, seed=8))
    leader, follower = pty.openpty()
    env = {"IPKVM_URL": server.url, "IPKVM_TOKEN": token, "HOME": str(tmp_path), "PATH": "/bin"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "appliance", "media", "upload", str(src),
        env=env, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=follower,
    )  # fmt: skip
    os.close(follower)
    out, _ = await proc.communicate()
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    assert proc.returncode == 0
    assert b"upload bar.img [" in shown and b"100%" in shown and b"4.0 MiB/4.0 MiB" in shown
    assert b"bar.img" in out
