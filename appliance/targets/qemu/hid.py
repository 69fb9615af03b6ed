"""QemuOutput: the HID output that plays reports into the active guest with ``input-send-event``.

Each report becomes one QMP command carrying the events that differ from the guest's previous
report (:mod:`.input`); one lock keeps the keyboard's and the mouse's commands in the order the
controller issued them. A guest that is not running refuses reports (TargetOffline) like a
powered-off USB host, so the controller keeps them and retries in order. LEDs come back from
the guest's display (QEMU's VNC LED pseudo-encoding, :mod:`.vnc`): QMP has no LED query.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from appliance.targets.qemu.guest import GuestOffline, QemuGuest, QmpCommandError
from appliance.targets.qemu.input import InputDecoder
from appliance.targets.qemu.rack import QemuRack
from hid.output import HidOutput, OutputError, TargetOffline
from hid.reports import Report

log = logging.getLogger(__name__)


class QemuOutput(HidOutput):
    name = "qemu"

    def __init__(self, rack: QemuRack) -> None:
        super().__init__()
        self.rack = rack
        self._decoders: dict[tuple[str, int], InputDecoder] = {}
        """By guest *life*: a relaunched QEMU holds no keys."""
        self._lock = asyncio.Lock()
        self._unsubscribe: list[Callable[[], None]] = []

    def decoder(self, guest: QemuGuest) -> InputDecoder:
        decoder = self._decoders.get(guest.life)
        if decoder is None:
            self._decoders = {k: v for k, v in self._decoders.items() if k[0] != guest.name}
            decoder = self._decoders[guest.life] = InputDecoder()
        return decoder

    async def open(self) -> None:
        if not self._unsubscribe:
            self._unsubscribe = [
                self.rack.on_leds(self._set_leds),
                self.rack.on_change(self._changed),
            ]
        self._set_leds(self.rack.guest.leds)
        self._changed()

    async def close(self) -> None:
        for stop in self._unsubscribe:
            stop()
        self._unsubscribe = []

    def _changed(self) -> None:
        guest = self.rack.guest
        if guest.status == "running":
            self._set_online(True)
        else:
            self._set_online(False, guest.message or f"guest {guest.name} is {guest.status}")

    async def write(self, report: Report) -> None:
        async with self._lock:
            guest = self.rack.guest
            if guest.status != "running":
                raise TargetOffline(guest.message or f"guest {guest.name} is {guest.status}")
            decoder = self.decoder(guest)
            before = (decoder.modifiers, decoder.keys, decoder.buttons, decoder.abs_pos)
            events = decoder.events(report)
            if not events:
                return
            try:
                await guest.execute("input-send-event", {"events": events})
            except (GuestOffline, QmpCommandError) as exc:
                # not delivered: the decoder must not believe the guest saw it (the controller
                # retries the report, which must then produce the same events again)
                decoder.modifiers, decoder.keys, decoder.buttons, decoder.abs_pos = before
                if isinstance(exc, GuestOffline):
                    raise TargetOffline(str(exc)) from None
                raise OutputError(str(exc)) from None
            self.rack.input_sent()
