"""The machines Redfish shows as ``Systems``, and what their power and boot actions do.

One System per machine: the target itself, or — with a KVM switch — one per switch port, since
each port is a machine of its own (its own power, its own boot override). The appliance's power
facet and virtual media reach only the machine on the console port, so an action on a port's
System selects that port first; reading a System never switches.

ResetType → power facet (ATX), following the ComputerSystem schema's words: ``ForceOff`` is the
power-button override (the long press), ``GracefulShutdown`` and ``On`` a short press (the ACPI
power button), ``ForceRestart`` the reset line, ``PowerCycle`` a forced off then on,
``PushPowerButton`` one short press whatever the state. ``GracefulRestart`` and ``Nmi`` are not
offered: ATX cannot tell when an OS has finished shutting down, nor send an NMI. An action whose
end state is already reached (``On`` while on) succeeds without pressing anything, as Ironic
expects of an idempotent power request.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

from appliance.redfish.messages import fail
from appliance.switch import SwitchBusy, SwitchError
from appliance.targets.boot import BootSettings
from appliance.targets.facets import ActionRefused, FacetUnavailable, PowerState

if TYPE_CHECKING:
    from appliance.runtime import Appliance

ResetType = Literal[
    "On", "ForceOn", "ForceOff", "GracefulShutdown", "ForceRestart", "PowerCycle", "PushPowerButton"
]
RESET_TYPES: tuple[ResetType, ...] = get_args(ResetType)
SETTLE_TIMEOUT = 3.0
"""How long a Reset waits, after the button is released, for the power LED to say the new
state (the LEDs are debounced ~100 ms): the next ``GET`` then reports it, and Ironic, which
polls ``PowerState`` right after the action, sees it at its first look."""

REDFISH_POWER: dict[PowerState, str | None] = {"on": "On", "off": "Off", "unknown": None}


@dataclass(frozen=True, slots=True)
class System:
    id: str
    name: str
    port: int | None  # the switch port, None without a switch
    boot: BootSettings


def systems(appliance: Appliance) -> list[System]:
    switch = appliance.switch
    target = appliance.target
    if switch is None:
        return [System("1", "ipkvm target", None, target.boot.get(0))]
    return [
        System(str(p.port), p.name, p.port, target.boot.get(p.port - 1)) for p in switch.ports.all()
    ]


def find_system(appliance: Appliance, system_id: str) -> System | None:
    return next((s for s in systems(appliance) if s.id == system_id), None)


def on_console(appliance: Appliance, system: System) -> bool:
    """Whether the appliance's power, video and media reach this System now."""
    return system.port is None or (
        appliance.switch is not None and appliance.switch.active == system.port
    )


def power_state(appliance: Appliance, system: System) -> str | None:
    """``On``/``Off``, or None when not known (no power LED, or another port is on the console:
    its LED is not wired to the appliance then)."""
    if not appliance.target.power.available or not on_console(appliance, system):
        return None
    return REDFISH_POWER[appliance.target.power.state]


async def select(appliance: Appliance, system: System) -> None:
    """Put ``system`` on the console (a switch port), confirmed by the switch."""
    switch = appliance.switch
    if system.port is None or switch is None or switch.active == system.port:
        return
    try:
        await switch.select(system.port)
    except SwitchBusy as exc:
        raise fail(409, f"the KVM switch is busy: {exc}", "ResourceInUse") from exc
    except SwitchError as exc:
        raise fail(503, f"could not select port {system.port}: {exc}") from exc


async def reset(appliance: Appliance, system: System, kind: ResetType) -> None:
    """Carry out one ResetType on ``system`` (selecting its port first)."""
    await select(appliance, system)
    power = appliance.target.power
    state = power.state
    try:
        if kind in ("On", "ForceOn"):
            if state != "on":
                await power.act("on")
                await _settle(appliance, "on")
        elif kind in ("ForceOff", "GracefulShutdown"):
            if state != "off":
                await power.act("off_hard" if kind == "ForceOff" else "off")
                await _settle(appliance, "off")
        elif kind == "ForceRestart":
            await power.act("reset" if state != "off" else "on")
            await _settle(appliance, "on")
        elif kind == "PowerCycle":
            if state != "off":
                await power.act("off_hard")
                await _settle(appliance, "off")
            await power.act("on")
            await _settle(appliance, "on")
        else:  # PushPowerButton
            await power.press(appliance.config.atx.press_ms / 1000)
    except FacetUnavailable as exc:
        raise fail(409, str(exc), "ResourceInUse") from exc
    except ActionRefused as exc:
        raise fail(409, f"{kind} refused: {exc}", "ResourceInUse") from exc


async def _settle(appliance: Appliance, want: PowerState) -> None:
    power = appliance.target.power
    if power.state == want:
        return
    changed = asyncio.Event()
    unsubscribe = power.subscribe(lambda _status: changed.set())
    try:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SETTLE_TIMEOUT):
                while power.state != want:
                    await changed.wait()
                    changed.clear()
    finally:
        unsubscribe()
