"""PortPower: the power facet of a target behind a KVM switch — the active port's ATX wiring.

Each port names its machine's wiring (``atx = "NAME"`` in ``[[switch.ports]]`` or a PATCH):
``"default"`` is ``[atx]``'s own lines, any other name an ``[atx.wirings.NAME]`` table. The
facet's status and actions are those of the wiring the active port names; a port with no wiring
(or no known active port) is *unavailable* with the reason, never the previous port's lines.

Every wiring is claimed at start, not at switch time: its LED edges are followed all along, so
the power state is right the moment a port becomes active, and a chip that cannot be opened is
reported for the ports that use it (the others keep working) instead of failing the service.

Presses and switching never overlap (docs/switch.md, "ATX power per port"):

- **switching is refused while a button is held** (the appliance's guard on the
  :class:`~appliance.switch.controller.SwitchController` asks the power facet whether it is
  busy): a 6 s forced-off must end on the machine it started on, and two ports may share one
  wiring;
- a power action is refused while the switch is changing ports (the API checks
  ``SwitchController.selecting``);
- one action at a time over all wirings, like one machine: a press on any wiring shows as
  ``busy``. A port change noticed by polling mid-press (the front-panel button) cannot be
  refused; the press then finishes on its own machine's lines.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from appliance.atx.control import AtxPower
from appliance.atx.status import LEDS, ActionRefused, PowerAction, PowerState, PowerStatus
from appliance.switch.controller import SwitchController
from appliance.switch.ports import PortSettings
from appliance.targets.facets import FacetUnavailable

log = logging.getLogger(__name__)

StatusListener = Callable[[PowerStatus], None]


class PortPower:
    """One power facet over several ATX wirings, following the switch's active port."""

    available = True

    def __init__(self, switch: SwitchController, wirings: Mapping[str, AtxPower]) -> None:
        self.switch = switch
        self.wirings = dict(wirings)
        self._listeners: list[StatusListener] = []
        for power in self.wirings.values():
            power.subscribe(self._changed)
        switch.watch(self._port_changed)

    # ------------------------------------------------------------------ which wiring
    def _port(self) -> PortSettings | None:
        active = self.switch.active
        return None if active is None else self.switch.ports.get(active)

    def current(self) -> tuple[str | None, AtxPower | None, str | None]:
        """(wiring name, its controller, why there is none) for the active port."""
        port = self._port()
        if port is None:
            return None, None, "the switch's active port is not known yet: select a port"
        label = f"port {port.port} ({port.name})"
        if port.atx is None:
            return None, None, f"{label} has no ATX wiring (its atx setting)"
        power = self.wirings.get(port.atx)
        if power is None:
            return port.atx, None, f"{label}: no ATX wiring named {port.atx!r} is configured"
        if power.failure is not None:
            return port.atx, None, f"{label}: ATX wiring {port.atx!r}: {power.failure}"
        return port.atx, power, None

    def _held(self) -> AtxPower | None:
        return next((p for p in self.wirings.values() if p.busy), None)

    # ------------------------------------------------------------------ the facet
    @property
    def state(self) -> PowerState:
        return self.status().state

    def status(self) -> PowerStatus:
        _, power, reason = self.current()
        held = self._held()
        busy, action = (True, held.status().action) if held is not None else (False, None)
        if power is None:
            return PowerStatus("unknown", dict.fromkeys(LEDS), busy, action, False, reason)
        own = power.status()
        return PowerStatus(own.state, own.leds, busy, action)

    async def act(self, action: PowerAction) -> None:
        await self._run().act(action)

    async def press(self, seconds: float) -> None:
        await self._run().press(seconds)

    def _run(self) -> AtxPower:
        _, power, reason = self.current()
        if power is None:
            raise FacetUnavailable(reason or "no ATX wiring")
        held = self._held()
        if held is not None and held is not power:
            raise ActionRefused(f"busy: {held.status().action} is in progress on another machine")
        return power

    def subscribe(self, listener: StatusListener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        for power in self.wirings.values():
            await power.start()  # a wiring that cannot be claimed says so (AtxPower.failure)

    async def close(self) -> None:
        for power in self.wirings.values():
            await power.close()

    # ------------------------------------------------------------------ changes
    def _notify(self) -> None:
        status = self.status()
        for listener in list(self._listeners):
            try:
                listener(status)
            except Exception:
                log.exception("power listener failed")

    def _changed(self, status: PowerStatus) -> None:
        # Another machine's LED changes nothing shown, but its press ending frees the facet:
        # simpler to say the (recomputed) status again than to tell the two apart.
        self._notify()

    def _port_changed(self, settings: PortSettings) -> None:
        self._notify()
