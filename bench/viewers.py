"""Appliance CPU per number of viewers: one encode must serve them all.

Starts a demo appliance (every frame stamped, so every frame changes and is encoded), connects
N viewers — each in its own process, so the appliance's CPU time is its own — and measures the
appliance process's CPU over a window. Viewers are WebSocket H.264 clients (read and count access
units) or aiortc WebRTC peers (full RTP/SRTP/RTCP receive path, but the H.264 decode is replaced by
a pass-through so that ten client-side decoders do not starve the appliance on a small machine).
Reports CPU, its ratio to one viewer, and the frame rate each viewer got in the window.

    python bench/viewers.py [--counts 1,3,10] [--kinds ws,webrtc] [--seconds 10] [--json F]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.appliance_proc import demo_config, start_appliance, table


def _auth(session_id: str) -> dict[str, str]:
    """A logged-in session's cookie: ten viewers authenticating with Basic at once would each
    run scrypt (and trip the login throttle); a browser also logs in once."""
    return {"Cookie": f"ipkvm_session={session_id}"}


def login(url: str, password: str) -> str:
    """Log in once; returns the session id for the viewer processes."""
    request = urllib.request.Request(
        f"{url}/api/auth/login",
        data=json.dumps({"user": "admin", "password": password}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            if name.strip() == "ipkvm_session":
                return rest.split(";")[0]
    raise RuntimeError("login gave no session cookie")


async def _count(next_frame: Callable[[], Awaitable[object]]) -> int:
    """Say "ready" after the first frame, read the window from stdin, count frames inside it."""
    await next_frame()
    print("ready", flush=True)
    line = await asyncio.to_thread(sys.stdin.readline)
    start, end = (float(v) for v in line.split())
    frames = 0
    while time.time() < end:
        try:
            async with asyncio.timeout(max(0.01, end - time.time())):
                await next_frame()
        except TimeoutError:
            break
        frames += time.time() >= start
    return frames


async def _ws_client(url: str, password: str) -> int:
    import aiohttp

    async with aiohttp.ClientSession(headers=_auth(password)) as session:
        async with session.ws_connect(f"{url}/api/stream.h264") as ws:

            async def next_frame() -> object:
                while True:
                    msg = await ws.receive()
                    if msg.type is aiohttp.WSMsgType.BINARY:
                        return msg.data
                    if msg.type is not aiohttp.WSMsgType.TEXT:
                        raise ConnectionError(f"stream ended: {msg.type}")

            return await _count(next_frame)


class _PassThrough:
    """Stands in for aiortc's H.264 decoder: one 'frame' per received access unit."""

    def decode(self, encoded_frame: Any) -> list[Any]:
        return [encoded_frame]


async def _webrtc_client(url: str, password: str) -> int:
    import aiohttp
    import aiortc.rtcrtpreceiver
    from aiortc import RTCPeerConnection, RTCSessionDescription

    aiortc.rtcrtpreceiver.get_decoder = lambda codec: _PassThrough()  # type: ignore[assignment]

    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    pc.createDataChannel("input")
    track_ready: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    pc.on("track", lambda t: track_ready.done() or track_ready.set_result(t))
    await pc.setLocalDescription(await pc.createOffer())
    async with aiohttp.ClientSession(headers=_auth(password)) as session:
        async with session.post(
            f"{url}/api/webrtc/offer", json={"sdp": pc.localDescription.sdp, "type": "offer"}
        ) as resp:
            answer = await resp.json()
            if resp.status != 200:
                raise RuntimeError(f"offer refused: {resp.status} {answer}")
    await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
    try:
        track = await asyncio.wait_for(track_ready, 30)
        return await _count(track.recv)
    finally:
        await pc.close()


def client_main(kind: str, url: str, password: str) -> int:
    run = _ws_client if kind == "ws" else _webrtc_client
    frames = asyncio.run(run(url, password))
    print(json.dumps({"frames": frames}), flush=True)
    return 0


def run_viewers(
    url: str, password: str, kind: str, count: int, seconds: float, app: Any
) -> dict[str, Any]:
    """Start *count* viewer processes; once all show frames, measure over *seconds*."""
    session_id = login(url, password)
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--client", kind, url, session_id],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    for p in procs:
        assert p.stdout is not None and p.stdin is not None
        line = p.stdout.readline()  # blocks until that viewer got its first frame
        if line.strip() != "ready":
            raise RuntimeError(f"a {kind} viewer failed to start")
    time.sleep(2.0)  # every viewer past its first keyframe
    start = time.time() + 0.2
    for p in procs:
        assert p.stdin is not None
        p.stdin.write(f"{start} {start + seconds}\n")
        p.stdin.flush()
    time.sleep(max(0.0, start - time.time()))
    cpu = app.cpu_percent(seconds)
    frames = []
    for p in procs:
        out, _ = p.communicate(timeout=60)
        try:
            frames.append(json.loads(out.strip().splitlines()[-1])["frames"])
        except (ValueError, IndexError):
            frames.append(0)
    fps = [round(f / seconds, 1) for f in frames]
    return {"kind": kind, "viewers": count, "cpu_percent": round(cpu, 1), "fps": fps}


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["--client"]:
        return client_main(argv[1], argv[2], argv[3])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", default="1,3,10")
    parser.add_argument("--kinds", default="ws,webrtc")
    parser.add_argument("--seconds", type=float, default=10.0, help="CPU measurement window")
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))
    results: list[dict[str, Any]] = []
    rows: list[list[object]] = []
    with start_appliance(demo_config(width, height, 30)) as app:
        idle = app.cpu_percent(args.seconds / 2)
        rows.append(["-", 0, round(idle, 1), "-", "-"])
        for kind in args.kinds.split(","):
            base = None
            for count in (int(c) for c in args.counts.split(",")):
                r = run_viewers(app.url, app.password, kind, count, args.seconds, app)
                base = base or r["cpu_percent"]
                r["ratio_to_1"] = round(r["cpu_percent"] / base, 2) if base else None
                results.append(r)
                fps = r["fps"]
                rows.append(
                    [kind, count, r["cpu_percent"], r["ratio_to_1"], f"{min(fps)}..{max(fps)}"]
                )
                print(r, file=sys.stderr)
    print(table(["kind", "viewers", "appliance CPU %", "ratio to 1", "fps per viewer"], rows))
    print("(no viewer: the source alone; CPU in % of one core)")
    if args.json:
        args.json.write_text(json.dumps({"idle_cpu_percent": idle, "runs": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
