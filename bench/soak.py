"""Soak: the demo appliance (its own process) under every kind of traffic for a long time.

    python bench/soak.py [--minutes 30] [--interval 30] [--warmup M] [--json F]
                         [--only mjpeg,h264,webrtc,ws,rest]

Viewers on every transport join and leave (MJPEG, H.264 over ``/api/stream.h264``, WebRTC with a
real aiortc peer, ``/api/ws`` input sockets), text is typed (``POST /api/hid/type``) and the
mouse moved every second, sessions log in and out, snapshots are taken. Every ``--interval``
seconds the appliance process is sampled: RSS (/proc/PID/status), open fds (/proc/PID/fd),
threads (/proc/PID/status) and asyncio tasks (``GET /api/debug/runtime``). Errors are non-2xx
answers, exceptions in the clients and ERROR lines in the appliance's log.

``--only`` runs one kind of client (or a comma-separated few) to find which one moves a figure:
``rest`` is typing, snapshots and logins together. Environment variables reach the appliance
process, so ``MALLOC_ARENA_MAX=... python bench/soak.py`` measures an allocator setting.

Warm-up: the first ``--warmup`` minutes (default: a fifth of the run, at least 1 minute) fill
caches, pools and lazily loaded parts (aiortc alone is ~18 MiB). At its end, and at the end of the
run, traffic pauses (every client finishes its cycle, then 3 s of quiet) and a *quiet* sample is
taken: the verdict compares the two. Goals: RSS growth <= 5 MiB, fds / tasks / threads the same
(fds within 2: aiohttp/aiortc pools), 0 errors. Traffic goes to 127.0.0.1 only; every loop is
bounded in time and count and the run stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.appliance_proc import Appliance, demo_config, start_appliance, table
from bench.viewers import login

MAX_CYCLES = 100_000
"""Upper bound of cycles per client loop, whatever the duration."""
RSS_GOAL_MIB = 5.0
FD_SLACK = 2


@dataclass
class Sample:
    t: float  # seconds since start
    phase: str  # "warmup" | "load" | "quiet"
    rss_mib: float
    fds: int
    threads: int
    tasks: int
    errors: int
    cycles: int
    heap_in_use: float | None = None  # glibc: MiB the program holds (a leak grows this)
    heap_free: float | None = None  # glibc: MiB freed but kept by malloc (fragmentation)
    heap_mmap: float | None = None  # glibc: MiB in mmapped blocks (large buffers, live)


def proc_counts(pid: int) -> tuple[float, int, int]:
    """RSS (MiB), open fds and threads of process *pid*, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = {line.split(":")[0]: line.split(":", 1)[1].split() for line in status}
    rss = int(fields["VmRSS"][0]) / 1024
    threads = int(fields["Threads"][0])
    fds = len(list(Path(f"/proc/{pid}/fd").iterdir()))
    return rss, fds, threads


@dataclass
class Soak:
    app: Appliance
    deadline: float
    session_id: str
    rng: random.Random = field(default_factory=lambda: random.Random(1))
    errors: list[str] = field(default_factory=list)
    cycles: int = 0
    active: int = 0
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    trace_top: int = 0  # > 0: print this many tracemalloc growth lines per sample

    @property
    def headers(self) -> dict[str, str]:
        return {"Cookie": f"ipkvm_session={self.session_id}"}

    def error(self, what: str) -> None:
        self.errors.append(f"{time.strftime('%H:%M:%S')} {what}")

    async def loop(
        self, name: str, cycle: Callable[[aiohttp.ClientSession], Awaitable[None]]
    ) -> None:
        """Run *cycle* until the deadline; each run at most 30 s, exceptions counted."""
        async with aiohttp.ClientSession(self.app.url, headers=self.headers) as session:
            for _ in range(MAX_CYCLES):
                await self.gate.wait()
                if time.monotonic() >= self.deadline:
                    return
                self.active += 1
                self.idle.clear()
                try:
                    async with asyncio.timeout(30):
                        await cycle(session)
                    self.cycles += 1
                except Exception as exc:
                    self.error(f"{name}: {type(exc).__name__}: {exc}")
                    await asyncio.sleep(1)
                finally:
                    self.active -= 1
                    if not self.active:
                        self.idle.set()

    def check(self, what: str, resp: aiohttp.ClientResponse) -> None:
        if not 200 <= resp.status < 300:
            self.error(f"{what}: HTTP {resp.status}")

    # ---------------------------------------------------------------- the clients
    async def mjpeg(self, s: aiohttp.ClientSession) -> None:
        stay = time.monotonic() + self.rng.uniform(1, 6)
        async with s.get("/api/stream.mjpeg") as resp:
            self.check("mjpeg", resp)
            while time.monotonic() < stay:
                await resp.content.readany()

    async def h264(self, s: aiohttp.ClientSession) -> None:
        stay = time.monotonic() + self.rng.uniform(1, 6)
        async with s.ws_connect("/api/stream.h264") as ws:
            while time.monotonic() < stay:
                msg = await ws.receive(timeout=5)
                if msg.type not in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
                    raise ConnectionError(f"h264 stream ended: {msg.type}")

    async def webrtc(self, s: aiohttp.ClientSession) -> None:
        from aiortc import RTCPeerConnection, RTCSessionDescription

        pc = RTCPeerConnection()
        try:
            pc.addTransceiver("video", direction="recvonly")
            channel = pc.createDataChannel("input")
            track: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            pc.on("track", lambda t: track.done() or track.set_result(t))
            await pc.setLocalDescription(await pc.createOffer())
            body = {"sdp": pc.localDescription.sdp, "type": "offer"}
            async with s.post("/api/webrtc/offer", json=body) as resp:
                self.check("webrtc offer", resp)
                answer = await resp.json()
            await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
            received = await asyncio.wait_for(track, 15)
            stay = time.monotonic() + self.rng.uniform(3, 8)
            while time.monotonic() < stay:
                await asyncio.wait_for(received.recv(), 5)
                if channel.readyState == "open":
                    x, y = self.rng.random(), self.rng.random()
                    channel.send(json.dumps({"type": "mouse", "x": x, "y": y}))
        finally:
            await pc.close()
        await asyncio.sleep(self.rng.uniform(2, 5))  # a few peers a minute: aiortc is costly

    async def input_ws(self, s: aiohttp.ClientSession) -> None:
        async with s.ws_connect("/api/ws") as ws:
            for _ in range(self.rng.randint(5, 40)):
                await ws.send_json(
                    {"type": "mouse", "x": self.rng.random(), "y": self.rng.random()}
                )
                await asyncio.sleep(0.1)
            if self.rng.random() < 0.3:
                # press and vanish: the server must release it
                await ws.send_json({"type": "key", "code": "ShiftLeft", "down": True})
                await ws.send_json({"type": "ping", "t": 1})
                with contextlib.suppress(TimeoutError):
                    while (await ws.receive_json(timeout=2)).get("type") != "pong":
                        pass
                transport = ws._response.connection.transport if ws._response.connection else None
                if transport is not None:
                    transport.abort()
                return
            await ws.send_json({"type": "ping", "t": 1})
            while True:
                msg = await ws.receive_json(timeout=5)
                if msg.get("type") == "error":
                    self.error(f"ws error event: {msg}")
                if msg.get("type") == "pong":
                    break

    async def typing(self, s: aiohttp.ClientSession) -> None:
        async with s.post("/api/hid/type", json={"text": "soak 123", "pacing_ms": 2}) as resp:
            self.check("type", resp)
        body = {"x": self.rng.random(), "y": self.rng.random()}
        async with s.post("/api/hid/mouse", json=body) as resp:
            self.check("mouse", resp)
        await asyncio.sleep(1)

    async def snapshots(self, s: aiohttp.ClientSession) -> None:
        async with s.get("/api/snapshot") as resp:
            self.check("snapshot", resp)
            await resp.read()
        async with s.get("/api/state") as resp:
            self.check("state", resp)
            await resp.read()
        await asyncio.sleep(2)

    async def logins(self, _s: aiohttp.ClientSession) -> None:
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(self.app.url, cookie_jar=jar) as s:
            body = {"user": "admin", "password": self.app.password}
            async with s.post("/api/auth/login", json=body) as resp:
                self.check("login", resp)
            async with s.get("/api/auth/me") as resp:
                self.check("me", resp)
            async with s.post("/api/auth/logout") as resp:
                self.check("logout", resp)
        await asyncio.sleep(5)

    # ---------------------------------------------------------------- sampling
    async def sample(self, t0: float, phase: str) -> Sample:
        rss, fds, threads = proc_counts(self.app.process.pid)
        query = f"?tracemalloc={self.trace_top}" if self.trace_top else ""
        async with aiohttp.ClientSession(self.app.url, headers=self.headers) as s:
            async with s.get("/api/debug/runtime" + query) as resp:
                runtime = await resp.json()
        trace = runtime.get("tracemalloc")
        if trace:
            print(f"  tracemalloc: {trace['traced_mib']} MiB traced", file=sys.stderr)
            for line in trace["top"]:
                print(f"    {line['diff_kib']:+9.1f} KiB {line['where']}", file=sys.stderr)
        errors = len(self.errors) + self.log_errors()
        heap = runtime.get("malloc") or {}
        return Sample(
            round(time.monotonic() - t0, 1),
            phase,
            round(rss, 2),
            fds,
            threads,
            runtime["tasks"],
            errors,
            self.cycles,
            heap.get("in_use"),
            heap.get("free"),
            heap.get("mmap"),
        )

    async def quiet_sample(self, t0: float) -> Sample:
        """Pause traffic (every client finishes its cycle), wait 3 s, sample, resume."""
        self.gate.clear()
        async with asyncio.timeout(60):
            if self.active:
                await self.idle.wait()
        await asyncio.sleep(3)
        sample = await self.sample(t0, "quiet")
        self.gate.set()
        return sample

    def log_errors(self) -> int:
        return sum(1 for line in self.app.output if " ERROR " in line or "Traceback" in line)


KINDS = ("mjpeg", "h264", "webrtc", "ws", "rest")
"""Client kinds ``--only`` selects from (``rest``: typing, snapshots and logins)."""


async def run(
    app: Appliance,
    minutes: float,
    interval: float,
    warmup: float,
    only: frozenset[str] = frozenset(KINDS),
    trace_top: int = 0,
) -> list[Sample]:
    t0 = time.monotonic()
    soak = Soak(app, t0 + minutes * 60, login(app.url, app.password), trace_top=trace_top)
    soak.gate.set()
    everything: dict[str, tuple[str, Callable[[aiohttp.ClientSession], Awaitable[None]]]] = {
        "mjpeg": ("mjpeg", soak.mjpeg),
        "mjpeg2": ("mjpeg", soak.mjpeg),
        "h264": ("h264", soak.h264),
        "webrtc": ("webrtc", soak.webrtc),
        "ws": ("ws", soak.input_ws),
        "ws2": ("ws", soak.input_ws),
        "typing": ("rest", soak.typing),
        "snapshots": ("rest", soak.snapshots),
        "logins": ("rest", soak.logins),
    }
    clients = {name: cycle for name, (kind, cycle) in everything.items() if kind in only}
    loops = [asyncio.create_task(soak.loop(n, c), name=f"soak-{n}") for n, c in clients.items()]
    samples: list[Sample] = []
    warm_end = t0 + warmup * 60
    warm_sampled = False
    try:
        while time.monotonic() < soak.deadline:
            await asyncio.sleep(min(interval, max(0.0, soak.deadline - time.monotonic())))
            now = time.monotonic()
            if not warm_sampled and now >= warm_end:
                samples.append(await soak.quiet_sample(t0))
                warm_sampled = True
            elif now < soak.deadline:
                phase = "warmup" if now < warm_end else "load"
                samples.append(await soak.sample(t0, phase))
            else:
                continue
            print(*_row(samples[-1]), file=sys.stderr, flush=True)
        async with asyncio.timeout(60):  # each client ends after its current cycle
            await asyncio.gather(*loops)
        samples.append(await soak.quiet_sample(t0))
    finally:
        for task in loops:
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
    for line in soak.errors[:20]:
        print("error:", line)
    for line in [x for x in app.output if " ERROR " in x or "Traceback" in x][:20]:
        print("appliance log:", line)
    return samples


def _row(s: Sample) -> list[object]:
    heap = "-"
    if s.heap_in_use is not None:
        heap = f"{s.heap_in_use:.0f}/{s.heap_free:.0f}/{s.heap_mmap:.0f}"
    return [s.t, s.phase, f"{s.rss_mib:.1f}", heap, s.fds, s.threads, s.tasks, s.errors, s.cycles]


def verdict(samples: list[Sample]) -> tuple[bool, list[list[object]]]:
    quiet = [s for s in samples if s.phase == "quiet"]
    if len(quiet) < 2:
        return False, [["quiet samples", "missing (run longer than the warm-up)", "", "FAIL"]]
    a, b = quiet[0], quiet[-1]
    rows: list[list[object]] = []
    ok = True

    def goal(name: str, before: object, after: object, passed: bool, goal: str) -> None:
        nonlocal ok
        ok = ok and passed
        rows.append([name, f"{before} -> {after}", goal, "ok" if passed else "FAIL"])

    growth = b.rss_mib - a.rss_mib
    goal("RSS MiB", f"{a.rss_mib:.1f}", f"{b.rss_mib:.1f} ({growth:+.1f})", growth <= 5, "<= +5")
    goal("fds", a.fds, b.fds, b.fds <= a.fds + FD_SLACK, f"flat (+{FD_SLACK})")
    goal("threads", a.threads, b.threads, b.threads <= a.threads, "flat")
    goal("asyncio tasks", a.tasks, b.tasks, b.tasks <= a.tasks, "flat")
    goal("errors", 0, b.errors, b.errors == 0, "0")
    return ok, rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between samples")
    parser.add_argument("--warmup", type=float, help="minutes (default: a fifth, at least 1)")
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--only", default=",".join(KINDS), help=f"client kinds, comma-separated: {','.join(KINDS)}"
    )
    parser.add_argument(
        "--tracemalloc",
        type=int,
        default=0,
        metavar="N",
        help="run the appliance with IPKVM_TRACEMALLOC=1 and print its N top growing lines",
    )
    args = parser.parse_args(argv)
    if args.tracemalloc:
        os.environ["IPKVM_TRACEMALLOC"] = "1"  # inherited by the appliance process
    only = frozenset(k.strip() for k in args.only.split(",") if k.strip())
    if not only or not only <= set(KINDS):
        parser.error(f"--only takes some of {', '.join(KINDS)}")
    warmup = args.warmup if args.warmup is not None else max(1.0, args.minutes / 5)
    width, height = (int(v) for v in args.size.split("x"))
    with start_appliance(demo_config(width, height, fps=30, stamp=True)) as app:
        samples = asyncio.run(run(app, args.minutes, args.interval, warmup, only, args.tracemalloc))
    headers = [
        "t s",
        "phase",
        "RSS MiB",
        "heap used/free/mmap",
        "fds",
        "threads",
        "tasks",
        "errors",
    ]
    headers.append("cycles")
    print(table(headers, [_row(s) for s in samples]))
    ok, rows = verdict(samples)
    print()
    print(table(["quiet sample", "warm-up end -> end", "goal", ""], rows))
    print(
        f"verdict: {'PASS' if ok else 'FAIL'} (warm-up {warmup:g} min of {args.minutes:g},"
        f" clients: {','.join(sorted(only))})"
    )
    if args.json:
        args.json.write_text(
            json.dumps({"warmup_min": warmup, "samples": [asdict(s) for s in samples]}, indent=2)
        )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
