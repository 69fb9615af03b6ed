"""Guest-side runner of the system test: runs every ``tests/system/guest_*.py`` in the VM.

A new feature (ATX on gpio-sim, passthrough from a uinput keyboard, virtual media through the API)
adds a ``guest_NN_name.py`` file with ``test_*`` functions; nothing else changes. Files run in
name order, functions in definition order; each gets a time limit (``@systest.timeout``) and may
be marked ``@systest.xfail(reason)`` for a known product gap. Results go to the 9p share as
results.json, and the last line is the ``N passed, N failed`` summary.

Runs with Debian's python3 (stdlib + python3-evdev) as root, after ipkvm.service is up.
"""

from __future__ import annotations

import importlib.util
import json
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from types import FrameType

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
OUT = Path("/run/systest/out")
TOKEN_FILE = Path("/run/systest/token")
sys.path.insert(0, str(HERE))

import systest  # noqa: E402


class TestTimeout(Exception):
    pass


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise TestTimeout("test time limit reached")


def log(message: str) -> None:
    print(f"[{time.monotonic():8.1f}] {message}", flush=True)


def prepare() -> str | None:
    """Wait for ipkvm.service, make an API token. Returns an error message or None."""
    deadline = time.monotonic() + 300
    while True:
        state = systest.unit_property("ipkvm.service", "ActiveState")
        if state == "active":
            break
        if time.monotonic() > deadline or state == "failed":
            return f"ipkvm.service is {state}"
        time.sleep(1)
    token = subprocess.run(
        ["/opt/ipkvm/bin/ipkvm", "token", "create", "systest", "--state-dir", "/var/lib/ipkvm"],
        capture_output=True,
        text=True,
    )
    if token.returncode != 0:
        return f"token create failed: {token.stderr.strip()}"
    TOKEN_FILE.write_text(token.stdout.strip() + "\n")
    return None


def run_file(path: Path, results: list[dict[str, object]]) -> None:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception:
        results.append(
            {
                "file": path.name,
                "test": "<import>",
                "outcome": "failed",
                "seconds": 0.0,
                "message": traceback.format_exc(),
            }
        )
        return
    for name, fn in list(vars(module).items()):
        if not name.startswith("test_") or not callable(fn):
            continue
        limit = float(getattr(fn, "timeout", 120))
        xfail = getattr(fn, "xfail", None)
        log(f"{path.name}::{name} ...")
        started = time.monotonic()
        signal.setitimer(signal.ITIMER_REAL, limit)
        try:
            fn()
            outcome, message = (
                ("xpassed", f"expected to fail: {xfail}") if xfail else ("passed", "")
            )
        except Exception as exc:
            detail = traceback.format_exc()
            if xfail:
                outcome, message = "xfailed", f"{xfail}\n{type(exc).__name__}: {exc}"
            else:
                outcome, message = "failed", detail
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        took = time.monotonic() - started
        log(f"{path.name}::{name} {outcome.upper()} ({took:.1f} s)")
        if message:
            log(message)
        results.append(
            {
                "file": path.name,
                "test": name,
                "outcome": outcome,
                "seconds": round(took, 2),
                "message": message,
            }
        )


def main() -> int:
    signal.signal(signal.SIGALRM, _alarm)
    results: list[dict[str, object]] = []
    log("waiting for ipkvm.service")
    error = prepare()
    files = sorted(TESTS.glob("guest_*.py"))
    only = OUT / "only"  # harness --only: a developer's run of some files (guest_05 always runs)
    if only.exists():
        wanted = only.read_text().split()
        # bench_*.py (measurements, minutes long: the ustreamer comparison) run only when named
        files += TESTS.glob("bench_*.py")
        files = [
            f for f in files if f.name.startswith("guest_05") or any(w in f.name for w in wanted)
        ]
        files.sort(key=lambda f: f.name.split("_", 2)[1])  # by number, guests and benches
    if error:
        log(f"cannot run the tests: {error}")
        results.append(
            {"file": "-", "test": "<setup>", "outcome": "failed", "seconds": 0.0, "message": error}
        )
    else:
        log(f"ipkvm.service is up; running {len(files)} files")
        for path in files:
            run_file(path, results)
    (OUT / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    counts = {
        k: sum(r["outcome"] == k for r in results)
        for k in ("passed", "failed", "xfailed", "xpassed")
    }
    summary = f"{counts['passed']} passed, {counts['failed']} failed"
    if counts["xfailed"] or counts["xpassed"]:
        summary += f", {counts['xfailed']} xfailed, {counts['xpassed']} xpassed"
    log(summary)
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
