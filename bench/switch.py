"""Select → confirmed time for every simulated KVM switch model (tests/switch_sim.py on a pty,
TESmart also over loopback TCP), with the default timings (settle 1 s, each model's gap).

Usage: PYTHONPATH=. python bench/switch.py [--rounds 3] [--json out.json]
Each round selects port 3 then port 2 after the model's gap has passed, so the time is the
switch's own: the select, the settle wait and the confirming query (or the select's reply).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from appliance.switch import PortStore, SwitchController, Timing
from appliance.switch.link import SerialLink, TcpLink
from appliance.switch.wired import WiredSwitch
from tests.switch_sim import MODELS, PtySwitch, SwitchSim, TcpSwitch
from tests.test_switch import protocol


async def measure(model: str, tcp: bool, rounds: int) -> list[float]:
    sim = SwitchSim(model, switch_delay=0.3 if protocol(model).can_query else 0.0)  # type: ignore[arg-type]
    proto = protocol(model)  # type: ignore[arg-type]
    server = pty = None
    if tcp:
        server = await TcpSwitch(sim).start()
        link = TcpLink("127.0.0.1", server.port, proto.scanner(), 1.0)
    else:
        pty = PtySwitch(sim).start()
        link = SerialLink(Path(pty.path), proto.baud, proto.scanner(), 1.0)  # type: ignore[assignment]
    with tempfile.TemporaryDirectory() as tmp:
        ports = PortStore(
            4, (), layout="us", mouse="absolute", state_dir=Path(tmp), known_layouts=("us",)
        )
        ctl = SwitchController(WiredSwitch(proto, link, 1.0), ports, Timing(poll_interval=0))
        times = []
        try:
            await ctl.start()
            for _ in range(rounds):
                for port in (3, 2):
                    await asyncio.sleep(ctl.gap)  # leave the model's gap out of the figure
                    started = time.monotonic()
                    await ctl.select(port)
                    times.append(time.monotonic() - started)
        finally:
            await ctl.close()
            if pty is not None:
                pty.close()
            if server is not None:
                await server.stop()
    return times


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = []
    for model, tcp in [(m, False) for m in MODELS] + [("tesmart", True)]:
        times = await measure(model, tcp, args.rounds)
        rows.append(
            {
                "model": model + (" (tcp)" if tcp else ""),
                "median_ms": round(statistics.median(times) * 1000, 1),
                "max_ms": round(max(times) * 1000, 1),
                "n": len(times),
            }
        )
    print(f"{'model':<16} {'median ms':>10} {'max ms':>10} {'n':>3}")
    for r in rows:
        print(f"{r['model']:<16} {r['median_ms']:>10} {r['max_ms']:>10} {r['n']:>3}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
