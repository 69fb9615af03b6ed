"""ATX power logic above the kernel call: press timing, LED debounce from timestamped edge
sequences, "on only when off", one action at a time.

The libgpiod backend (appliance/atx/gpio.py) cannot run here (no gpio-sim module on this kernel);
it is verified on hardware and by the system test. Everything above it runs here through the same
code: the controller is fed :class:`LedEdge` sequences exactly as the GPIO reader delivers them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from appliance.atx.control import AtxPower
from appliance.atx.leds import LedFilter
from appliance.atx.sim import SimLines
from appliance.atx.status import ActionRefused, Led, PowerStatus
from appliance.atx.wiring import (
    AtxWiring,
    EdgeSink,
    LedEdge,
    Output,
    PressTimes,
    wiring_from_config,
)
from appliance.config import build_config

MS = 1_000_000  # ns


def edges(led: Led, *steps: tuple[int, bool]) -> list[LedEdge]:
    return [LedEdge(led, level, t * MS) for t, level in steps]


# ---------------------------------------------------------------------- LED filter
def test_power_led_bounce_settles_to_the_last_level_after_the_debounce() -> None:
    f = LedFilter(debounce_ns=100 * MS)
    f.start({"power": False, "hdd": False})
    # contact bounce over 30 ms, then held lit
    f.feed(edges("power", (0, True), (5, False), (12, True), (20, False), (30, True)))
    assert not f.settle(60 * MS)
    assert f.shown()["power"] is False  # still within 100 ms of the last edge
    assert f.next_settle_ns() == 130 * MS
    assert f.settle(130 * MS)
    assert f.shown()["power"] is True
    assert f.next_settle_ns() is None


def test_power_led_glitch_shorter_than_the_debounce_is_ignored() -> None:
    f = LedFilter(debounce_ns=100 * MS)
    f.start({"power": True, "hdd": False})
    f.feed(edges("power", (1000, False), (1040, True)))  # a 40 ms dropout
    assert not f.settle(1200 * MS)
    assert f.shown()["power"] is True


def test_hdd_activity_shows_during_and_for_the_hold_after_fast_flicker() -> None:
    f = LedFilter(debounce_ns=100 * MS)
    f.start({"power": True, "hdd": False})
    f.feed(edges("hdd", (0, True), (2, False), (4, True), (6, False)))  # faster than debounce
    assert f.settle(7 * MS)
    assert f.shown()["hdd"] is True  # a debounce would have hidden this burst
    assert f.settle(106 * MS)
    assert f.shown()["hdd"] is False


def test_unwired_leds_are_none() -> None:
    f = LedFilter(debounce_ns=100 * MS)
    f.start({"power": True})
    f.feed(edges("hdd", (0, True)))
    assert f.shown() == {"power": True, "hdd": None}


# ---------------------------------------------------------------------- the controller
class RecordingLines:
    """An AtxLines that records output changes with the loop time, and lets the test inject
    kernel edges (what GpiodLines turns EdgeEvents into)."""

    def __init__(self, levels: dict[Led, bool]) -> None:
        self.levels = levels
        self.sink: EdgeSink | None = None
        self.outputs: list[tuple[Output, bool, float]] = []
        self.closed = False

    async def open(self, sink: EdgeSink) -> dict[Led, bool]:
        self.sink = sink
        return dict(self.levels)

    def set_output(self, line: Output, active: bool) -> None:
        self.outputs.append((line, active, asyncio.get_running_loop().time()))

    async def close(self) -> None:
        self.closed = True

    def inject(self, batch: Sequence[LedEdge]) -> None:
        assert self.sink is not None
        self.sink(batch)


TIMES = PressTimes(short=0.05, long=0.3, reset=0.04, max_press=1.0)


async def started(levels: dict[Led, bool], **kw: object) -> tuple[AtxPower, RecordingLines]:
    lines = RecordingLines(levels)
    power = AtxPower(lines, TIMES, debounce=0.02, **kw)  # type: ignore[arg-type]
    await power.start()
    return power, lines


def held(lines: RecordingLines) -> list[tuple[Output, float]]:
    """(line, seconds held) for each press: pairs of press/release."""
    out = []
    for (line, down, t0), (line2, up, t1) in zip(
        lines.outputs[::2], lines.outputs[1::2], strict=True
    ):
        assert down and not up and line == line2
        out.append((line, t1 - t0))
    return out


async def test_press_times_per_action() -> None:
    power, lines = await started({"power": False, "hdd": False})
    await power.act("on")
    lines.inject([LedEdge("power", True, 0)])
    await asyncio.sleep(0.05)
    assert power.state == "on"
    await power.act("reset")
    await power.act("off_hard")
    presses = held(lines)
    assert [p[0] for p in presses] == ["power", "reset", "power"]
    for (_, seconds), want in zip(presses, (0.05, 0.04, 0.3), strict=True):
        assert want <= seconds < want + 0.05


async def test_on_only_when_the_led_says_off_and_off_only_when_on() -> None:
    power, lines = await started({"power": True, "hdd": False})
    with pytest.raises(ActionRefused, match="already on"):
        await power.act("on")
    lines.inject([LedEdge("power", False, 0)])  # the machine went off by itself
    await asyncio.sleep(0.05)
    with pytest.raises(ActionRefused, match="already off"):
        await power.act("off")
    with pytest.raises(ActionRefused, match="already off"):
        await power.act("off_hard")
    with pytest.raises(ActionRefused, match="reset does nothing"):
        await power.act("reset")
    assert lines.outputs == []  # nothing was pressed


async def test_without_a_power_led_on_and_off_press_regardless() -> None:
    power, lines = await started({}, has_reset=False)
    assert power.state == "unknown"
    await power.act("on")
    await power.act("off")
    assert len(held(lines)) == 2
    with pytest.raises(ActionRefused, match="no reset line"):
        await power.act("reset")


async def test_one_action_at_a_time_and_busy_is_published() -> None:
    power, lines = await started({"power": True, "hdd": False})
    seen: list[PowerStatus] = []
    power.subscribe(seen.append)
    hard = asyncio.create_task(power.act("off_hard"))
    await asyncio.sleep(0.01)
    assert power.busy and power.status().action == "off_hard"
    with pytest.raises(ActionRefused, match="busy: off_hard"):
        await power.act("reset")
    with pytest.raises(ActionRefused, match="busy"):
        await power.press(0.1)
    await hard
    assert not power.busy
    assert [s.busy for s in seen] == [True, False]
    assert len(held(lines)) == 1


async def test_a_cancelled_request_does_not_shorten_the_press() -> None:
    """A client that disconnects mid-press: a forced off cut short would be an ACPI request."""
    power, lines = await started({"power": True, "hdd": False})
    request = asyncio.create_task(power.act("off_hard"))
    await asyncio.sleep(0.05)
    request.cancel()
    await asyncio.sleep(0.3)
    [(_, seconds)] = held(lines)
    assert seconds >= TIMES.long


async def test_press_is_bounded() -> None:
    power, lines = await started({"power": True, "hdd": False})
    for bad in (0, -1, 1.5):
        with pytest.raises(ValueError, match="at most 1 s"):
            await power.press(bad)
    await power.press(0.02)
    assert len(held(lines)) == 1


async def test_led_edges_through_the_controller_debounce_and_notify_once() -> None:
    power, lines = await started({"power": False, "hdd": False})
    seen: list[PowerStatus] = []
    power.subscribe(seen.append)
    now = asyncio.get_running_loop().time()
    t = int(now * 1e9)
    # bounce, as the GPIO reader would deliver it in two read() batches
    lines.inject([LedEdge("power", True, t), LedEdge("power", False, t + 2 * MS)])
    lines.inject([LedEdge("power", True, t + 4 * MS)])
    assert power.state == "off"
    await asyncio.sleep(0.06)
    assert power.state == "on"
    assert [s.leds["power"] for s in seen] == [True]


async def test_close_releases_a_held_button() -> None:
    power, lines = await started({"power": True, "hdd": False})
    task = asyncio.create_task(power.act("off_hard"))
    await asyncio.sleep(0.01)
    await power.close()
    assert lines.outputs[-1][:2] == ("power", False)
    assert lines.closed
    with pytest.raises(asyncio.CancelledError):
        await task


# ---------------------------------------------------------------------- the simulated board
class Board:
    def __init__(self) -> None:
        self.power = True

    def set_power(self, on: bool) -> None:
        self.power = on


async def test_simulated_board_follows_the_atx_rules() -> None:
    board = Board()
    sim = SimLines(board)
    power = AtxPower(sim, TIMES, debounce=0.02)
    await power.start()
    await power.act("off")  # short press while on: ACPI shutdown
    assert board.power is False
    await asyncio.sleep(0.05)
    assert power.state == "off" and power.leds["power"] is False
    await power.act("on")
    await asyncio.sleep(0.05)
    assert board.power is True and power.state == "on"
    sim.activity()
    await asyncio.sleep(0.005)
    assert power.leds["hdd"] is True
    await asyncio.sleep(0.1)
    assert power.leds["hdd"] is False
    assert [line for line, _ in sim.presses] == ["power", "power"]
    await power.close()


def test_wiring_from_config() -> None:
    config = build_config(
        {
            "atx": {
                "chip": "/dev/gpiochip0",
                "power_line": 5,
                "reset_line": -1,
                "hdd_led_line": -1,
                "power_active_low": True,
                "power_led_active_low": True,
                "long_press_ms": 8000,
            }
        }
    )
    w = wiring_from_config(config.atx)
    assert w == AtxWiring(
        chip="/dev/gpiochip0",
        power=5,
        reset=None,
        power_led=22,
        hdd_led=None,
        active_low=frozenset({"power", "power_led"}),
        times=PressTimes(short=0.15, long=8.0, reset=0.15, max_press=15.0),
        debounce=0.1,
    )
    assert w.outputs() == {"power": 5} and w.leds() == {"power": 22}


# ---------------------------------------------------------------------- the gpiod layer, faked
class FakeRequest:
    """Stands in for ``gpiod.LineRequest`` (the kernel side); events are real gpiod.EdgeEvent
    objects and readiness is a real file descriptor, so GpiodLines' loop.add_reader path runs."""

    def __init__(self, config: dict[int, object]) -> None:
        import os

        self.config = config
        self.values: dict[int, object] = {}
        self.pending: list[object] = []
        self._r, self._w = os.pipe()
        self.fd = self._r
        self.released = False

    def get_value(self, offset: int) -> object:
        from gpiod.line import Value

        return Value.ACTIVE if offset == 22 else Value.INACTIVE

    def set_value(self, offset: int, value: object) -> None:
        self.values[offset] = value

    def push(self, *events: object) -> None:
        import os

        self.pending.extend(events)
        os.write(self._w, b"x")

    def read_edge_events(self) -> list[object]:
        import os

        os.read(self._r, 64)
        out, self.pending = self.pending, []
        return out

    def release(self) -> None:
        import os

        self.released = True
        os.close(self._r)
        os.close(self._w)


async def test_gpiod_layer_translates_requests_and_edge_events(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gpiod = pytest.importorskip("gpiod")
    from gpiod.line import Direction, Edge, Value

    from appliance.atx.gpio import GpiodLines

    made: list[FakeRequest] = []

    def request_lines(path: str, *, consumer: str, config: dict[int, object]) -> FakeRequest:
        assert path == "/dev/gpiochip9" and consumer == "ipkvm-atx"
        made.append(FakeRequest(config))
        return made[-1]

    monkeypatch.setattr(gpiod, "request_lines", request_lines)
    wiring = AtxWiring(
        chip="/dev/gpiochip9",
        power=17,
        reset=27,
        power_led=22,
        hdd_led=23,
        active_low=frozenset({"reset", "hdd_led"}),
    )
    power = AtxPower(GpiodLines(wiring), TIMES, debounce=0.02)
    await power.start()
    [req] = made
    cfg = req.config
    assert cfg[17].direction == Direction.OUTPUT and cfg[17].output_value == Value.INACTIVE
    assert cfg[27].active_low and not cfg[17].active_low
    assert cfg[22].edge_detection == Edge.BOTH and cfg[23].active_low
    assert power.state == "on" and power.leds["hdd"] is False

    t = int(asyncio.get_running_loop().time() * 1e9)
    falling, rising = gpiod.EdgeEvent.Type.FALLING_EDGE, gpiod.EdgeEvent.Type.RISING_EDGE
    req.push(
        gpiod.EdgeEvent(falling, t, 22, 1, 1),
        gpiod.EdgeEvent(rising, t + MS, 23, 2, 1),
        gpiod.EdgeEvent(falling, t + 2 * MS, 23, 3, 2),
    )
    await asyncio.sleep(0.005)
    assert power.leds["hdd"] is True  # activity shows at once
    await asyncio.sleep(0.05)
    assert power.state == "off" and power.leds["hdd"] is False

    await power.act("on")
    assert req.values[17] == Value.INACTIVE  # pressed, then released
    await power.close()
    assert req.released
