"""Upload throughput and the appliance's memory for a large image (``PUT /api/media/images``).

Runs ``ipkvm serve`` as its own process (bench/appliance_proc.py), streams SIZE bytes to it over
loopback — once with Content-Length (space checked up front), once chunked — and samples the
process's resident set (VmRSS, /proc) every 50 ms plus its high-water mark (VmHWM). The body comes
from one reused 1 MiB buffer, so the figures are the appliance's (network, thread-pool writes,
SHA-256, fdatasync every 32 MiB), not the client's disk.

Usage: PYTHONPATH=. python bench/media_upload.py [--size-mib 2048] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp

from bench.appliance_proc import Appliance, start_appliance, table

MiB = 1 << 20


def status_kib(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


class RssSampler:
    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, status_kib(self.pid, "VmRSS"))
            time.sleep(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def upload(app: Appliance, name: str, size: int, chunked: bool) -> float:
    block = bytes(range(256)) * (MiB // 256)
    auth = base64.b64encode(f"admin:{app.password}".encode()).decode()
    headers = {"Authorization": f"Basic {auth}", "Content-Type": "application/octet-stream"}
    if not chunked:
        headers["Content-Length"] = str(size)

    async def body():  # type: ignore[no-untyped-def]
        left = size
        while left:
            n = min(left, MiB)
            yield block if n == MiB else block[:n]
            left -= n

    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        t0 = time.perf_counter()
        async with http.put(
            f"{app.url}/api/media/images/{name}", data=body(), headers=headers
        ) as resp:
            text = await resp.text()
            if resp.status != 201:
                raise RuntimeError(f"upload failed: {resp.status} {text}")
        elapsed = time.perf_counter() - t0
        async with http.delete(f"{app.url}/api/media/images/{name}", headers=headers) as resp:
            assert resp.status == 200
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=2048)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    size = args.size_mib * MiB
    rows = []
    results = []
    with start_appliance() as app:
        pid = app.process.pid
        time.sleep(1.0)
        for chunked in (False, True):
            base = status_kib(pid, "VmRSS")
            cpu0 = app.cpu_seconds()
            with RssSampler(pid) as rss:
                elapsed = asyncio.run(upload(app, f"bench-{int(chunked)}.img", size, chunked))
            cpu = app.cpu_seconds() - cpu0
            result = {
                "mode": "chunked" if chunked else "Content-Length",
                "size_mib": args.size_mib,
                "seconds": round(elapsed, 2),
                "mib_per_s": round(size / MiB / elapsed, 1),
                "rss_before_mib": round(base / 1024, 1),
                "rss_peak_mib": round(rss.peak / 1024, 1),
                "rss_growth_mib": round((rss.peak - base) / 1024, 1),
                "cpu_percent": round(100 * cpu / elapsed),
            }
            results.append(result)
            rows.append(list(result.values()))
        hwm = status_kib(pid, "VmHWM")
    print(table(list(results[0].keys()), rows))
    print(f"appliance VmHWM over the whole run: {hwm / 1024:.1f} MiB")
    if args.json:
        args.json.write_text(json.dumps({"uploads": results, "vmhwm_mib": hwm / 1024}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
