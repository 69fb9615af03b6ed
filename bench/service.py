"""The appliance as a process: start-up time, resident memory at idle, and CPU on a static screen
with no viewer and with one MJPEG viewer.

    python bench/service.py [--runs 5] [--seconds 10] [--json F]

Start-up is measured from process start to the first 200 from /api/health (what systemd and a
browser wait for), so it includes interpreter start and every import.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
import urllib.request
from base64 import b64encode
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.appliance_proc import Appliance, demo_config, start_appliance, table


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def mjpeg_viewer(app: Appliance, stop: threading.Event, parts: list[int]) -> None:
    """One viewer reading the stream as fast as it comes, like a browser's <img>."""
    token = b64encode(f"admin:{app.password}".encode()).decode()
    req = urllib.request.Request(
        f"{app.url}/api/stream.mjpeg", headers={"Authorization": f"Basic {token}"}
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        while not stop.is_set():
            line = resp.readline()
            if not line:
                break
            if line.startswith(b"--frame"):
                parts[0] += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    config = demo_config(1280, 720, fps=30, stamp=False)
    startups: list[float] = []
    for _ in range(args.runs):
        t0 = time.monotonic()
        app = start_appliance(config)
        startups.append(time.monotonic() - t0)
        app.stop()

    app = start_appliance(config)
    try:
        time.sleep(2)  # let the first frames and lazy imports settle
        rss_idle = rss_mib(app.process.pid)
        cpu_idle = app.cpu_percent(args.seconds)
        stop, parts = threading.Event(), [0]
        viewer = threading.Thread(target=mjpeg_viewer, args=(app, stop, parts), daemon=True)
        viewer.start()
        time.sleep(1)
        parts[0] = 0
        cpu_view = app.cpu_percent(args.seconds)
        fps = parts[0] / args.seconds
        rss_view = rss_mib(app.process.pid)
        stop.set()
    finally:
        app.stop()

    rows: list[list[object]] = [
        ["start-up to /api/health (median)", f"{statistics.median(startups):.2f} s"],
        ["start-up (min / max)", f"{min(startups):.2f} / {max(startups):.2f} s"],
        ["RSS at idle, demo target 720p", f"{rss_idle:.0f} MiB"],
        ["RSS with one MJPEG viewer", f"{rss_view:.0f} MiB"],
        ["CPU, static screen, no viewer", f"{cpu_idle:.1f} % of a core"],
        ["CPU, static screen, one MJPEG viewer", f"{cpu_view:.1f} % of a core"],
        ["MJPEG parts/s on a static screen", f"{fps:.1f}"],
    ]
    print(table(["measure", "value"], rows))
    if args.json:
        result: dict[str, Any] = {
            "startup_s": startups,
            "rss_idle_mib": rss_idle,
            "rss_view_mib": rss_view,
            "cpu_idle_pct": cpu_idle,
            "cpu_mjpeg_pct": cpu_view,
            "mjpeg_fps": fps,
        }
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
