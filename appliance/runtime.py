"""The running appliance: one object graph (video source → hub → encoders, HID controller) built
from the configuration, with start/stop and a state document for the API and WebSocket clients."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, get_args

from aiohttp import web

from appliance import __version__, memory
from appliance.jobs import JobRunner
from hid.controller import HidController
from hid.keymap import USAGE_TO_CODE

if TYPE_CHECKING:
    from appliance.config import Config, StreamConfig
    from appliance.mediactl import MediaControl
    from appliance.passthrough import Passthrough
    from appliance.switch import PortSettings, SwitchController
    from appliance.targets import Target
    from appliance.targets.facets import PowerStatus
    from capture.h264 import EncoderSettings, H264Encoder
    from capture.hub import FrameHub
    from capture.jpeg import JpegEncoder
    from capture.source import VideoSource

log = logging.getLogger(__name__)

Listener = Callable[[dict[str, Any]], None]
Transport = Literal["mjpeg", "h264_ws"]
TRANSPORTS: tuple[Transport, ...] = get_args(Transport)


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
    target: Target
    hub: FrameHub
    hid: HidController
    jpeg: JpegEncoder
    """The one JPEG encoder (MJPEG viewers, snapshots): each picture encoded once."""
    h264: H264Encoder
    """The one H.264 encoder (WebCodecs viewers and every WebRTC peer): one encode per stream."""
    clients: int = 0
    viewers: dict[Transport, int] = field(default_factory=lambda: dict.fromkeys(TRANSPORTS, 0))
    """Video viewers per streaming transport (WebRTC peers are counted by their service)."""
    switch: SwitchController | None = None
    """The rack's KVM switch (None: ``switch.driver = "none"``; its routes are not added)."""
    passthrough: Passthrough | None = None
    """Local keyboards and mice forwarded to the target (None: ``passthrough.enabled`` false)."""
    media: MediaControl | None = None
    """Virtual media: the image store and the target's drive (None: the target has none)."""
    events: EventBus = field(init=False)
    # Long operations (typing, key chords, scripts): their progress goes out as ``job`` events.
    jobs: JobRunner = field(init=False)
    # One script at a time per target: two interleaved scripts would drive one BIOS menu in turns.
    script_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    streams: set[asyncio.Task[Any]] = field(default_factory=set)
    _client_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _trimmer: asyncio.Task[None] | None = None
    """Returns freed picture memory to the kernel now and then (memory.trim_periodically)."""

    def __post_init__(self) -> None:
        self.events = EventBus(self.state)
        self.jobs = JobRunner(self.events.publish)

    @property
    def source(self) -> VideoSource:
        return self.target.video

    @property
    def layout(self) -> str:
        """The layout typing and scripts use: the active switch port's, else ``[hid]``'s."""
        if self.switch is not None and self.switch.active is not None:
            return self.switch.ports.get(self.switch.active).layout
        return self.config.hid.layout

    def port_selected(self, settings: PortSettings) -> None:
        """A switch port became active: its mouse mode applies (its layout is read on demand)."""
        self.hid.set_mouse_mode(settings.mouse)
        self.events.state_changed()

    def new_client(self, kind: str) -> str:
        """A HID client name unique in this appliance ("ws:3"): what a client holds is released
        by this name when it goes away, so two connections must never share one."""
        return f"{kind}:{next(self._client_ids)}"

    async def start(self) -> None:
        self.hid.subscribe(self.events.state_changed)
        self.hub.subscribe(self.events.state_changed)
        self.target.power.subscribe(self._power_changed)
        await self.target.power.start()
        await self.hid.start()
        await self.source.start(self.hub)
        if self.switch is not None:
            await self.switch.start()
        if self.passthrough is not None:
            await self.passthrough.start()
        if self.media is not None:
            self.media.adopt()
        self._trimmer = asyncio.create_task(memory.trim_periodically(), name="malloc-trim")

    def media_changed(self) -> None:
        """The drive or the store changed: a ``media`` event for the console, and the state."""
        if self.media is not None:
            self.events.publish({"type": "media", **self.media.status()})
        self.events.state_changed()

    def _power_changed(self, status: PowerStatus) -> None:
        """LEDs or a press changed: a ``power`` event for the console's buttons, and the state."""
        self.events.publish({"type": "power", **status.as_dict()})
        self.events.state_changed()

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

    @contextlib.contextmanager
    def viewing(self, transport: Transport) -> Iterator[None]:
        """Count the current handler as a viewer of ``transport`` while it streams."""
        self.viewers[transport] += 1
        try:
            yield
        finally:
            self.viewers[transport] -= 1

    def end_streams(self) -> None:
        for task in list(self.streams):
            task.cancel()

    async def close(self) -> None:
        self.end_streams()
        if self._trimmer is not None:
            self._trimmer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._trimmer
            self._trimmer = None
        await self.jobs.close()
        if self.media is not None:
            await self.media.close()
        if self.passthrough is not None:
            await self.passthrough.close()  # releases what local devices held
        if self.switch is not None:
            await self.switch.close()
        await self.hid.close()  # releases every key and button first
        await self.source.close()
        await self.h264.close()
        await self.target.power.close()  # releases a button still held

    def state(self) -> dict[str, Any]:
        signal = self.hub.signal
        hid = self.hid
        return {
            "version": __version__,
            "target": {
                "kind": self.target.kind,
                "facets": self.target.facets(),
                "power": self.target.power.state,
            },
            "hid": {
                "output": hid.output.name,
                "online": hid.online,
                "leds": hid.leds.as_dict(),
                "mouse_mode": hid.mouse_mode,
                "keys_held": [USAGE_TO_CODE.get(u, hex(u)) for u in hid.keyboard.held],
                "queued": hid.queued,
                "layout": self.layout,
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
            "switch": self.switch.status() if self.switch is not None else None,
            "media": (
                self.media.status()
                if self.media is not None
                else {"available": False, "inserted": False, "image": None}
            ),
            "passthrough": (
                self.passthrough.state()
                if self.passthrough is not None
                else {"enabled": False, "devices": []}
            ),
        }


APPLIANCE: web.AppKey[Appliance] = web.AppKey("appliance", Appliance)


def build_appliance(config: Config) -> Appliance:
    """The appliance around the target ``target.kind`` names (see :mod:`appliance.targets`)."""
    from appliance.targets import build_target
    from capture.h264 import H264Encoder
    from capture.hub import FrameHub
    from capture.jpeg import JpegEncoder

    target = build_target(config)
    hub = FrameHub()
    hid = HidController(target.hid)
    hid.set_mouse_mode(config.hid.mouse)
    appliance = Appliance(
        config=config,
        target=target,
        hub=hub,
        hid=hid,
        jpeg=JpegEncoder(quality=config.stream.jpeg_quality),
        h264=H264Encoder(hub, encoder_settings(config.stream)),
    )
    if config.switch.driver != "none":
        from appliance.switch import build_switch

        appliance.switch = build_switch(
            config,
            target,
            hid,
            publish=appliance.events.publish,
            on_active=appliance.port_selected,
        )
    if config.passthrough.enabled:
        appliance.passthrough = build_passthrough(appliance)
    if target.media.available:
        appliance.media = build_media(appliance)
    return appliance


def build_media(appliance: Appliance) -> MediaControl:
    """The image store (``[media]``) joined to the target's drive."""
    from appliance.media.store import ImageStore
    from appliance.mediactl import MediaControl

    cfg = appliance.config.media
    store = ImageStore(cfg.dir, max_size=cfg.max_image_mb << 20, reserve=cfg.reserve_mb << 20)
    return MediaControl(
        store,
        appliance.target.media,
        appliance.jobs,
        changed=appliance.media_changed,
        fetch_timeout=cfg.fetch_timeout,
    )


def build_passthrough(appliance: Appliance) -> Passthrough:
    """Local passthrough around the appliance's HID controller (evdev loads only here)."""
    from appliance.passthrough import Passthrough, Settings
    from hid.gadget import GadgetConfig as GadgetIds

    cfg = appliance.config.passthrough
    ids = GadgetIds()
    return Passthrough(
        settings=Settings(
            patterns=cfg.devices, hotkey=cfg.hotkey, hotkey_timeout=cfg.hotkey_timeout
        ),
        hid=appliance.hid,
        new_client=appliance.new_client,
        select=appliance.switch.select if appliance.switch is not None else None,
        on_change=appliance.events.state_changed,
        # The appliance's own gadget, seen by a USB host port of the same board: never fed back.
        own_ids=[(ids.vendor_id, ids.product_id)],
    )


def encoder_settings(stream: StreamConfig) -> EncoderSettings:
    """H.264 encoder settings from ``[stream]`` (bitrate in kbit/s; gop 0: IDRs only on request)."""
    from capture.h264 import EncoderSettings

    return EncoderSettings(
        bitrate=stream.h264_bitrate,
        gop=stream.h264_gop,
        max_fps=float(stream.max_fps),
        codec=stream.h264_codec,
    )
