"""``POST /api/wol``: send a Wake-on-LAN magic packet to the body's MAC or ``wol.mac``.

Always routed (a MAC may come with the request even when none is configured); the console shows
its button only when ``wol.mac`` is set (``GET /api/wol`` says so).
"""

from __future__ import annotations

from aiohttp import web

from appliance.api.httpjson import fail, get_field, json_response, read_json
from appliance.runtime import APPLIANCE
from appliance.wol import BadMac, format_mac, parse_mac, send_magic_packet

routes = web.RouteTableDef()


@routes.get("/api/wol")
async def wol_settings(request: web.Request) -> web.Response:
    wol = request.app[APPLIANCE].config.wol
    return json_response({"mac": wol.mac or None, "address": wol.address, "port": wol.port})


@routes.post("/api/wol")
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
    try:
        send_magic_packet(mac, wol.address, wol.port)
    except OSError as exc:
        fail(502, f"could not send the magic packet to {wol.address}:{wol.port}: {exc}")
    return json_response(
        {"sent": True, "mac": format_mac(mac), "address": wol.address, "port": wol.port}
    )
