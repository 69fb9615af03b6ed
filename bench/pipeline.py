"""CPU per frame of the video pipeline, per stage, source format and consumer: before and after.

    .venv/bin/python bench/pipeline.py [--frames 30] [--sizes 720,1080] [--json FILE]

"after" is this branch: recorded device buffers (a desktop-like picture with a moving window,
JPEG at quality 80 for MJPEG, packed YUYV/UYVY) go through the V4L2 reader's own buffer → frame
function (:func:`capture.v4l2_stream.captured_from_buffer`), the hub, and the consumers' own code
(the MJPEG viewer's :class:`capture.jpeg.JpegEncoder` path, the H.264 encoder's ``_encode``).

"before" is the pipeline at the branch point, rebuilt from the calls it made: OpenCV's
``VideoCapture`` decoded MJPEG to BGR (``cv2.imdecode``) and converted YUYV/UYVY to BGR
(``cv2.cvtColor``) for every frame, the hub compared BGR pictures, the MJPEG viewer re-encoded BGR
with ``cv2.imencode`` and the H.264 encoder converted BGR to I420 before x264.

Figures are process CPU milliseconds (``time.process_time``: x264's threads included) per frame,
median of ``--frames`` frames, each frame a changed picture. Consumers: ``mjpeg`` (one MJPEG
viewer, default quality), ``h264`` (one H.264 viewer), ``both``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from capture.frame import Frame  # noqa: E402
from capture.h264 import EncoderSettings, H264Encoder  # noqa: E402
from capture.hub import FrameHub  # noqa: E402
from capture.jpeg import encode_frame  # noqa: E402
from capture.v4l2_stream import captured_from_buffer  # noqa: E402
from capture.work import WorkCounters  # noqa: E402
from capture.yuv import PixelFormat  # noqa: E402

FORMATS: tuple[PixelFormat, ...] = ("mjpeg", "yuyv", "uyvy")
CONSUMERS = ("mjpeg", "h264", "both")
QUALITY = 80
PICTURES = 8


def desktop(width: int, height: int, n: int) -> np.ndarray:
    """A desktop-like picture: flat background, text lines, a window that moves with *n*."""
    image = np.full((height, width, 3), (96, 64, 32), np.uint8)
    scale = width / 1280
    for row in range(0, height - 40, int(28 * scale)):
        cv2.putText(
            image, f"line {row:04d} the quick brown fox jumps over the lazy dog 0123456789",
            (int(20 * scale), row + int(24 * scale)), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale,
            (230, 230, 230), 1, cv2.LINE_AA,
        )  # fmt: skip
    x = int((60 + 40 * n) * scale)
    cv2.rectangle(image, (x, int(200 * scale)), (x + int(500 * scale), int(560 * scale)),
                  (200, 200, 200), -1)  # fmt: skip
    cv2.putText(image, f"window {n}", (x + 20, int(260 * scale)), cv2.FONT_HERSHEY_SIMPLEX,
                1.2 * scale, (20, 20, 20), 2, cv2.LINE_AA)  # fmt: skip
    return image


def to_buffer(image: np.ndarray, fmt: PixelFormat) -> bytes:
    """What a capture device would put in its buffer for *image*."""
    if fmt == "mjpeg":
        return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, QUALITY])[1].tobytes()
    h, w = image.shape[:2]
    i420 = cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420)
    y = i420[:h]
    u = i420[h : h + h // 4].reshape(h // 2, w // 2).repeat(2, axis=0)
    v = i420[h + h // 4 :].reshape(h // 2, w // 2).repeat(2, axis=0)
    out = np.empty((h, w * 2), np.uint8)
    if fmt == "yuyv":
        out[:, 0::2], out[:, 1::4], out[:, 3::4] = y, u, v
    else:
        out[:, 1::2], out[:, 0::4], out[:, 2::4] = y, u, v
    return out.tobytes()


class Meter:
    """CPU ms per stage, summed over frames."""

    def __init__(self) -> None:
        self.stages: dict[str, list[float]] = {}

    def run(self, stage: str, fn: Callable[[], Any]) -> Any:
        started = time.process_time()
        result = fn()
        self.stages.setdefault(stage, []).append((time.process_time() - started) * 1000)
        return result


def run_after(
    buffers: list[bytes], fmt: PixelFormat, size: tuple[int, int], consumer: str, frames: int
) -> tuple[Meter, dict[str, object]]:
    width, height = size
    hub = FrameHub()
    meter = Meter()
    h264 = H264Encoder(hub, EncoderSettings())
    bpl = width if fmt == "mjpeg" else 2 * width
    for i in range(frames + 2):
        buf = buffers[i % len(buffers)]
        captured = meter.run(
            "capture",
            lambda b=buf: captured_from_buffer(
                fmt, width, height, bpl, memoryview(b), len(b), hub.work
            ),
        )
        frame: Frame = meter.run("detect", lambda c=captured: hub.publish_captured(c))
        if consumer in ("mjpeg", "both"):
            # the MJPEG viewer's path (JpegEncoder.encode): a device JPEG passes through
            if frame.jpeg is not None:
                meter.run("jpeg", lambda f=frame: f.jpeg)
                hub.work.passed_through()
            else:
                meter.run("jpeg", lambda f=frame: encode_frame(f, QUALITY, size))
        if consumer in ("h264", "both"):
            meter.run("h264", lambda f=frame: h264._encode(f, False, time.monotonic()))
        if i == 1:  # the first two frames open the encoders: not counted
            meter.stages.clear()
            hub.work = WorkCounters()
    return meter, hub.work.as_dict()


def run_before(
    buffers: list[bytes], fmt: PixelFormat, size: tuple[int, int], consumer: str, frames: int
) -> tuple[Meter, dict[str, object]]:
    width, height = size
    hub = FrameHub()
    meter = Meter()
    h264 = H264Encoder(hub, EncoderSettings())

    def capture(buf: bytes) -> np.ndarray:
        # OpenCV's VideoCapture: the driver buffer decoded/converted to BGR on every read
        if fmt == "mjpeg":
            return cv2.imdecode(np.frombuffer(buf, np.uint8), cv2.IMREAD_COLOR)
        packed = np.frombuffer(buf, np.uint8).reshape(height, width, 2)
        code = cv2.COLOR_YUV2BGR_YUYV if fmt == "yuyv" else cv2.COLOR_YUV2BGR_UYVY
        return cv2.cvtColor(packed, code)

    for i in range(frames + 2):
        buf = buffers[i % len(buffers)]
        image = meter.run("capture", lambda b=buf: capture(b))
        frame = meter.run("detect", lambda im=image: hub.publish(im))
        if consumer in ("mjpeg", "both"):
            meter.run("jpeg", lambda f=frame: encode_frame(f, QUALITY, size))  # BGR: imencode
        if consumer in ("h264", "both"):
            meter.run("h264", lambda f=frame: h264._encode(f, False, time.monotonic()))
        if i == 1:
            meter.stages.clear()
    return meter, {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--sizes", default="720,1080")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    sizes = {"720": (1280, 720), "1080": (1920, 1080)}
    rows = []
    print(
        "| size | source | consumer | before ms/frame | after ms/frame | after: capture / "
        "detect / jpeg / h264 (of which decode+convert) | after: decodes, encodes, conversions, "
        "copies per frame |"
    )
    print("|---|---|---|---|---|---|---|")
    for key in args.sizes.split(","):
        size = sizes[key]
        pictures = [desktop(*size, n) for n in range(PICTURES)]
        for fmt in FORMATS:
            buffers = [to_buffer(p, fmt) for p in pictures]
            for consumer in CONSUMERS:
                before, _ = run_before(buffers, fmt, size, consumer, args.frames)
                after, work = run_after(buffers, fmt, size, consumer, args.frames)

                def total(m: Meter) -> float:
                    n = len(next(iter(m.stages.values())))
                    per_frame = [sum(v[i] for v in m.stages.values()) for i in range(n)]
                    return statistics.median(per_frame)

                def stage(m: Meter, name: str) -> float:
                    values = m.stages.get(name)
                    return statistics.median(values) if values else 0.0

                per = work["per_frame"]
                assert isinstance(per, dict)
                stages = work["stages"]
                assert isinstance(stages, dict)
                # decode/convert happen inside the consumers' calls: from the work counters
                inner = sum(
                    float(stages.get(s, {}).get("cpu_ms", 0.0)) for s in ("decode", "yuv", "bgr")
                ) / max(int(work["frames"]), 1)  # type: ignore[call-overload]
                row = {
                    "size": f"{size[0]}x{size[1]}",
                    "source": fmt,
                    "consumer": consumer,
                    "before_ms": round(total(before), 2),
                    "after_ms": round(total(after), 2),
                    "after_stages": {
                        "capture": round(stage(after, "capture"), 2),
                        "detect": round(stage(after, "detect"), 2),
                        "decode_convert": round(inner, 2),
                        "jpeg": round(stage(after, "jpeg"), 2),
                        "h264": round(stage(after, "h264"), 2),
                    },
                    "before_stages": {
                        s: round(stage(before, s), 2) for s in ("capture", "detect", "jpeg", "h264")
                    },
                    "work_per_frame": per,
                }
                rows.append(row)
                st = row["after_stages"]
                print(
                    f"| {key}p | {fmt} | {consumer} | {row['before_ms']:.1f} | "
                    f"**{row['after_ms']:.1f}** | {st['capture']:.2f} / {st['detect']:.2f} / "
                    f"{st['jpeg']:.2f} / {st['h264']:.2f} ({st['decode_convert']:.2f}) | "
                    f"{per['decodes']:g}, {per['encodes']:g}, {per['conversions']:g}, "
                    f"{per['copies']:g} |",
                    flush=True,
                )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
