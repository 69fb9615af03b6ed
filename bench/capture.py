"""Video-side costs: demo rendering, hub change detection, JPEG encoding, stamp decoding, and
the latency from a key press to the published frame that shows it (demo target).

    .venv/bin/python bench/capture.py [--repeat 50] [--json FILE]

Each figure is the median of ``--repeat`` runs, in milliseconds of one core (wall time of the
call on an otherwise idle thread). This machine is shared and noisy: compare medians and ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from pathlib import Path

# Run as a script, this file's directory comes first on sys.path and "capture" would be this file.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from appliance.targets.demo.hid import DemoOutput  # noqa: E402
from appliance.targets.demo.machine import DemoMachine  # noqa: E402
from appliance.targets.demo.video import DemoSource  # noqa: E402
from bench.appliance_proc import median_ms  # noqa: E402
from capture.frame import Frame  # noqa: E402
from capture.hub import FrameHub  # noqa: E402
from capture.jpeg import JpegEncoder  # noqa: E402
from capture.stamp import decode_stamp  # noqa: E402
from hid.controller import HidController  # noqa: E402
from hid.reports import abs_mouse_report, keyboard_report  # noqa: E402

SIZES = ((1280, 720), (1920, 1080))


def bench_size(width: int, height: int, repeat: int) -> dict[str, float]:
    out: dict[str, float] = {}
    machine = DemoMachine(width, height)
    machine.render()
    out["render unchanged"] = median_ms(machine.render, repeat * 20)
    out["cached_frame (loop check)"] = median_ms(machine.cached_frame, repeat * 20)
    keys = iter(range(10**9))

    def typed() -> None:
        # Alternate a letter and Backspace so the field never fills up (a full field no-ops).
        machine.feed(keyboard_report(0, [0x04 if next(keys) % 2 else 0x2A]))
        machine.feed(keyboard_report(0, []))
        machine.render()

    out["render after a key (redraw)"] = median_ms(typed, repeat)
    moves = iter(range(10**9))

    def moved() -> None:
        machine.feed(abs_mouse_report(0, next(moves) * 37 % 32767, 16000))
        machine.render()

    out["render after pointer move"] = median_ms(moved, repeat)
    stamped = DemoMachine(width, height, stamp=True)
    out["render stamped (copy+stamp)"] = median_ms(stamped.render, repeat)
    stamped_image = stamped.render()
    out["decode_stamp"] = median_ms(lambda: decode_stamp(stamped_image), repeat)

    hub = FrameHub()
    screen = machine.render()
    same_pixels = screen.copy()
    hub.publish(screen)
    out["publish same object"] = median_ms(lambda: hub.publish(screen), repeat * 20)
    out["publish equal copy (full compare)"] = (
        median_ms(lambda: (hub.publish(screen), hub.publish(same_pixels)), repeat) / 2
    )
    machine.feed(keyboard_report(0, [0x05]))
    one_char = machine.render().copy()
    out["publish 1-char change"] = (
        median_ms(lambda: (hub.publish(screen), hub.publish(one_char)), repeat) / 2
    )

    frame = Frame(image=screen, seq=1, content_seq=1, timestamp=0.0)
    out["cv2.imencode JPEG q80 (BIOS screen)"] = median_ms(
        lambda: cv2.imencode(".jpg", screen, [cv2.IMWRITE_JPEG_QUALITY, 80]), repeat
    )
    rng = np.random.default_rng(0)
    busy = cv2.GaussianBlur(rng.integers(0, 256, (height, width, 3), np.uint8), (5, 5), 0)
    out["cv2.imencode JPEG q80 (busy picture)"] = median_ms(
        lambda: cv2.imencode(".jpg", busy, [cv2.IMWRITE_JPEG_QUALITY, 80]), repeat
    )

    async def encoder_costs() -> tuple[float, float, int]:
        encoder = JpegEncoder(80)
        seqs = iter(range(1, 10**9))
        miss: list[float] = []
        for _ in range(repeat):
            f = Frame(image=screen, seq=1, content_seq=next(seqs), timestamp=0.0)
            t0 = time.perf_counter()
            data = await encoder.encode(f)
            miss.append(time.perf_counter() - t0)
        await encoder.encode(frame)
        t0 = time.perf_counter()
        for _ in range(repeat):
            await encoder.encode(frame)
        hit = (time.perf_counter() - t0) / repeat
        return statistics.median(miss) * 1000, hit * 1000, len(data)

    miss, hit, size = asyncio.run(encoder_costs())
    out["JpegEncoder.encode miss (thread pool)"] = miss
    out["JpegEncoder.encode cache hit"] = hit
    out["JPEG q80 bytes (BIOS screen)"] = float(size)
    return out


async def key_to_frame(width: int, height: int, fps: float, samples: int) -> dict[str, float]:
    """HidController.key → DemoOutput → machine → DemoSource → hub: time until the frame that
    shows the key is published (frame.timestamp), in ms."""
    machine = DemoMachine(width, height)
    hub = FrameHub()
    source = DemoSource(machine, fps=fps)
    controller = HidController(DemoOutput(machine))
    await controller.start()
    await source.start(hub)
    latencies: list[float] = []
    try:
        frame = await hub.next_frame(0)
        rng = random.Random(1)
        for i in range(samples):
            code = "KeyA" if i % 2 == 0 else "Backspace"
            # Press at a random phase of the frame clock, as a person would.
            await asyncio.sleep(rng.uniform(0, 1 / fps))
            t0 = time.monotonic()
            controller.key("bench", code, True)
            frame = await hub.next_frame(frame.seq, changed_only=True)
            latencies.append((frame.timestamp - t0) * 1000)
            controller.key("bench", code, False)
            await controller.drain()
    finally:
        await source.close()
        await controller.close()
    latencies.sort()
    return {
        "p50": statistics.median(latencies),
        "p90": latencies[int(len(latencies) * 0.9)],
        "max": latencies[-1],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = {f"{w}x{h}": bench_size(w, h, args.repeat) for w, h in SIZES}
    names = list(next(iter(results.values())))
    print(f"{'ms (median)':40}" + "".join(f"{k:>12}" for k in results))
    for name in names:
        cells = "".join(f"{results[k][name]:>12.3f}" for k in results)
        if name.endswith("bytes (BIOS screen)"):
            cells = "".join(f"{results[k][name]:>12.0f}" for k in results)
        print(f"{name:40}{cells}")
    latency: dict[str, dict[str, float]] = {}
    for w, h in SIZES:
        for fps in (30.0, 60.0):
            name = f"{w}x{h}@{fps:.0f}"
            latency[name] = asyncio.run(key_to_frame(w, h, fps, args.repeat))
    print("\nkey → published frame showing it (ms)       p50      p90      max")
    for name, row in latency.items():
        print(f"{name:40}{row['p50']:>9.1f}{row['p90']:>9.1f}{row['max']:>9.1f}")
    if args.json:
        args.json.write_text(json.dumps({"costs": results, "key_to_frame": latency}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
