"""Frame latency and CPU of the QEMU target's display paths: QEMU's VNC server vs QMP screendump.

    .venv/bin/python bench/qemu_display.py [--keys 20] [--fps 30] [--idle 3]

One tiny guest (TCG, 32 MB) boots a boot sector that echoes keys (tests/qemu_images.py), so a
key press changes a few pixels. For each display path the bench starts the real
:class:`~appliance.targets.qemu.display.QemuSource` on a FrameHub and measures:

- latency: from sending a key with QMP ``input-send-event`` to the hub publishing the frame with
  the echoed character (median and 95th percentile over ``--keys`` presses; includes the guest's
  own time to read the key and draw it, the same for every path);
- the default path is VNC with a burst of screendumps after each input (:mod:`.display`); "vnc
  alone" is it without the bursts (input that bypasses the HID output);
- CPU while the screen is still (``--idle`` seconds) and while typing, as % of one core, for this
  process (the reader) and for QEMU (which renders the display for the reader).

D-Bus display (``-display dbus``, in Debian's QEMU 7.2 build) is not measured: reading it needs
a peer-to-peer D-Bus server with descriptor passing in the appliance (docs/qemu.md).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from appliance.config import build_config  # noqa: E402
from appliance.targets.qemu.command import guest_argv  # noqa: E402
from appliance.targets.qemu.display import DisplayMode, QemuSource  # noqa: E402
from appliance.targets.qemu.guest import QemuGuest  # noqa: E402
from appliance.targets.qemu.input import key_event  # noqa: E402
from appliance.targets.qemu.power import wait_power  # noqa: E402
from appliance.targets.qemu.rack import QemuRack  # noqa: E402
from bench.appliance_proc import median, percentile, table  # noqa: E402
from capture.hub import FrameHub  # noqa: E402
from tests.qemu_images import echo_disk  # noqa: E402

PATHS: tuple[tuple[str, DisplayMode, bool], ...] = (
    ("vnc + screendump after input (chosen)", "vnc", True),
    ("vnc alone", "vnc", False),
    ("screendump", "screendump", False),
)
CLK = 100  # USER_HZ: /proc/PID/stat times are in clock ticks


def qemu_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


async def measure(
    guest: QemuGuest,
    label: str,
    mode: DisplayMode,
    nudge: bool,
    fps: int,
    keys: int,
    idle: float,
    gap: float,
    work: Path,
) -> list[object]:
    rack = QemuRack([guest])
    source = QemuSource(rack, mode=mode, fps=fps)
    hub = FrameHub()
    await source.start(hub)
    await hub.next_frame(0)
    await asyncio.sleep(1.0)  # settle: first full frame, QEMU's refresh timer
    pid = guest._proc.pid if guest._proc else 0  # the bench reads QEMU's own CPU time

    ours, theirs = time.process_time(), qemu_cpu(pid)
    await asyncio.sleep(idle)
    idle_ours = (time.process_time() - ours) / idle * 100
    idle_qemu = (qemu_cpu(pid) - theirs) / idle * 100

    latencies: list[float] = []
    start, ours, theirs = time.monotonic(), time.process_time(), qemu_cpu(pid)
    for n in range(keys):
        letter = "abcdefghijklmnopqrstuvwxyz"[n % 26]
        seq = hub.latest.seq if hub.latest else 0
        sent = time.monotonic()
        await guest.execute(
            "input-send-event", {"events": [key_event(letter, True), key_event(letter, False)]}
        )
        if nudge:  # what QemuOutput does after each report it delivered
            rack.input_sent()
        frame = await hub.next_frame(seq, changed_only=True)
        latencies.append((frame.timestamp - sent) * 1000)
        await asyncio.sleep(gap)
    took = time.monotonic() - start
    busy_ours = (time.process_time() - ours) / took * 100
    busy_qemu = (qemu_cpu(pid) - theirs) / took * 100
    await source.close()
    return [
        label,
        f"{median(latencies):.0f}",
        f"{percentile(latencies, 95):.0f}",
        f"{idle_ours:.1f}",
        f"{idle_qemu:.1f}",
        f"{busy_ours:.1f}",
        f"{busy_qemu:.1f}",
    ]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keys", type=int, default=20)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--idle", type=float, default=3.0)
    parser.add_argument("--accel", default="tcg")
    parser.add_argument("--gap", type=float, default=0.1, help="seconds between keys")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        disk = echo_disk(work / "img", "ECHO")
        config = build_config(
            {
                "target": {"kind": "qemu"},
                "qemu": {
                    "memory": 32,
                    "accel": args.accel,
                    "boot_menu": False,
                    "disks": [str(disk)],
                },
            }
        )
        guest = QemuGuest("bench", work / "bench.qmp", guest_argv(config.qemu, "bench"))
        await guest.start()
        try:
            await wait_power(guest, "on", timeout=20)
            await asyncio.sleep(1.0)  # the boot sector is waiting for keys
            rows = []
            for label, mode, nudge in PATHS:
                rows.append(
                    await measure(
                        guest, label, mode, nudge, args.fps, args.keys, args.idle, args.gap, work
                    )
                )
        finally:
            await guest.close()
    print(
        f"QEMU display paths: {args.keys} keys {args.gap:g} s apart, {args.fps} fps cap, "
        f"accel {args.accel}"
    )
    print("latency: key sent → frame with the echo in the hub; CPU: % of one core")
    print(
        table(
            [
                "path",
                "latency ms p50",
                "p95",
                "idle CPU ours",
                "idle CPU qemu",
                "typing CPU ours",
                "typing CPU qemu",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
