"""Template matching cost per frame (``POST /api/screen/wait``, DuckyScript ``WAITFOR``): the
old single-scale full-resolution search against the coarse-to-fine one, on demo-target frames.

    .venv/bin/python bench/screen.py [--repeat 15] [--json FILE]

Templates are cut from a rendered demo screen: a small icon (the mouse pointer, ~40x20 at 720p),
a text line (~300x30), a large panel (~600x300). Each is matched against the frame it was cut
from ("present") and against the Boot tab's screen, where it is not ("absent": what a waiting
script pays on every changed frame), with the default threshold 0.9. Figures are medians in
milliseconds of one core; this machine is shared and noisy, so compare ratios.
"""

from __future__ import annotations

import argparse
import json
import sys
from functools import partial
from pathlib import Path

# Run as a script, this file's directory comes first on sys.path; keep imports project-wide.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from appliance.scripting import screen  # noqa: E402
from appliance.targets.demo.machine import DemoMachine  # noqa: E402
from bench.appliance_proc import median_ms, table  # noqa: E402
from capture.frame import Image  # noqa: E402
from hid.reports import keyboard_report  # noqa: E402

SIZES = ((1280, 720), (1920, 1080))
RIGHT_ARROW = 0x4F
THRESHOLD = 0.9


def screens(width: int, height: int) -> tuple[DemoMachine, Image, Image]:
    machine = DemoMachine(width, height)
    main = machine.render().copy()
    for _ in range(2):
        machine.feed(keyboard_report(0, [RIGHT_ARROW]))
        machine.feed(keyboard_report(0, []))
    return machine, main, machine.render().copy()


def templates(machine: DemoMachine, width: int) -> dict[str, tuple[int, int, int, int]]:
    s = width / 1280
    tx, ty, _, _ = machine.tab_rect("Main")
    x, y, _, _ = machine.item_rect("Main", "System Language")
    return {  # each is only on the Main tab's screen
        "icon": (tx + int(12 * s), ty + int(4 * s), int(40 * s), int(20 * s)),
        "text line": (x, y, int(300 * s), int(30 * s)),
        "large": (int(16 * s), int(80 * s), int(600 * s), int(300 * s)),
    }


def bench_size(width: int, height: int, repeat: int) -> list[dict[str, object]]:
    machine, main, boot = screens(width, height)
    rows: list[dict[str, object]] = []
    for name, (x, y, w, h) in templates(machine, width).items():
        tpl = main[y : y + h, x : x + w].copy()
        prepared = screen.prepare_template(tpl)
        for where, frame in (("present", main), ("absent", boot)):
            full = screen.match_template_full(frame, tpl)
            fast = screen.match_template(frame, prepared, threshold=THRESHOLD)
            old_ms = median_ms(partial(screen.match_template_full, frame, tpl), repeat)
            new_ms = median_ms(
                partial(screen.match_template, frame, prepared, threshold=THRESHOLD), repeat
            )
            rows.append(
                {
                    "frame": f"{width}x{height}",
                    "template": f"{name} {w}x{h}",
                    "where": where,
                    "factor": prepared.factor,
                    "old_ms": round(old_ms, 2),
                    "new_ms": round(new_ms, 2),
                    "speedup": round(old_ms / new_ms, 1),
                    "old_score": round(full.score, 4),
                    "new_score": round(fast.score, 4),
                    "same_position": (full.x, full.y) == (fast.x, fast.y),
                }
            )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = [row for w, h in SIZES for row in bench_size(w, h, args.repeat)]
    headers = list(rows[0])
    print(table(headers, [[row[h] for h in headers] for row in rows]))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
