"""Appliance CPU on a static screen (most BIOS screens): no viewer, then one viewer per transport.

The demo target without its frame stamp shows an unchanging setup screen; the source keeps
publishing it at the configured rate (as a capture card would), the hub sees the pixels did not
change, and the H.264 encoder only sends a keep-alive frame about once a second.

    python bench/idle.py [--seconds 15] [--kinds ws,webrtc] [--json F]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.appliance_proc import demo_config, start_appliance, table
from bench.viewers import run_viewers

TARGET_PERCENT = 3.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--kinds", default="ws,webrtc")
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--fps", type=int, default=30, help="source frame rate")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))
    results: list[dict[str, Any]] = []
    with start_appliance(demo_config(width, height, args.fps, stamp=False)) as app:
        idle = app.cpu_percent(args.seconds)
        results.append({"kind": "none", "viewers": 0, "cpu_percent": round(idle, 2), "fps": []})
        for kind in args.kinds.split(","):
            results.append(run_viewers(app.url, app.password, kind, 1, args.seconds, app))
    rows = [
        [
            r["kind"],
            r["cpu_percent"],
            "yes" if r["cpu_percent"] <= TARGET_PERCENT else "NO",
            r["fps"][0] if r["fps"] else "-",
        ]
        for r in results
    ]
    print(f"static {width}x{height} screen, source at {args.fps} fps, {args.seconds:g} s each")
    print(table(["viewer", "appliance CPU %", f"<= {TARGET_PERCENT:g}%", "frames/s"], rows))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
