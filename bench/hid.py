"""HID output benchmark: reports/s through the otg backend into a FIFO, and the latency from a
HidController call to the report being readable by the "host" on the other side.

    .venv/bin/python bench/hid.py [--samples 2000] [--reports 20000] [--json FILE]

The host is a separate process doing blocking reads, like the USB host polling the gadget
independently of the appliance; it timestamps each read with CLOCK_MONOTONIC (shared by all
processes). Latency = arrival time - time of the ``ctl.key()`` call.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

# Run as a script, this file's directory comes first on sys.path and "hid" would be this file.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]


HOST_SCRIPT = r"""
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)  # O_RDWR: open does not wait for a writer, no EOF
out = sys.stdout.buffer
out.write(b"ready\n"); out.flush()
while True:
    data = os.read(fd, 65536)
    t = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    out.write(b"%d %d\n" % (len(data), t)); out.flush()
"""


def now_ns() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


class ProcessHost:
    """The host side in its own process (no GIL shared with the appliance): it reads the FIFO
    and reports, for each read, the byte count and the CLOCK_MONOTONIC time of arrival."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.got = 0
        self.at_ns = 0

    @classmethod
    async def start(cls, path: Path) -> ProcessHost:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", HOST_SCRIPT, str(path), stdout=asyncio.subprocess.PIPE
        )
        assert proc.stdout is not None
        await proc.stdout.readline()  # "ready": the FIFO has its reader
        return cls(proc)

    async def wait_bytes(self, total: int) -> None:
        """Read arrival lines until *total* bytes were received since the start."""
        assert self.proc.stdout is not None
        while self.got < total:
            n, t = (await self.proc.stdout.readline()).split()
            self.got += int(n)
            self.at_ns = int(t)

    async def close(self) -> None:
        self.proc.kill()
        await self.proc.wait()


async def _throughput_raw(tmp: Path, n: int) -> float:
    from hid.otg import OtgOutput
    from hid.reports import keyboard_report

    path = tmp / "raw"
    os.mkfifo(path)
    host = await ProcessHost.start(path)
    out = OtgOutput(path, tmp / "none1", tmp / "none2")
    await out.open()
    reports = [keyboard_report(0, [4 + i % 26] if i % 2 == 0 else []) for i in range(n)]
    waiting = asyncio.ensure_future(host.wait_bytes(8 * n))
    t0 = time.perf_counter()
    for r in reports:
        await out.write(r)
    await asyncio.wait_for(waiting, 60)
    elapsed = time.perf_counter() - t0
    await out.close()
    await host.close()
    return n / elapsed


async def _controller_run(tmp: Path, pairs: int, samples: int) -> dict[str, float]:
    from hid.controller import HidController
    from hid.otg import OtgOutput

    path = tmp / "hidg0"
    os.mkfifo(path)
    host = await ProcessHost.start(path)
    ctl = HidController(OtgOutput(path, tmp / "none1", tmp / "none2"))
    await ctl.start()

    # throughput: a burst of press/release pairs through the controller queue
    t0 = time.perf_counter()
    for i in range(pairs):
        code = f"Key{chr(ord('A') + i % 26)}"
        ctl.key("bench", code, True)
        ctl.key("bench", code, False)
    await asyncio.wait_for(host.wait_bytes(16 * pairs), 60)
    throughput = 2 * pairs / (time.perf_counter() - t0)

    # latency: one report at a time, the host idle in between
    latencies: list[float] = []
    for i in range(samples):
        t0_ns = now_ns()
        ctl.key("bench", "KeyA", i % 2 == 0)
        await asyncio.wait_for(host.wait_bytes(host.got + 8), 5)
        latencies.append((host.at_ns - t0_ns) / 1e3)
    await ctl.close()
    await host.close()
    q = statistics.quantiles(latencies, n=100)
    return {
        "controller_reports_per_s": throughput,
        "latency_p50_us": statistics.median(latencies),
        "latency_p99_us": q[98],
        "latency_max_us": max(latencies),
        "samples": float(len(latencies)),
    }


async def run(samples: int, reports: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="ipkvm-bench-hid-") as d:
        tmp = Path(d)
        raw = await _throughput_raw(tmp, reports)
        result = await _controller_run(tmp, reports // 2, samples)
    return {"otg_write_reports_per_s": raw, **result}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=2000, help="latency samples (≥ 2000)")
    parser.add_argument("--reports", type=int, default=20000, help="reports for throughput")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args()
    # The benchmark leaves the mouse devices absent on purpose; their "offline" is noise here.
    logging.getLogger("hid").setLevel(logging.ERROR)
    result = asyncio.run(run(args.samples, args.reports))
    rows = [
        ("OtgOutput.write → FIFO (reader process)", "reports/s", "otg_write_reports_per_s"),
        ("HidController.key burst → FIFO", "reports/s", "controller_reports_per_s"),
        ("ctl.key() → readable by host, p50", "µs", "latency_p50_us"),
        ("ctl.key() → readable by host, p99", "µs", "latency_p99_us"),
        ("ctl.key() → readable by host, max", "µs", "latency_max_us"),
        ("latency samples", "", "samples"),
    ]
    print(f"{'metric':<42} {'value':>12}  unit")
    for label, unit, key in rows:
        print(f"{label:<42} {result[key]:>12,.0f}  {unit}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
