"""``/api/power``: the target's power facet (added only for targets that have one)."""

from __future__ import annotations

from aiohttp import web

from appliance.api.httpjson import fail, get_field, json_response, read_json
from appliance.api.openapi import Operation, describe, enum, obj, ok
from appliance.runtime import APPLIANCE
from appliance.targets.facets import POWER_ACTIONS, FacetUnavailable

routes = web.RouteTableDef()
_STATE = ok("the power state", obj(("state",), state=enum("on", "off", "unknown")))


@routes.get("/api/power")
@describe(Operation(summary="Is the target on?", tag="power", replies={200: _STATE}))
async def power_state(request: web.Request) -> web.Response:
    return json_response({"state": request.app[APPLIANCE].target.power.state})


@routes.post("/api/power")
@describe(
    Operation(
        summary="Switch the target on or off, or reset it",
        tag="power",
        body=obj(("action",), action=enum(*POWER_ACTIONS)),
        replies={200: _STATE},
        errors={409: "this target has no power control"},
    )
)
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
