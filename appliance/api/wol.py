"""``/api/wol``: send a Wake-on-LAN magic packet to a machine.

Which machine: the body's ``mac``; else the KVM switch port the body names (``switch_port``, a
number or a name: that port's ``wol_mac``); else, behind a switch, the active port's
``wol_mac``; else, with no switch, ``wol.mac``. Behind a switch ``wol.mac`` is not a fallback: it
names one machine, and waking it while another port is active would wake the wrong one.
Always routed (a MAC may come with the request even when none is configured); the console shows
its button when ``GET /api/wol`` names a MAC for the machine on the console now.
"""

from __future__ import annotations

from aiohttp import web

from appliance.api.httpjson import fail, get_field, json_response, read_json
from appliance.api.openapi import Operation, describe, integer, nullable, obj, ok, string
from appliance.api.rights import audit_detail
from appliance.runtime import APPLIANCE, Appliance
from appliance.switch import PortError
from appliance.wol import BadMac, format_mac, parse_mac, send_magic_packet

routes = web.RouteTableDef()

_SWITCH_PORT = {"oneOf": [integer(1), string(minLength=1)]}
_SETTINGS = obj(
    ("mac", "address", "port", "switch_port"),
    mac=nullable(string("the MAC a wake without one uses (active port's, or wol.mac)")),
    address=string("broadcast address the packet goes to"),
    port=integer(1, 65535),
    switch_port=nullable(integer(1, description="the switch port that MAC belongs to")),
    reason=nullable(string("why there is no MAC")),
)


def _port_mac(appliance: Appliance, spec: int | str | None) -> tuple[str | None, int | None, str]:
    """(MAC, switch port, why there is none) for the port *spec* names, or the active one."""
    switch = appliance.switch
    assert switch is not None
    if spec is None:
        if switch.active is None:
            return None, None, "the switch's active port is not known: name a switch_port"
        number = switch.active
    else:
        try:
            number = switch.ports.find(spec)
        except PortError as exc:
            fail(400, str(exc))
    settings = switch.ports.get(number)
    if settings.wol_mac is None:
        return (
            None,
            number,
            f"port {number} ({settings.name}) has no Wake-on-LAN MAC "
            f"(set wol_mac: PATCH /api/switch/ports/{number})",
        )
    return settings.wol_mac, number, ""


def target_mac(
    appliance: Appliance, spec: int | str | None = None
) -> tuple[str | None, int | None, str]:
    """(MAC, switch port or None, why there is none) of the machine a wake is for."""
    if appliance.switch is not None:
        return _port_mac(appliance, spec)
    if spec is not None:
        fail(400, "switch_port: there is no KVM switch ([switch] driver)")
    mac = appliance.config.wol.mac or None
    return mac, None, "" if mac else "no MAC configured (wol.mac)"


@routes.get("/api/wol")
@describe(
    Operation(
        permission="view",
        summary="Wake-on-LAN settings and the MAC of the machine on the console now",
        tag="power",
        replies={200: ok("the settings", _SETTINGS)},
    )
)
async def wol_settings(request: web.Request) -> web.Response:
    appliance = request.app[APPLIANCE]
    wol = appliance.config.wol
    mac, switch_port, reason = target_mac(appliance)
    return json_response(
        {
            "mac": mac,
            "address": wol.address,
            "port": wol.port,
            "switch_port": switch_port,
            "reason": reason or None,
        }
    )


@routes.post("/api/wol")
@describe(
    Operation(
        permission="power",
        audit="power.wol",
        summary="Send a Wake-on-LAN magic packet (a MAC, a switch port's, the active port's "
        "or wol.mac)",
        tag="power",
        body=obj(
            mac=string("aa:bb:cc:dd:ee:ff, aa-bb-..., or aabb.ccdd.eeff"),
            switch_port=_SWITCH_PORT,
        ),
        body_required=False,
        replies={
            200: ok(
                "sent",
                obj(
                    ("sent", "mac", "address", "port", "switch_port"),
                    sent={"const": True},
                    mac=string(),
                    address=string(),
                    port=integer(1, 65535),
                    switch_port=nullable(integer(1)),
                ),
            )
        },
        errors={
            400: "no MAC given or known for that machine, a malformed MAC, or no such port",
            502: "the send failed",
        },
    )
)
async def wake(request: web.Request) -> web.Response:
    appliance = request.app[APPLIANCE]
    wol = appliance.config.wol
    data = await read_json(request, optional=True)
    text = get_field(data, "mac", str, None)
    spec = get_field(data, "switch_port", (int, str), None)
    if isinstance(spec, bool):
        fail(400, f"switch_port must be a port number or name, not {spec!r}")
    if text and spec is not None:
        fail(400, "give mac or switch_port, not both")
    switch_port: int | None = None
    if not text:
        text, switch_port, reason = target_mac(appliance, spec)
        if not text:
            fail(400, f'no MAC address: {reason}; or send {{"mac": "aa:bb:cc:dd:ee:ff"}}')
    try:
        mac = parse_mac(text)
    except BadMac as exc:
        fail(400, str(exc))
    audit_detail(request, mac=str(mac))
    try:
        send_magic_packet(mac, wol.address, wol.port)
    except OSError as exc:
        fail(502, f"could not send the magic packet to {wol.address}:{wol.port}: {exc}")
    return json_response(
        {
            "sent": True,
            "mac": format_mac(mac),
            "address": wol.address,
            "port": wol.port,
            "switch_port": switch_port,
        }
    )
