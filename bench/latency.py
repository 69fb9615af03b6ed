"""Glass-to-glass video latency in headless Chromium, per transport and resolution.

The demo target stamps every frame with its counter and the wall-clock millisecond at which it
was drawn (capture/stamp.py). A page on the appliance's origin runs the console's own transport
classes (web/js/transport-*.js); on every animation frame it copies the stamp strip of what the
transport's element shows (canvas, video or img) into a scratch canvas, decodes it, and records
``Date.now() - stamp`` for each new counter. Same machine, same clock: no offset to estimate.

"Displayed" is sampled at requestAnimationFrame, i.e. when the compositor starts the frame that
will show the picture; a real screen adds its own scan-out (≈ half a refresh on average). The
capture side here is the demo renderer, not an HDMI grabber: a USB capture dongle adds its own
frame of latency.

    python bench/latency.py [--seconds 10] [--sizes 720p,1080p] [--transports ...] [--json F]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.appliance_proc import (
    CHROMIUM,
    CHROMIUM_ARGS,
    demo_config,
    median,
    percentile,
    start_appliance,
    table,
)

SIZES = {"720p": (1280, 720), "1080p": (1920, 1080)}
TRANSPORTS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "webcodecs": ("transport-webcodecs.js", "WebCodecsTransport", {}),
    "webcodecs-canvas": ("transport-webcodecs.js", "WebCodecsTransport", {"renderer": "canvas"}),
    "webrtc": ("transport-webrtc.js", "WebRtcTransport", {}),
    "mjpeg": ("transport-mjpeg.js", "MjpegTransport", {}),
}

MEASURE_JS = """
async ([module, name, seconds, options, cheap]) => {
  const mod = await import(`/static/js/${module}`);
  const Transport = mod[name];
  if (!(await Transport.available())) return { error: `${name} not available here` };
  const box = document.createElement("div");
  box.style.width = "100vw";
  document.body.replaceChildren(box);
  const t = new Transport({});
  t.start(box, { fps: 30, quality: 80, ...(options || {}) });
  const probe = document.createElement("canvas");
  const pctx = probe.getContext("2d", { willReadFrequently: true });
  const crc8 = (bytes) => {
    let crc = 0;
    for (const b of bytes) {
      crc ^= b;
      for (let i = 0; i < 8; i++) crc = crc & 0x80 ? ((crc << 1) ^ 0x07) & 0xff : (crc << 1) & 0xff;
    }
    return crc;
  };
  // Port of capture/stamp.py decode_stamp: 2 rows x 40 blocks, markers 1010 ... 0101, CRC-8.
  // Mean brightness of the middle half of each of the 2 x 40 stamp blocks; `at(x, y)` gives a
  // pixel's brightness in whatever layout the pixels came in.
  const levelsOf = (at, block) => {
    const levels = [];
    for (let row = 0; row < 2; row++) {
      for (let col = 0; col < 40; col++) {
        const y0 = Math.floor((row + 0.25) * block), y1 = Math.floor((row + 0.75) * block) + 1;
        const x0 = Math.floor((col + 0.25) * block), x1 = Math.floor((col + 0.75) * block) + 1;
        let sum = 0, n = 0;
        for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) { sum += at(x, y); n++; }
        levels.push(sum / n);
      }
    }
    return levels;
  };
  const rgbaLevels = (img, block) =>
    levelsOf((x, y) => {
      const i = (y * img.width + x) * 4;
      return (img.data[i] + img.data[i + 1] + img.data[i + 2]) / 3;
    }, block);
  // Port of capture/stamp.py decode_stamp: 2 rows x 40 blocks, markers 1010 ... 0101, CRC-8.
  const decode = (levels) => {
    const start = [1, 0, 1, 0], end = [0, 1, 0, 1];
    const marks = [...levels.slice(0, 4), ...levels.slice(-4)], ends = [...start, ...end];
    const white = marks.filter((_, i) => ends[i]).reduce((a, b) => a + b) / 4;
    const black = marks.filter((_, i) => !ends[i]).reduce((a, b) => a + b) / 4;
    if (white - black < 80) return null;
    const thr = (white + black) / 2;
    const bits = levels.map((v) => (v > thr ? 1 : 0));
    if (bits.slice(0, 4).join() !== start.join()) return null;
    if (bits.slice(-4).join() !== end.join()) return null;
    const data = bits.slice(4, -4);
    const bytes = [];
    for (let i = 0; i < 9; i++) {
      let v = 0;
      for (let j = 0; j < 8; j++) v = (v << 1) | data[i * 8 + j];
      bytes.push(v);
    }
    if (crc8(bytes.slice(0, 8)) !== bytes[8]) return null;
    const u32 = (o) =>
      ((bytes[o] << 24) >>> 0) + (bytes[o + 1] << 16) + (bytes[o + 2] << 8) + bytes[o + 3];
    return { counter: u32(0), ms: u32(4) };
  };
  const samples = [], paint = [], arrival = [];
  let last = -1, firstShown = null, lastShown = null, shown = 0, unreadable = 0;
  const began = performance.now();
  let warm = null, lastSize = null;
  const probes = { videoframe: 0, canvas: 0 };
  return await new Promise((resolve) => {
    // Sample after the frame's rendering step: rAF N records the time, a task right after it
    // sees what frame N committed (transports that paint in rAF included).
    // The stamp strip of what the element shows now, in two steps: grab() takes the picture
    // synchronously, levels() reads it. Cheap path: wrap the element's current picture in a
    // VideoFrame and copy out only the strip (for a decoded video: its luma, no colour conversion
    // of the whole picture on every sample; a full-frame readback per sample costs Chromium half a
    // core at 1080p, which the appliance then competes with). Otherwise draw the strip on a 2D
    // canvas and read it back.
    const strip = (size) => {
      const block = size.width / 80;
      const even = (v) => Math.min(Math.ceil(v / 2) * 2, 2 * Math.floor(size.width / 2));
      return { block, rect: { x: 0, y: 0, width: even(40 * block), height: even(2 * block) } };
    };
    const grab = (el, size) => {
      const { block, rect } = strip(size);
      if (cheap) {
        try {
          const frame = new VideoFrame(el, { timestamp: 0 });
          if (frame.displayWidth === size.width && frame.format) {
            probes.videoframe++;
            return { frame, block, rect };
          }
          frame.close();
        } catch {
          // not wrappable here: the canvas path below
        }
      }
      if (probe.width !== rect.width || probe.height !== rect.height) {
        probe.width = rect.width;
        probe.height = rect.height;
      }
      pctx.drawImage(el, 0, 0, rect.width, rect.height, 0, 0, rect.width, rect.height);
      probes.canvas++;
      return { frame: null, block, rect };
    };
    const levels = async ({ frame, block, rect }) => {
      if (!frame) return rgbaLevels(pctx.getImageData(0, 0, rect.width, rect.height), block);
      try {
        const buf = new Uint8Array(frame.allocationSize({ rect }));
        const [{ offset, stride }] = await frame.copyTo(buf, { rect });
        if (frame.format.startsWith("I4") || frame.format === "NV12") {
          return levelsOf((x, y) => buf[offset + y * stride + x], block);
        }
        return levelsOf((x, y) => {
          const i = offset + y * stride + x * 4;
          return (buf[i] + buf[i + 1] + buf[i + 2]) / 3;
        }, block);
      } finally {
        frame.close();
      }
    };
    const record = (stamp, now, latency, arrived) => {
      if (stamp === null) unreadable++;
      else if (stamp.counter !== last) {
        last = stamp.counter;
        if (performance.now() >= warm) {
          const age = (((now % 2 ** 32) - stamp.ms) + 2 ** 32) % 2 ** 32;
          samples.push(age);
          if (latency !== null && latency !== undefined && name === "WebCodecsTransport") {
            paint.push(latency);
            arrival.push(arrived);
          }
          if (firstShown === null) firstShown = { t: performance.now(), c: stamp.counter };
          lastShown = { t: performance.now(), c: stamp.counter };
          shown++;
        }
      }
    };
    // Grabbing is synchronous (the picture of this very animation frame); reading and decoding
    // run in order on a promise chain, so a slow read never makes the sampler skip a frame.
    let chain = Promise.resolve();
    const sample = (shownAt) => {
      const el = t.element;
      const size = t.pictureSize();
      if (size) lastSize = size;
      if (!el || !size || size.width < 80) return;
      if (warm === null) warm = performance.now() + 1500; // let the stream settle first
      const grabbed = grab(el, size);
      const latency = t.latency, arrived = t.arrival;
      chain = chain
        .then(() => levels(grabbed))
        .then((lv) => record(decode(lv), shownAt, latency, arrived));
    };
    // "Displayed at" is the start of the animation frame whose rendering step shows the picture.
    // A <video> or <img> is sampled at the start of that frame (what it holds then is what the
    // frame composites; a picture arriving later in the frame is not counted early); a <canvas>
    // right after the rendering step, since transports paint it in animation-frame callbacks.
    const loop = () => {
      const shownAt = Date.now();
      if (performance.now() - began < seconds * 1000) requestAnimationFrame(loop);
      else {
        chain.finally(finish);
        return;
      }
      if (t.element && t.element.tagName !== "CANVAS") sample(shownAt);
      else setTimeout(() => sample(shownAt), 0);
    };
    const finish = () => {
      t.stop();
      const span = lastShown && firstShown ? (lastShown.t - firstShown.t) / 1000 : 0;
      resolve({
        samples, paint, arrival, unreadable, probes,
        fps: span > 0 ? (shown - 1) / span : 0,
        sourceFps: span > 0 ? (lastShown.c - firstShown.c) / span : 0,
        size: lastSize,
      });
    };
    requestAnimationFrame(loop);
  });
}
"""


def api_login(page: Any, url: str, password: str) -> int:
    """Log *page* in through the login API (the session cookie lands in its context)."""
    page.goto(f"{url}/login")
    status: int = page.evaluate(
        """async (pw) => (await fetch("/api/auth/login", {method: "POST",
           headers: {"Content-Type": "application/json"},
           body: JSON.stringify({user: "admin", password: pw})})).status""",
        password,
    )
    return status


def measure(
    url: str, password: str, transport: str, seconds: float, cheap: bool = True
) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    module, name, options = TRANSPORTS[transport]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1920, "height": 1080})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            status = api_login(page, url, password)
            if status != 200:
                raise RuntimeError(f"login failed: HTTP {status}")
            result: dict[str, Any] = page.evaluate(
                MEASURE_JS, [module, name, seconds, options, cheap]
            )
            if errors:
                result["page_errors"] = errors
            return result
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per transport and size")
    parser.add_argument("--sizes", default="720p,1080p")
    parser.add_argument("--transports", default="webcodecs,webcodecs-canvas,webrtc,mjpeg")
    parser.add_argument("--fps", type=int, default=30, help="demo source frame rate")
    parser.add_argument(
        "--runs",
        type=int,
        default=3,
        help="browser launches per transport and size, samples pooled (each launch meets the "
        "source at another phase of the browser's frame clock, worth up to one refresh)",
    )
    parser.add_argument(
        "--readback",
        action="store_true",
        help="sample by drawing the whole element into a canvas (the old, costly probe)",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    rows: list[list[object]] = []
    results: list[dict[str, Any]] = []
    transports = args.transports.split(",")
    for size_name in args.sizes.split(","):
        width, height = SIZES[size_name]
        runs: dict[str, list[dict[str, Any]]] = {t: [] for t in transports}
        for _ in range(args.runs):
            # A fresh appliance per run: the demo source's frame clock then meets the browser's
            # at a new phase (a browser relaunch alone does not move it).
            with start_appliance(demo_config(width, height, args.fps)) as app:
                for transport in transports:
                    one = measure(app.url, app.password, transport, args.seconds, not args.readback)
                    print(f"  {size_name} {transport} probe: {one.get('probes')}", file=sys.stderr)
                    runs[transport].append(one)
        for transport in transports:
            r: dict[str, Any] = {"samples": [], "paint": [], "arrival": [], "unreadable": 0}
            run_medians: list[float] = []
            fps: list[float] = []
            for one in runs[transport]:
                for key in ("samples", "paint", "arrival"):
                    r[key] += one.get(key, [])
                r["unreadable"] += one.get("unreadable") or 0
                for key in ("error", "page_errors"):
                    if one.get(key):
                        r[key] = one[key]
                if one.get("samples"):
                    run_medians.append(median([float(v) for v in one["samples"]]))
                fps.append(float(one.get("fps", 0)))
            r["fps"] = min(fps) if fps else 0.0
            samples = [float(s) for s in r.get("samples", [])]
            paint = [float(s) for s in r.get("paint", [])]
            arrival = [float(s) for s in r.get("arrival", [])]
            entry = {
                "size": size_name,
                "transport": transport,
                "median_ms": round(median(samples), 1),
                "run_medians_ms": [round(v, 1) for v in run_medians],
                "p90_ms": round(percentile(samples, 90), 1),
                "paint_median_ms": round(median(paint), 1) if paint else None,
                "arrival_median_ms": round(median(arrival), 1) if arrival else None,
                "displayed_fps": round(float(r.get("fps", 0)), 1),
                "frames": len(samples),
                "unreadable": r.get("unreadable"),
                "error": r.get("error") or r.get("page_errors"),
            }
            results.append(entry)
            rows.append(
                [
                    size_name,
                    transport,
                    entry["median_ms"],
                    "/".join(f"{v:.0f}" for v in run_medians) or "-",
                    entry["p90_ms"],
                    entry["arrival_median_ms"] if arrival else "-",
                    entry["paint_median_ms"] if paint else "-",
                    entry["displayed_fps"],
                    entry["frames"],
                    entry["error"] or "",
                ]
            )
            print(f"{size_name} {transport}: {entry}", file=sys.stderr)
    print(
        table(
            [
                "size",
                "transport",
                "median ms",
                "per run",
                "p90 ms",
                "arrived ms",
                "painted ms",
                "fps",
                "n",
                "error",
            ],
            rows,
        )
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
