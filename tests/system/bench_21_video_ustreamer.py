"""ipkvm next to ustreamer (the streamer of the most popular open KVM appliance) on the same vivid
HDMI input, same size and frame rate, one MJPEG client each: CPU per delivered frame.

Not a pass/fail speed test (speed targets are measured, not asserted): the figures go to the out
share as ``ustreamer.json`` and to the log; the test fails only if a streamer delivers nothing.
Each streamer's CPU is its systemd unit's cgroup ``cpu.stat`` (every thread and child counted); the
client runs in this process, outside both.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

from systest import Api, timeout, wait_for

VIDEO = "/dev/video0"
OUT = Path("/run/systest/out")
SECONDS = 20.0
WARMUP = 3.0
USTREAMER_PORT = 8091
CGROUP = Path("/sys/fs/cgroup/system.slice")


def _cpu_seconds(unit: str) -> float:
    for line in (CGROUP / unit / "cpu.stat").read_text().splitlines():
        key, value = line.split()
        if key == "usage_usec":
            return int(value) / 1e6
    raise AssertionError(f"no usage_usec for {unit}")


class MjpegClient:
    """Reads a multipart MJPEG stream in a thread, counting parts (frames delivered)."""

    def __init__(self, url: str, boundary: bytes, headers: dict[str, str]) -> None:
        self.url, self.boundary, self.headers = url, b"--" + boundary, headers
        self.frames = 0
        self.bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        req = urllib.request.Request(self.url, headers=self.headers)
        with urllib.request.urlopen(req, timeout=30) as resp:
            tail = b""
            while not self._stop.is_set():
                chunk = resp.read1(1 << 16)
                if not chunk:
                    return
                self.bytes += len(chunk)
                data = tail + chunk
                self.frames += data.count(self.boundary)
                tail = data[-(len(self.boundary) - 1) :]

    def stop(self) -> None:
        self._stop.set()


def _measure(unit: str, client: MjpegClient) -> dict[str, float]:
    client.start()
    wait_for(lambda: client.frames > 3, 30, f"frames from {unit}")
    time.sleep(WARMUP)
    f0, c0, t0 = client.frames, _cpu_seconds(unit), time.monotonic()
    time.sleep(SECONDS)
    f1, c1, t1 = client.frames, _cpu_seconds(unit), time.monotonic()
    client.stop()
    frames = f1 - f0
    cpu = c1 - c0
    return {
        "frames": frames,
        "fps": round(frames / (t1 - t0), 2),
        "cpu_percent": round(100 * cpu / (t1 - t0), 1),
        "cpu_ms_per_frame": round(1000 * cpu / max(frames, 1), 3),
        "kbytes_per_frame": round(client.bytes / max(client.frames, 1) / 1024, 1),
    }


RATES = (30, 5)
"""30 fps: both saturate the VM's emulated (TCG) cores, so this is throughput per CPU second;
5 fps: neither does, so it is the cost of a frame at a rate both sustain."""


def _ustreamer(binary: str, width: int, height: int, fps: int) -> None:
    subprocess.run(
        [
            "systemd-run", f"--unit=ustreamer-bench-{fps}", "--collect", binary,
            f"--device={VIDEO}", "--format=YUYV", f"--resolution={width}x{height}",
            f"--desired-fps={fps}", "--quality=80", "--encoder=CPU", "--host=127.0.0.1",
            f"--port={USTREAMER_PORT}", "--persistent", "--dv-timings",
        ],
        check=True,
    )  # fmt: skip
    wait_for(lambda: _reachable(f"http://127.0.0.1:{USTREAMER_PORT}/state"), 30, "ustreamer up")


@timeout(420)
def test_cpu_per_delivered_frame_next_to_ustreamer() -> None:
    api = Api()
    wait_for(lambda: api.state()["video"]["status"] == "ok", 60, "video.status ok")
    video = api.state()["video"]
    width, height = video["width"], video["height"]
    ours: dict[int, dict[str, object]] = {}
    for fps in RATES:
        ours[fps] = dict(
            _measure(
                "ipkvm.service",
                MjpegClient(
                    f"http://127.0.0.1:8080/api/stream.mjpeg?fps={fps}",
                    b"frame",
                    {"Authorization": f"Bearer {api.token}"},
                ),
            )
        )
        ours[fps]["capture_fps"] = api.state()["video"]["fps"]
        ours[fps]["work_per_frame"] = api.state()["video"]["work"]["per_frame"]
    binary = shutil.which("ustreamer")
    assert binary, "ustreamer is not in the image (image/build, qemu flavour)"
    theirs: dict[int, dict[str, float]] = {}
    subprocess.run(["systemctl", "stop", "ipkvm.service"], check=True)
    try:
        for fps in RATES:
            _ustreamer(binary, width, height, fps)
            try:
                theirs[fps] = _measure(
                    f"ustreamer-bench-{fps}.service",
                    MjpegClient(
                        f"http://127.0.0.1:{USTREAMER_PORT}/stream", b"boundarydonotcross", {}
                    ),
                )
            finally:
                subprocess.run(["systemctl", "stop", f"ustreamer-bench-{fps}.service"], check=False)
    finally:
        subprocess.run(["systemctl", "start", "ipkvm.service"], check=True)
    result: dict[str, object] = {"size": f"{width}x{height}", "format": "YUYV", "seconds": SECONDS}
    for fps in RATES:
        mine, other = ours[fps], theirs[fps]
        ratio = float(mine["cpu_ms_per_frame"]) / max(other["cpu_ms_per_frame"], 1e-9)  # type: ignore[arg-type]
        result[f"{fps}fps"] = {
            "ipkvm": mine,
            "ustreamer": other,
            "ratio_cpu_per_frame": round(ratio, 2),
        }
    text = json.dumps(result, indent=2)
    print(text)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "ustreamer.json").write_text(text + "\n")
    for fps in RATES:
        assert ours[fps]["frames"] and theirs[fps]["frames"], result  # type: ignore[index]
    wait_for(lambda: _video_status(api) == "ok", 90, "ipkvm back and capturing again")


def _video_status(api: Api) -> str:
    try:
        return str(api.state()["video"]["status"])
    except (OSError, AssertionError, ValueError):
        return ""


def _reachable(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False
