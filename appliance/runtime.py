"""The running appliance: one object graph (video source → hub → encoders, HID controller) built
from the configuration, with start/stop and a state document for the API and WebSocket clients."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from appliance import __version__
from appliance.jobs import JobRunner
from hid.controller import HidController
from hid.keymap import USAGE_TO_CODE
from hid.output import HidOutput

if TYPE_CHECKING:
    from appliance.config import Config
    from capture.demo import DemoMachine
    from capture.hub import FrameHub
    from capture.jpeg import JpegEncoder
    from capture.source import VideoSource

log = logging.getLogger(__name__)

Listener = Callable[[dict[str, Any]], None]


@dataclass
class EventBus:
    """Fan-out of server events to WebSocket clients. State changes that happen in one loop
    iteration (a key press changes keys and maybe LEDs) are sent as one ``state`` message."""

    state_fn: Callable[[], dict[str, Any]]
    listeners: set[Listener] = field(default_factory=set)
    _pending: bool = False

    def add(self, listener: Listener) -> Callable[[], None]:
        self.listeners.add(listener)
        self.state_changed()
        return lambda: self.listeners.discard(listener)

    def publish(self, event: dict[str, Any]) -> None:
        for listener in list(self.listeners):
            listener(event)

    def state_changed(self, *_: object) -> None:
        if self._pending:
            return
        self._pending = True
        asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._pending = False
        if self.listeners:
            self.publish({"type": "state", **self.state_fn()})


@dataclass
class Appliance:
    config: Config
    hub: FrameHub
    source: VideoSource
    hid: HidController
    jpeg: JpegEncoder
    demo: DemoMachine | None = None
    clients: int = 0
    events: EventBus = field(init=False)
    # Long operations (typing, key chords, scripts): their progress goes out as ``job`` events.
    jobs: JobRunner = field(init=False)
    # One script at a time per target: two interleaved scripts would drive one BIOS menu in turns.
    script_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    streams: set[asyncio.Task[Any]] = field(default_factory=set)
    _client_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.events = EventBus(self.state)
        self.jobs = JobRunner(self.events.publish)

    def client_name(self, prefix: str) -> str:
        """A HidController client name no other caller uses (``prefix:N``), so releasing one
        caller's keys never lets go of another's."""
        return f"{prefix}:{next(self._client_ids)}"

    async def start(self) -> None:
        self.hid.subscribe(self.events.state_changed)
        self.hub.subscribe(self.events.state_changed)
        await self.hid.start()
        await self.source.start(self.hub)

    @contextlib.contextmanager
    def stream(self) -> Iterator[None]:
        """Mark the current handler as a long-lived stream (MJPEG, WebSocket) that shutdown ends
        at once instead of waiting for the viewer to leave."""
        task = asyncio.current_task()
        assert task is not None
        self.streams.add(task)
        try:
            yield
        finally:
            self.streams.discard(task)

    def end_streams(self) -> None:
        for task in list(self.streams):
            task.cancel()

    async def close(self) -> None:
        self.end_streams()
        await self.jobs.close()
        await self.hid.close()  # releases every key and button first
        await self.source.close()

    def state(self) -> dict[str, Any]:
        signal = self.hub.signal
        hid = self.hid
        return {
            "version": __version__,
            "target": {"kind": self.config.target.kind},
            "hid": {
                "output": hid.output.name,
                "online": hid.online,
                "leds": hid.leds.as_dict(),
                "mouse_mode": hid.mouse_mode,
                "keys_held": [USAGE_TO_CODE.get(u, hex(u)) for u in hid.keyboard.held],
                "queued": hid.queued,
                "layout": self.config.hid.layout,
                "error": hid.last_error,
                # Which device is the problem when only one is (e.g. a wrong mouse path).
                "devices": {d.value: st.as_dict() for d, st in hid.devices.items()},
            },
            "video": {
                "status": signal.status,
                "message": signal.message,
                "width": signal.width,
                "height": signal.height,
                "fps": round(signal.fps, 1),
            },
            "clients": self.clients,
        }


APPLIANCE: web.AppKey[Appliance] = web.AppKey("appliance", Appliance)


def build_appliance(config: Config) -> Appliance:
    """Pick the video source and HID output the configuration asks for."""
    from capture.hub import FrameHub
    from capture.jpeg import JpegEncoder

    demo: DemoMachine | None = None
    if config.target.kind == "demo" or config.video.source == "demo" or config.hid.output == "demo":
        from capture.demo import DemoMachine

        demo = DemoMachine(
            width=config.demo.width,
            height=config.demo.height,
            layout=config.demo.layout,
            stamp=config.demo.stamp,
        )

    source: VideoSource
    if config.video.source == "demo":
        from capture.demo import DemoSource

        assert demo is not None
        source = DemoSource(demo, fps=config.video.fps)
    else:
        from capture.v4l2 import V4l2Source

        source = V4l2Source(
            str(config.video.device),
            width=config.video.width,
            height=config.video.height,
            fps=config.video.fps,
            fourcc=config.video.format,
        )

    output = build_output(config, demo)
    hid = HidController(output)
    hid.set_mouse_mode(config.hid.mouse)
    return Appliance(
        config=config,
        hub=FrameHub(),
        source=source,
        hid=hid,
        jpeg=JpegEncoder(quality=config.stream.jpeg_quality),
        demo=demo,
    )


def build_output(config: Config, demo: DemoMachine | None) -> HidOutput:
    kind = config.hid.output
    if kind == "demo":
        from hid.demo import DemoOutput

        assert demo is not None
        return DemoOutput(demo)
    if kind == "otg":
        from hid.otg import OtgOutput

        otg = config.hid.otg
        return OtgOutput(keyboard=otg.keyboard, mouse_abs=otg.mouse, mouse_rel=otg.mouse_rel)
    if kind == "ch9329":
        from hid.ch9329 import Ch9329Output

        return Ch9329Output(config.hid.ch9329.port, baud=config.hid.ch9329.baud)
    raise ValueError(f"hid.output: unknown output {kind!r}")
