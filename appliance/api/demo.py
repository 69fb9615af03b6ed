"""Demo-target-only routes: a look inside the simulated machine (for tests) and its power switch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from appliance.api.httpjson import get_field, json_response, read_json
from appliance.api.openapi import BOOLEAN, Operation, describe, enum, obj, ok
from appliance.api.rights import audit_detail
from appliance.runtime import APPLIANCE
from appliance.targets.demo import DemoPower, DemoTarget

if TYPE_CHECKING:
    # the machine's modules (menus, drawing) load only with the demo target, not on hardware
    from appliance.targets.demo.machine import DemoMachine

routes = web.RouteTableDef()
_STATE = ok(
    "what the simulated machine shows (for tests)",
    {**obj(("power", "text", "editing", "pointer"), power=enum("on", "off")), "type": "object"},
)


def _machine(request: web.Request) -> DemoMachine:
    target = request.app[APPLIANCE].target
    assert isinstance(target, DemoTarget) and target.machine is not None  # routes added only then
    return target.machine


@routes.get("/api/demo/state")
@describe(
    Operation(
        permission="view", summary="Inside the demo machine", tag="demo", replies={200: _STATE}
    )
)
async def demo_state(request: web.Request) -> web.Response:
    return json_response(_machine(request).state())


@routes.post("/api/demo/power")
@describe(
    Operation(
        permission="power",
        audit="power",
        summary="The demo machine's power switch",
        tag="demo",
        body=obj(("on",), on=BOOLEAN),
        replies={200: _STATE},
    )
)
async def demo_power(request: web.Request) -> web.Response:
    machine = _machine(request)
    data = await read_json(request)
    on = get_field(data, "on", bool)
    audit_detail(request, on=on)
    machine.set_power(on)
    power = request.app[APPLIANCE].target.power
    if isinstance(power, DemoPower):
        power.sim.power_changed()  # the simulated power LED follows the switch
    return json_response(machine.state())
