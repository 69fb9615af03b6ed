"""``/api/power``: the target's power facet (added only for targets that have one).

``GET`` answers the power status (state, LEDs, whether an action is in progress). ``POST`` takes
``{"action": "on"|"off"|"off_hard"|"reset"}`` or ``{"action": "press", "duration_ms": N}`` and
answers when the button has been released; a refused action (busy, already in that state) is a
409 with the reason. LED changes also go out as WebSocket ``power`` events. Behind a KVM switch
the status and the buttons are the active port's (``available`` false with a ``reason`` for a
port without ATX wiring), and no action starts while the switch is changing ports.
"""

from __future__ import annotations

from aiohttp import web

from appliance import fields
from appliance.api.httpjson import fail, field_or_400, get_field, json_response, read_json
from appliance.api.openapi import (
    BOOLEAN,
    Operation,
    describe,
    enum,
    integer,
    nullable,
    obj,
    ok,
    string,
)
from appliance.api.rights import audit_detail
from appliance.runtime import APPLIANCE
from appliance.targets.facets import POWER_ACTIONS, ActionRefused, FacetUnavailable

routes = web.RouteTableDef()
_LED = nullable(BOOLEAN)
_STATE = ok(
    "the power status",
    obj(
        ("state", "leds", "busy", "action"),
        state=enum("on", "off", "unknown"),
        leds=obj(power=_LED, hdd=_LED),  # null where that LED is not wired
        busy=BOOLEAN,
        action=nullable(string("the action in progress")),
        available=BOOLEAN,
        reason=nullable(string("why there is no power control now (a switch port unwired)")),
    ),
)

ACTIONS = (*POWER_ACTIONS, "press")


@routes.get("/api/power")
@describe(
    Operation(
        permission="view",
        summary="Is the target on? (power state, LEDs, busy)",
        tag="power",
        replies={200: _STATE},
    )
)
async def power_state(request: web.Request) -> web.Response:
    return json_response(request.app[APPLIANCE].target.power.status().as_dict())


@routes.post("/api/power")
@describe(
    Operation(
        permission="power",
        audit="power",
        summary="Switch the target on or off, reset it, or press the power button for a time",
        tag="power",
        body=obj(
            ("action",),
            action=enum(*ACTIONS),
            duration_ms=integer(1, description="for press: how long (at most atx.max_press_ms)"),
        ),
        replies={200: _STATE},
        errors={
            409: "no power control (for the active switch port), busy with another action, "
            "the switch is changing ports, or already in that state"
        },
    )
)
async def power_action(request: web.Request) -> web.Response:
    appliance = request.app[APPLIANCE]
    power = appliance.target.power
    data = await read_json(request)
    action = get_field(data, "action", str)
    audit_detail(request, action=action[:16])
    if action not in ACTIONS:
        fail(400, f"action must be one of {', '.join(ACTIONS)}, not {action!r}")
    switch = appliance.switch
    if switch is not None and switch.selecting is not None:
        # The press would land on whichever machine the switch reaches first (docs/switch.md).
        fail(409, f"the switch is changing to port {switch.selecting}: try again when it is done")
    try:
        if action == "press":
            most = appliance.config.atx.max_press_ms
            ms = field_or_400(lambda: fields.integer(data, "duration_ms", 1, most))
            await power.press(ms / 1000)
        else:
            await power.act(action)
    except (FacetUnavailable, ActionRefused) as exc:
        fail(409, str(exc))
    return json_response(power.status().as_dict())
