"""``POST /api/wol``: send a Wake-on-LAN magic packet to the body's MAC or ``wol.mac``.

Always routed (a MAC may come with the request even when none is configured); the console shows
its button only when ``wol.mac`` is set (``GET /api/wol`` says so).
"""

from __future__ import annotations

from aiohttp import web

from appliance.api.httpjson import fail, get_field, json_response, read_json
from appliance.api.openapi import Operation, describe, integer, nullable, obj, ok, string
from appliance.api.rights import audit_detail
from appliance.runtime import APPLIANCE
from appliance.wol import BadMac, format_mac, parse_mac, send_magic_packet

routes = web.RouteTableDef()


_SETTINGS = obj(
    ("mac", "address", "port"),
    mac=nullable(string("the configured MAC (wol.mac)")),
    address=string("broadcast address the packet goes to"),
    port=integer(1, 65535),
)


@routes.get("/api/wol")
@describe(
    Operation(
        permission="view",
        summary="Wake-on-LAN settings (the console shows its button when a MAC is set)",
        tag="power",
        replies={200: ok("the settings", _SETTINGS)},
    )
)
async def wol_settings(request: web.Request) -> web.Response:
    wol = request.app[APPLIANCE].config.wol
    return json_response({"mac": wol.mac or None, "address": wol.address, "port": wol.port})


@routes.post("/api/wol")
@describe(
    Operation(
        permission="power",
        audit="power.wol",
        summary="Send a Wake-on-LAN magic packet to the given MAC or wol.mac",
        tag="power",
        body=obj(mac=string("aa:bb:cc:dd:ee:ff, aa-bb-..., or aabb.ccdd.eeff")),
        body_required=False,
        replies={
            200: ok(
                "sent",
                obj(
                    ("sent", "mac", "address", "port"),
                    sent={"const": True},
                    mac=string(),
                    address=string(),
                    port=integer(1, 65535),
                ),
            )
        },
        errors={400: "no MAC given or configured, or a malformed MAC", 502: "the send failed"},
    )
)
async def wake(request: web.Request) -> web.Response:
    wol = request.app[APPLIANCE].config.wol
    data = await read_json(request, optional=True)
    text = get_field(data, "mac", str, None) or wol.mac
    if not text:
        fail(400, 'no MAC address: send {"mac": "aa:bb:cc:dd:ee:ff"} or set wol.mac')
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
        {"sent": True, "mac": format_mac(mac), "address": wol.address, "port": wol.port}
    )
