"""Run a real ``ipkvm serve --target demo`` process (benchmarks and the browser tests) and
measure its CPU.

The appliance runs in its own process so that its CPU time (from /proc) is not mixed with the
benchmark's clients or the browser.
"""

from __future__ import annotations

import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--autoplay-policy=no-user-gesture-required",
]
_PASSWORD = re.compile(r"^\s*password:\s*(\S+)\s*$")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Appliance:
    url: str
    password: str
    process: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)
    tmp: tempfile.TemporaryDirectory[str] | None = None

    def cpu_seconds(self) -> float:
        """User + system CPU time of the appliance process (all its threads) so far."""
        with open(f"/proc/{self.process.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def cpu_percent(self, seconds: float) -> float:
        """Average CPU use over the next *seconds*, in percent of one core."""
        start_cpu, start = self.cpu_seconds(), time.monotonic()
        time.sleep(seconds)
        return 100.0 * (self.cpu_seconds() - start_cpu) / (time.monotonic() - start)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self.tmp is not None:
            self.tmp.cleanup()

    def __enter__(self) -> Appliance:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_appliance(
    config: str = "",
    *,
    state_dir: Path | None = None,
    port: int = 0,
    password: str = "",
    timeout: float = 60.0,
) -> Appliance:
    """Start ``ipkvm serve --target demo`` with *config* (TOML) on a loopback port.

    The one way benchmarks and the browser tests run the appliance as a process. *state_dir*
    (default: a temporary one, removed on stop) and *port* (default: a free one) may be given to
    start again on the same state, as after an upgrade; *password* is then the one printed by the
    first start (``serve`` prints a password only when it makes one).
    """
    tmp = None
    if state_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="ipkvm-bench-")
        state_dir = Path(tmp.name) / "state"
    cfg = state_dir.parent / f"{state_dir.name}.toml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(config)
    port = port or free_port()
    cmd = [sys.executable, "-m", "appliance", "serve", "--target", "demo"]
    cmd += ["--listen", f"127.0.0.1:{port}", "--state-dir", str(state_dir)]
    cmd += ["--config", str(cfg), "--no-tls"]
    process = subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    app = Appliance(f"http://127.0.0.1:{port}", password, process, tmp=tmp)
    banner = threading.Event()

    def drain() -> None:
        # Keep reading so the server never blocks on a full pipe; remember the password.
        assert process.stdout is not None
        for line in process.stdout:
            app.output.append(line.rstrip("\n"))
            match = _PASSWORD.match(line)
            if match and "-" in match.group(1):
                app.password = match.group(1)
            if line.startswith("  password:"):
                banner.set()
        banner.set()  # the process ended

    threading.Thread(target=drain, daemon=True).start()
    deadline = time.monotonic() + timeout
    banner.wait(timeout)
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"{app.url}/api/health", timeout=1) as r:
                if r.status == 200 and app.password:
                    return app
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    app.stop()
    raise RuntimeError("appliance did not start:\n" + "\n".join(app.output[-40:]))


def demo_config(width: int, height: int, fps: int = 30, stamp: bool = True) -> str:
    return (
        f"[demo]\nwidth = {width}\nheight = {height}\nstamp = {'true' if stamp else 'false'}\n"
        f"[video]\nfps = {fps}\n[stream]\nmax_fps = {fps}\n"
    )


def median_ms(func: Callable[[], object], repeat: int) -> float:
    """Median wall time of *func* in ms over *repeat* calls, after one warm-up call."""
    func()  # warm-up (font loading, allocator, caches)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(headers: list[str], rows: list[list[object]]) -> str:
    cells = [headers, *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)
