"""Helpers for the guest side of the system test (runs inside the VM with Debian's python3).

Only the standard library and Debian's python3-evdev: the tests look at ipkvm from the outside,
the way the target machine (the VM's own USB host side) and an API client see it. Nothing here
imports ipkvm.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import evdev
from evdev import ecodes

API = os.environ.get("SYSTEST_API", "http://127.0.0.1:8080")
TOKEN_FILE = Path("/run/systest/token")
GADGET_IDS = (0x1D6B, 0x0104)
T = TypeVar("T")


# ---------------------------------------------------------------- test markers
def xfail(reason: str) -> Callable[[T], T]:
    """Known product gap: the runner reports XFAIL (or XPASS once the product is fixed)."""

    def mark(fn: T) -> T:
        fn.xfail = reason  # type: ignore[attr-defined]
        return fn

    return mark


def timeout(seconds: float) -> Callable[[T], T]:
    """Per-test time limit (default 120 s; the VM is slow)."""

    def mark(fn: T) -> T:
        fn.timeout = seconds  # type: ignore[attr-defined]
        return fn

    return mark


def wait_for(check: Callable[[], T], timeout: float, what: str, interval: float = 0.2) -> T:
    """Poll ``check`` until it returns something truthy; AssertionError naming ``what`` if not."""
    deadline = time.monotonic() + timeout
    last: T = check()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
        last = check()
    return last


# ---------------------------------------------------------------- the API
class Api:
    """Bearer-token client for ipkvm's REST API."""

    def __init__(self, base: str = API, token: str | None = None) -> None:
        self.base = base
        self.token = token if token is not None else TOKEN_FILE.read_text().strip()

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes, str]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.status, resp.read(), resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), exc.headers.get("Content-Type", "")

    def get(self, path: str) -> Any:
        status, body, _ = self.request("GET", path)
        assert status == 200, f"GET {path}: {status} {body[:200]!r}"
        return json.loads(body)

    def post(self, path: str, body: Any) -> Any:
        status, data, _ = self.request("POST", path, body)
        assert status in (200, 202), f"POST {path}: {status} {data[:200]!r}"
        return json.loads(data) if data else None

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = self.get("/api/state")
        return state


def in_background(fn: Callable[[], object]) -> threading.Thread:
    """Run an API call while the caller reads evdev: the kernel's evdev buffer is small, and a
    long paste read only afterwards would overrun it."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.errors = errors  # type: ignore[attr-defined]
    thread.start()
    return thread


def unit_property(unit: str, prop: str) -> str:
    out = subprocess.run(
        ["systemctl", "show", "-p", prop, "--value", unit], capture_output=True, text=True
    )
    return out.stdout.strip()


# ---------------------------------------------------------------- the host side (evdev)
def gadget_inputs() -> list[evdev.InputDevice]:
    """Input devices the kernel's usbhid made from our gadget (vendor 1d6b, product 0104)."""
    found = []
    for path in evdev.list_devices():
        dev = evdev.InputDevice(path)
        if (dev.info.vendor, dev.info.product) == GADGET_IDS:
            found.append(dev)
        else:
            dev.close()
    return found


def _pick(kind: str) -> evdev.InputDevice | None:
    for dev in gadget_inputs():
        caps = dev.capabilities()
        keys = caps.get(ecodes.EV_KEY, [])
        if kind == "keyboard" and ecodes.EV_LED in caps and ecodes.KEY_A in keys:
            return dev
        if kind == "abs" and ecodes.EV_ABS in caps and ecodes.BTN_LEFT in keys:
            return dev
        if kind == "rel" and ecodes.EV_REL in caps and ecodes.EV_ABS not in caps:
            return dev
        dev.close()
    return None


def host_device(kind: str, timeout: float = 30.0) -> evdev.InputDevice:
    """The gadget's ``keyboard``, ``abs`` mouse or ``rel`` mouse as the host sees it."""
    return wait_for(lambda: _pick(kind), timeout, f"the gadget's {kind} input device")


Event = tuple[int, int, int]  # type, code, value


def drain(dev: evdev.InputDevice) -> None:
    while select.select([dev.fd], [], [], 0)[0]:
        try:
            for _ in dev.read():
                pass
        except BlockingIOError:
            return


def read_until(
    dev: evdev.InputDevice, done: Callable[[list[Event]], bool], timeout: float, what: str
) -> list[Event]:
    """Collect events (SYN excluded) until ``done(events)`` or fail after ``timeout``."""
    events: list[Event] = []
    deadline = time.monotonic() + timeout
    while not done(events):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out waiting for {what}; got {events[-40:]}")
        if select.select([dev.fd], [], [], left)[0]:
            try:
                for ev in dev.read():
                    if ev.type == ecodes.EV_SYN and ev.code == ecodes.SYN_DROPPED:
                        raise AssertionError(f"evdev buffer overrun while waiting for {what}")
                    if ev.type != ecodes.EV_SYN:
                        events.append((ev.type, ev.code, ev.value))
            except BlockingIOError:
                pass
    return events


def key_events(events: Iterable[Event]) -> list[tuple[int, int]]:
    """(code, value) of key events, auto-repeat (value 2) left out."""
    return [(c, v) for t, c, v in events if t == ecodes.EV_KEY and v != 2]


# ---------------------------------------------------------------- decoding keys like a host
# Independent of ipkvm's own layout tables on purpose: what a US or German host makes of keys.
K = ecodes
_US_PLAIN = dict(
    zip(
        "abcdefghijklmnopqrstuvwxyz",
        [getattr(K, f"KEY_{c}") for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"],
        strict=True,
    )
)
_DIGITS = {str(d): getattr(K, f"KEY_{d}") for d in range(10)}


def _table(
    plain: dict[str, int], shifted: dict[str, int], altgr: dict[str, int]
) -> dict[tuple[int, str], str]:
    table: dict[tuple[int, str], str] = {}
    for ch, code in plain.items():
        table[(code, "")] = ch
    for ch, code in shifted.items():
        table[(code, "shift")] = ch
    for ch, code in altgr.items():
        table[(code, "altgr")] = ch
    return table


US = _table(
    {
        **_US_PLAIN,
        **_DIGITS,
        " ": K.KEY_SPACE,
        ",": K.KEY_COMMA,
        ".": K.KEY_DOT,
        "-": K.KEY_MINUS,
        "/": K.KEY_SLASH,
        ";": K.KEY_SEMICOLON,
        "'": K.KEY_APOSTROPHE,
        "\n": K.KEY_ENTER,
    },
    {
        **{c.upper(): k for c, k in _US_PLAIN.items()},
        "!": K.KEY_1,
        "@": K.KEY_2,
        "#": K.KEY_3,
        "$": K.KEY_4,
        "?": K.KEY_SLASH,
        ":": K.KEY_SEMICOLON,
        '"': K.KEY_APOSTROPHE,
        "_": K.KEY_MINUS,
    },
    {},
)
_DE_PLAIN = {**_US_PLAIN, "z": K.KEY_Y, "y": K.KEY_Z}
DE = _table(
    {
        **_DE_PLAIN,
        **_DIGITS,
        " ": K.KEY_SPACE,
        ",": K.KEY_COMMA,
        ".": K.KEY_DOT,
        "-": K.KEY_SLASH,
        "ä": K.KEY_APOSTROPHE,
        "ö": K.KEY_SEMICOLON,
        "ü": K.KEY_LEFTBRACE,
        "ß": K.KEY_MINUS,
        "#": K.KEY_BACKSLASH,
        "+": K.KEY_RIGHTBRACE,
        "<": K.KEY_102ND,
        "\n": K.KEY_ENTER,
    },
    {
        **{c.upper(): k for c, k in _DE_PLAIN.items()},
        "Ä": K.KEY_APOSTROPHE,
        "Ö": K.KEY_SEMICOLON,
        "Ü": K.KEY_LEFTBRACE,
        "!": K.KEY_1,
        '"': K.KEY_2,
        "/": K.KEY_7,
        "(": K.KEY_8,
        ")": K.KEY_9,
        "=": K.KEY_0,
        "?": K.KEY_MINUS,
        "*": K.KEY_RIGHTBRACE,
        ">": K.KEY_102ND,
        "_": K.KEY_SLASH,
    },
    {
        "@": K.KEY_Q,
        "€": K.KEY_E,
        "{": K.KEY_7,
        "[": K.KEY_8,
        "]": K.KEY_9,
        "}": K.KEY_0,
        "\\": K.KEY_MINUS,
        "~": K.KEY_RIGHTBRACE,
        "|": K.KEY_102ND,
    },
)
LAYOUTS = {"us": US, "de": DE}
_SHIFTS = {K.KEY_LEFTSHIFT, K.KEY_RIGHTSHIFT}


@dataclass
class Decoded:
    text: str
    unknown: list[tuple[int, str]]
    held: set[int]


def decode(events: Iterable[Event], layout: str) -> Decoded:
    """Turn key events into the text a host with ``layout`` would produce."""
    table = LAYOUTS[layout]
    held: set[int] = set()
    text: list[str] = []
    unknown: list[tuple[int, str]] = []
    for code, value in key_events(events):
        if value == 0:
            held.discard(code)
            continue
        held.add(code)
        if code in _SHIFTS or code in (K.KEY_RIGHTALT, K.KEY_LEFTCTRL, K.KEY_LEFTALT):
            continue
        altgr = K.KEY_RIGHTALT in held or (
            layout == "de" and {K.KEY_LEFTCTRL, K.KEY_LEFTALT} <= held
        )
        mod = "altgr" if altgr else ("shift" if held & _SHIFTS else "")
        ch = table.get((code, mod))
        if ch is None:
            unknown.append((code, mod))
        else:
            text.append(ch)
    return Decoded("".join(text), unknown, held)
