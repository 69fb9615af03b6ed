"""Connection limits of the real server on 127.0.0.1 (``appliance.cli.serve``, as ``ipkvm serve``
runs it): a half-sent request is closed after the header time-out, an idle keep-alive connection
after its time-out, idle sockets at the connection cap neither lock out ``/api/health`` nor
disturb a logged-in admin's WebSocket, and with RLIMIT_NOFILE at 128 the process stays healthy
and its log quiet under 150 idle connections."""

from __future__ import annotations

import asyncio
import contextlib
import resource
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from appliance.auth import AuthStore
from appliance.config import load_config
from tests.conftest import basic_header, free_port

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Served:
    url: str
    port: int
    password: str


async def healthy(url: str) -> int:
    """GET /api/health on a connection of its own; the status (0: no answer in 3 s)."""
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s:
            async with s.get(f"{url}/api/health", timeout=aiohttp.ClientTimeout(total=3)) as r:
                return r.status
    except (aiohttp.ClientError, TimeoutError):
        return 0


@contextlib.asynccontextmanager
async def served(tmp_path: Path, server_toml: str) -> AsyncIterator[Served]:
    """``serve(config)`` in this event loop, with ``[server]`` keys from *server_toml*."""
    from appliance.cli.serve import serve

    port = free_port()
    cfg = tmp_path / "ipkvm.toml"
    cfg.write_text(f'[server]\nlisten = "127.0.0.1:{port}"\n{server_toml}')
    state = tmp_path / "state"
    password = AuthStore(state).ensure_admin()
    assert password
    config = load_config(cfg).with_overrides(state_dir=state, target="demo")
    task = asyncio.create_task(serve(config))
    url = f"http://127.0.0.1:{port}"
    loop = asyncio.get_running_loop()
    try:
        for _ in range(200):  # start-up: a few seconds at most
            assert not task.done(), task.exception()
            if await healthy(url) == 200:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the server did not come up")
        yield Served(url, port, password)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        loop.set_exception_handler(None)


async def closed_by_server(reader: asyncio.StreamReader, within: float) -> None:
    """Read (and drop) until the server closes the connection; fail after *within* seconds."""
    async with asyncio.timeout(within):
        while await reader.read(4096):
            pass


async def test_half_sent_request_is_closed_after_the_header_timeout(tmp_path: Path) -> None:
    async with served(tmp_path, "header_timeout = 1\n") as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Slow")
        await writer.drain()
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await closed_by_server(reader, within=5)
        took = loop.time() - t0
        writer.close()
        assert 0.8 < took < 4, took
        assert await healthy(srv.url) == 200


async def test_idle_keepalive_connection_is_closed(tmp_path: Path) -> None:
    async with served(tmp_path, "keepalive_timeout = 1\n") as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
        status = await reader.readline()
        assert status.startswith(b"HTTP/1.1 200"), status
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await closed_by_server(reader, within=5)
        assert loop.time() - t0 < 4
        writer.close()


async def ws_pong(ws: aiohttp.ClientWebSocketResponse, t: int) -> None:
    await ws.send_json({"type": "ping", "t": t})
    async with asyncio.timeout(5):
        while (await ws.receive_json())["type"] != "pong":
            pass


async def test_idle_sockets_at_the_cap_leave_health_and_the_admin_alone(tmp_path: Path) -> None:
    """Cap 8: 20 idle sockets (evicted oldest-first, or timed out) do not lock anyone out; with
    every slot serving a WebSocket a newcomer gets a quick 503, and a freed slot is reused."""
    async with served(tmp_path, "max_connections = 8\nheader_timeout = 1\n") as srv:
        async with aiohttp.ClientSession(headers=basic_header("admin", srv.password)) as admin:
            ws = await admin.ws_connect(f"{srv.url}/api/ws")
            await ws_pong(ws, 1)
            idle = [await asyncio.open_connection("127.0.0.1", srv.port) for _ in range(20)]
            assert await healthy(srv.url) == 200
            await ws_pong(ws, 2)
            async with asyncio.timeout(10):  # every idle socket: evicted or timed out
                await asyncio.gather(*(closed_by_server(r, within=10) for r, _ in idle))
            for _, w in idle:
                w.close()
            assert await healthy(srv.url) == 200
            await ws_pong(ws, 3)

            # Every slot busy with a WebSocket (not evictable): a newcomer gets a 503 at once.
            others = [await admin.ws_connect(f"{srv.url}/api/ws") for _ in range(7)]
            async with asyncio.timeout(5):
                assert await healthy(srv.url) == 503
            await others.pop().close()
            for _ in range(100):  # the slot frees when the server has seen the close
                if (status := await healthy(srv.url)) != 503:
                    break
                await asyncio.sleep(0.05)
            assert status == 200
            await ws_pong(ws, 4)
            for other in others:
                await other.close()
            await ws.close()


def _low_fd_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128))


async def test_150_idle_connections_under_a_128_fd_limit(tmp_path: Path) -> None:
    """Defaults only (no configuration file): what the probe of the old release did."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    err = tmp_path / "stderr.txt"
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    with err.open("w") as err_file:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "appliance", "serve", "--target", "demo",
            "--listen", f"127.0.0.1:{port}", "--state-dir", str(tmp_path / "state"),
            cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=err_file,
            preexec_fn=_low_fd_limit,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            async with asyncio.timeout(60):
                while b"password:" not in (line := await proc.stdout.readline()):
                    assert line, "serve exited early"
            for _ in range(150):
                idle.append(await asyncio.open_connection("127.0.0.1", port))
            for _ in range(5):  # health answers now, and keeps answering
                assert await healthy(url) == 200
        finally:
            for _, w in idle:
                w.close()
            proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(20):
                await proc.wait()
    log = err.read_text()
    assert proc.returncode == 0, log
    assert "Traceback" not in log, log[:3000]
    assert len(log.splitlines()) < 20, log[:3000]
