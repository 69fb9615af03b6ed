"""QemuPower: the ATX power actions of the console mapped onto the active guest's QEMU.

=========  ==========================================  ========================================
action     launched guest                              attached guest
=========  ==========================================  ========================================
on         off (no QEMU): launch it; shutdown:         shutdown/paused: ``system_reset`` +
           ``system_reset`` + ``cont``; paused:         ``cont`` (paused by someone: ``cont``)
           ``cont``
off        ``system_powerdown`` (ACPI: the OS decides, as a short press of the power button)
off_hard   ``quit``: the QEMU process ends (a power     ``stop`` + ``system_reset``: held off
           cut; memory freed)                           (we cannot start an attached QEMU again)
reset      ``system_reset``
=========  ==========================================  ========================================

"on" means the guest's CPUs run (status ``running``); a guest that powered itself off, was
stopped or has no QEMU is "off"; one whose QMP does not answer is "unknown". A press of the
power button (``press``) is "on" when off, ACPI power-down when on for less than 4 s, and a hard
off when held 4 s or longer — what an ATX board does with the same press.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from appliance.targets.facets import (
    LEDS,
    ActionRefused,
    FacetUnavailable,
    PowerAction,
    PowerState,
    PowerStatus,
)
from appliance.targets.qemu.guest import GuestOffline, QemuGuest, QmpCommandError
from appliance.targets.qemu.rack import QemuRack

HARD_PRESS = 4.0  # seconds: an ATX board's forced-off threshold
MAX_PRESS = 30.0


class QemuPower:
    available = True

    def __init__(self, rack: QemuRack) -> None:
        self.rack = rack
        self._action: str | None = None
        self._listeners: list[Callable[[PowerStatus], None]] = []
        self._unsubscribe: Callable[[], None] | None = None
        self._last: PowerStatus | None = None

    @property
    def state(self) -> PowerState:
        return guest_power(self.rack.guest)

    def status(self) -> PowerStatus:
        leds = dict.fromkeys(LEDS)
        state = self.state
        leds["power"] = None if state == "unknown" else state == "on"
        return PowerStatus(state, leds, busy=self._action is not None, action=self._action)

    def subscribe(self, listener: Callable[[PowerStatus], None]) -> Callable[[], None]:
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def _notify(self) -> None:
        status = self.status()
        if status == self._last:
            return
        self._last = status
        for listener in list(self._listeners):
            listener(status)

    async def start(self) -> None:
        """Start the guests (launch or attach): the appliance starts power first."""
        if self._unsubscribe is None:
            self._unsubscribe = self.rack.on_change(self._notify)
        await self.rack.start()

    async def close(self) -> None:
        """Stop the guests: the appliance closes power last."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        await self.rack.close()

    async def press(self, seconds: float) -> None:
        if not 0 < seconds <= MAX_PRESS:
            raise ValueError(f"a press lasts more than 0 and at most {MAX_PRESS:g} s")
        if self.state != "on":
            await self.act("on")
        else:
            await self.act("off_hard" if seconds >= HARD_PRESS else "off")

    async def act(self, action: PowerAction) -> None:
        if self._action is not None:
            raise ActionRefused(f"busy: {self._action} is in progress")
        guest = self.rack.guest
        state = guest_power(guest)
        if action == "on" and state == "on":
            raise ActionRefused(f"guest {guest.name} is already on")
        if action in ("off", "off_hard", "reset") and state == "off":
            raise ActionRefused(f"guest {guest.name} is off")
        self._action = action
        self._notify()
        try:
            await _ACTIONS[action](guest)
            await guest.refresh()
        except GuestOffline as exc:
            raise FacetUnavailable(str(exc)) from None
        except QmpCommandError as exc:
            raise ActionRefused(str(exc)) from None
        finally:
            self._action = None
            self._notify()


def guest_power(guest: QemuGuest) -> PowerState:
    if guest.status == "running":
        return "on"
    if guest.status in ("off", "shutdown", "paused", "failed"):
        return "off"
    return "unknown"


async def _on(guest: QemuGuest) -> None:
    if guest.status in ("off", "failed") and guest.launched:
        await guest.launch()
        return
    if guest.status == "shutdown" or (guest.status == "paused" and not guest.launched):
        await guest.execute("system_reset")
    await guest.execute("cont")


async def _off(guest: QemuGuest) -> None:
    await guest.execute("system_powerdown")


async def _off_hard(guest: QemuGuest) -> None:
    if guest.launched:
        await guest.quit()
    else:
        await guest.execute("stop")
        await guest.execute("system_reset")


async def _reset(guest: QemuGuest) -> None:
    await guest.execute("system_reset")


_ACTIONS = {"on": _on, "off": _off, "off_hard": _off_hard, "reset": _reset}


async def wait_power(guest: QemuGuest, state: PowerState, timeout: float) -> None:
    """Wait until *guest* reaches *state* (tests and the switch's settle)."""
    changed = asyncio.Event()
    stop = guest.on_change(changed.set)
    try:
        async with asyncio.timeout(timeout):
            while guest_power(guest) != state:
                await changed.wait()
                changed.clear()
    finally:
        stop()
