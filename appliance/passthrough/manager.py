"""Passthrough: keyboards and mice plugged into the appliance, grabbed and forwarded to the target.

Follows hot-plug through kernel uevents (:mod:`.uevent`); each matching device is opened,
grabbed exclusively (``EVIOCGRAB``: the appliance's own console no longer sees it) and read by a
:class:`.session.DeviceSession` under its own HID client (``local:N``). A device that vanishes
ends its session, which releases on the target everything it held.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from appliance.passthrough import devices
from appliance.passthrough.devices import Identity, Kind
from appliance.passthrough.hotkey import HotkeyDetector, parse_hotkey
from appliance.passthrough.session import DeviceSession, SelectPort
from appliance.passthrough.translate import HidSink
from appliance.passthrough.uevent import UEvent, UeventMonitor

log = logging.getLogger(__name__)

OPEN_RETRIES: Final = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0)
"""Seconds to wait before each try to open a new node: the kernel announces it before udev has
given it its group (``input``), so the first open may be refused."""


class InputDeviceLike(Protocol):
    """What is used of ``evdev.InputDevice`` (the tests hand in stand-ins)."""

    fd: int
    name: str

    @property
    def info(self) -> Any: ...
    def capabilities(self) -> dict[int, list[int]]: ...
    def grab(self) -> None: ...
    def ungrab(self) -> None: ...
    def close(self) -> None: ...


def _open_evdev(path: str) -> InputDeviceLike:
    import evdev

    device: InputDeviceLike = evdev.InputDevice(path)
    return device


@dataclass(frozen=True, slots=True)
class Settings:
    """``[passthrough]`` as the manager needs it."""

    patterns: tuple[str, ...] = ()
    hotkey: str = "scrolllock scrolllock"
    hotkey_timeout: float = 2.0


@dataclass
class Grabbed:
    identity: Identity
    kind: Kind
    device: InputDeviceLike
    session: DeviceSession

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.identity.path,
            "name": self.identity.name,
            "kind": self.kind,
            "client": self.session.client,
            "held": self.session.held,
        }


@dataclass
class Passthrough:
    settings: Settings
    hid: HidSink
    new_client: Callable[[str], str]
    select: SelectPort | None
    """Switch ports on the hotkey (None: no ``[switch]``, the hotkey is not watched for)."""
    on_change: Callable[[], None]
    own_ids: Collection[tuple[int, int]] = ()
    open_device: Callable[[str], InputDeviceLike] = _open_evdev
    grabbed: dict[str, Grabbed] = field(default_factory=dict)
    monitor: UeventMonitor | None = None
    hotplug_error: str | None = None
    _steps: tuple[tuple[str, ...], ...] = ()
    _attaching: dict[str, asyncio.Task[None]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.settings.hotkey.strip():
            try:
                self._steps = parse_hotkey(self.settings.hotkey)
            except ValueError as exc:  # UnknownKey is a ValueError
                raise ValueError(f"passthrough.hotkey {self.settings.hotkey!r}: {exc}") from None

    async def start(self) -> None:
        """Follow hot-plug first, then take the devices already there (none slips between)."""
        monitor = UeventMonitor(self._uevent, self.rescan)
        try:
            monitor.start()
            self.monitor = monitor
        except OSError as exc:
            self.hotplug_error = f"no hot-plug events: {exc}"
            log.warning("passthrough: %s; only devices present at start are used", exc)
        self.rescan()

    def rescan(self) -> None:
        for path in devices.event_nodes():
            self.attach(path)

    async def close(self) -> None:
        if self.monitor is not None:
            self.monitor.close()
            self.monitor = None
        for task in list(self._attaching.values()):
            task.cancel()
        for path in list(self.grabbed):
            self.detach(path, "stopping")

    def _uevent(self, event: UEvent) -> None:
        if not event.is_evdev or event.devnode is None:
            return
        if event.action == "add":
            self.attach(event.devnode)
        elif event.action == "remove":
            self.detach(event.devnode, "removed")

    def attach(self, path: str) -> None:
        """Take *path* if it is a local keyboard or mouse the config lets through (a task:
        the node may need a moment before it can be opened)."""
        if path in self.grabbed or path in self._attaching:
            return
        task = asyncio.ensure_future(self._attach(path))
        self._attaching[path] = task
        task.add_done_callback(lambda _t: self._attaching.pop(path, None))

    async def _attach(self, path: str) -> None:
        device: InputDeviceLike | None = None
        last: OSError | None = None
        for delay in OPEN_RETRIES:
            await asyncio.sleep(delay)
            try:
                device = self.open_device(path)
                break
            except (PermissionError, FileNotFoundError) as exc:
                last = exc
            except OSError as exc:
                log.info("passthrough: %s: cannot open (%s)", path, exc)
                return
        if device is None:
            log.info("passthrough: %s: cannot open (%s)", path, last)
            return
        try:
            self._take(path, device)
        except Exception:
            device.close()
            raise

    def _take(self, path: str, device: InputDeviceLike) -> None:
        info = device.info
        identity = Identity(
            path=path,
            name=device.name,
            vendor=info.vendor,
            product=info.product,
            aliases=devices.aliases_of(path),
        )
        kind = devices.kind_of(device.capabilities())
        if kind is None or devices.is_own(identity, self.own_ids):
            device.close()
            return
        if not devices.matches(identity, self.settings.patterns):
            log.info(
                "passthrough: %s (%s) not in passthrough.devices; left alone", path, device.name
            )
            device.close()
            return
        try:
            device.grab()
        except OSError as exc:
            log.warning("passthrough: %s (%s): cannot grab: %s", path, device.name, exc)
            device.close()
            return
        hotkey = None
        if self._steps and self.select is not None and kind != "mouse":
            hotkey = HotkeyDetector(self._steps, self.settings.hotkey_timeout)
        session = DeviceSession(
            fd=device.fd,
            hid=self.hid,
            client=self.new_client("local"),
            hotkey=hotkey,
            select=self.select,
            on_gone=self._gone,
        )
        self.grabbed[path] = Grabbed(identity, kind, device, session)
        session.start()
        log.info("passthrough: grabbed %s %s (%s) as %s", kind, path, device.name, session.client)
        self.on_change()

    def _gone(self, session: DeviceSession, why: str) -> None:
        for path, grabbed in list(self.grabbed.items()):
            if grabbed.session is session:
                self.detach(path, why)

    def detach(self, path: str, why: str) -> None:
        grabbed = self.grabbed.pop(path, None)
        if grabbed is None:
            return
        grabbed.session.stop()  # releases what it held (no-op when it ended itself)
        try:
            grabbed.device.ungrab()
        except OSError:
            pass  # gone already
        grabbed.device.close()
        log.info("passthrough: %s (%s) let go: %s", path, grabbed.identity.name, why)
        self.on_change()

    def state(self) -> dict[str, Any]:
        return {
            "enabled": True,
            "hotkey": self.settings.hotkey if self._steps and self.select is not None else None,
            "hotplug_error": self.hotplug_error,
            "devices": [g.as_dict() for g in self.grabbed.values()],
        }
