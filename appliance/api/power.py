"""``/api/power``: the target's power facet (added only for targets that have one)."""

from __future__ import annotations

from aiohttp import web

from appliance.api.httpjson import fail, get_field, json_response, read_json
from appliance.runtime import APPLIANCE
from appliance.targets.facets import POWER_ACTIONS, FacetUnavailable

routes = web.RouteTableDef()


@routes.get("/api/power")
async def power_state(request: web.Request) -> web.Response:
    return json_response({"state": request.app[APPLIANCE].target.power.state})


@routes.post("/api/power")
async def power_action(request: web.Request) -> web.Response:
    power = request.app[APPLIANCE].target.power
    action = get_field(await read_json(request), "action", str)
    if action not in POWER_ACTIONS:
        fail(400, f"action must be one of {', '.join(POWER_ACTIONS)}, not {action!r}")
    try:
        await power.act(action)
    except FacetUnavailable as exc:
        fail(409, str(exc))
    return json_response({"state": power.state})
