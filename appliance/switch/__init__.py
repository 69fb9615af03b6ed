"""The rack's multi-port KVM switch: which machine the appliance's HDMI input and USB output see.

- :mod:`.driver` — the :class:`SwitchDriver` interface (select, query, close, capabilities) and
  its errors;
- :mod:`.controller` — :class:`SwitchController`: one command in flight, pacing, settling,
  polling, offline/online, events, per-port settings applied on a change;
- :mod:`.ports` — the ports' names and settings (config defaults + saved changes);
- drivers: :mod:`.wired` (any serial/TCP model over :mod:`.link`: :mod:`.tesmart`, :mod:`.ezcoo`,
  :mod:`.xh`, :mod:`.extron`, :mod:`.pway`), :mod:`.hotkey` (key sequences through the HID path)
  :mod:`.demo` (the demo target's rack) and :mod:`.qemu` (the QEMU target's guests).

:data:`DRIVERS` maps ``switch.driver`` to a builder; builders import their modules lazily (a
hotkey appliance never loads pyserial). docs/switch.md documents each model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from appliance.switch.controller import SwitchController, Timing
from appliance.switch.driver import (
    SwitchBusy,
    SwitchDriver,
    SwitchError,
    SwitchMismatch,
    SwitchOffline,
    SwitchTimeout,
)
from appliance.switch.ports import PortError, PortSettings, PortStore

if TYPE_CHECKING:
    from appliance.config import Config
    from appliance.switch.power import PortPower
    from appliance.switch.wire import WireProtocol
    from appliance.targets import Target
    from hid.controller import HidController

log = logging.getLogger(__name__)

__all__ = [
    "DRIVERS",
    "PortError",
    "PortSettings",
    "PortStore",
    "SwitchBusy",
    "SwitchController",
    "SwitchDriver",
    "SwitchError",
    "SwitchMismatch",
    "SwitchOffline",
    "SwitchTimeout",
    "Timing",
    "build_switch",
    "port_power",
]


@dataclass(frozen=True, slots=True)
class Needs:
    """What a driver builder may use besides the configuration."""

    target: Target
    hid: HidController


def _wired(config: Config, protocol: WireProtocol) -> SwitchDriver:
    from appliance.switch.link import Link, SerialLink, TcpLink
    from appliance.switch.wired import WiredSwitch

    sw = config.switch
    link: Link
    if sw.host:
        link = TcpLink(sw.host, sw.tcp_port, protocol.scanner(), sw.reply_timeout)
    else:
        baud = sw.baud or protocol.baud
        link = SerialLink(sw.device, baud, protocol.scanner(), sw.reply_timeout)
    return WiredSwitch(protocol, link, sw.reply_timeout)


def _tesmart(config: Config, needs: Needs) -> SwitchDriver:
    from appliance.switch.tesmart import Tesmart

    return _wired(config, Tesmart())


def _ezcoo(config: Config, needs: Needs) -> SwitchDriver:
    from appliance.switch.ezcoo import Ezcoo

    return _wired(config, Ezcoo(config.switch.ezcoo_commands))


def _xh(config: Config, needs: Needs) -> SwitchDriver:
    from appliance.switch.xh import Xh4401

    return _wired(config, Xh4401(config.switch.xh_protocol))


def _extron(config: Config, needs: Needs) -> SwitchDriver:
    from appliance.switch.extron import Extron

    return _wired(config, Extron())


def _pway(config: Config, needs: Needs) -> SwitchDriver:
    from appliance.switch.pway import Pway

    return _wired(config, Pway())


def _hotkey(config: Config, needs: Needs) -> SwitchDriver:
    from appliance.switch.hotkey import HotkeySwitch

    sw = config.switch
    return HotkeySwitch(needs.hid, sw.hotkey, sw.hotkey_gap_ms / 1000)


def _demo(config: Config, needs: Needs) -> SwitchDriver:
    from appliance.switch.demo import DemoSwitch

    rack = getattr(needs.target, "rack", None)
    if rack is None:
        raise ValueError('switch.driver "demo" needs the demo target (target.kind = "demo")')
    return DemoSwitch(rack)


def _qemu(config: Config, needs: Needs) -> SwitchDriver:
    from appliance.switch.qemu import QemuSwitch

    rack = getattr(needs.target, "rack", None)
    if needs.target.kind != "qemu" or rack is None:
        raise ValueError('switch.driver "qemu" needs the qemu target (target.kind = "qemu")')
    return QemuSwitch(rack)


DRIVERS: dict[str, Callable[[Config, Needs], SwitchDriver]] = {
    "demo": _demo,
    "qemu": _qemu,
    "tesmart": _tesmart,
    "ezcoo": _ezcoo,
    "xh-hk4401": _xh,
    "extron": _extron,
    "pway": _pway,
    "hotkey": _hotkey,
}


def build_switch(
    config: Config,
    target: Target,
    hid: HidController,
    *,
    publish: Callable[[dict[str, Any]], None],
    on_active: Callable[[PortSettings], None],
) -> SwitchController | None:
    """The controller for ``switch.driver`` (None for "none")."""
    sw = config.switch
    if sw.driver == "none":
        return None
    from hid.layouts import LAYOUT_NAMES

    driver = DRIVERS[sw.driver](config, Needs(target, hid))
    ports = PortStore(
        sw.port_count,
        sw.ports,
        layout=config.hid.layout,
        mouse=config.hid.mouse,
        state_dir=config.server.state_dir,
        known_layouts=LAYOUT_NAMES,
        known_wirings=config.atx.wiring_names(),
    )
    controller = SwitchController(
        driver,
        ports,
        Timing(settle=sw.settle, gap=sw.gap, poll_interval=sw.poll_interval),
        publish=publish,
        on_active=on_active,
    )
    if getattr(target, "rack", None) is None:  # the demo rack's machines power themselves
        power = port_power(config, controller)
        if power is not None:
            target.power = power
    rename = getattr(driver, "port_renamed", None)
    if rename is not None:  # the demo's machines show the saved names from the start
        for p in ports.all():
            rename(p.port, p.name)
    return controller


def port_power(config: Config, controller: SwitchController) -> PortPower | None:
    """The per-port power facet (:mod:`.power`) when any ATX wiring is configured, else None
    (the target keeps its null power: no Power menu)."""
    from appliance.atx.lines import atx_power
    from appliance.atx.wiring import named_wirings
    from appliance.switch.power import PortPower

    wirings = named_wirings(config.atx)
    if not wirings:
        return None
    named = {p.atx for p in controller.ports.all() if p.atx is not None}
    if not named:
        log.warning(
            "ATX wirings are configured but no switch port names one: every port's power is "
            'unavailable (set atx = "default" or a wiring name per port in [[switch.ports]])'
        )
    return PortPower(controller, {name: atx_power(w) for name, w in wirings.items()})
