"""``/api/switch``: the rack's KVM switch (added only when ``switch.driver`` is not "none").

Status codes a script can act on: 400 no such port or a bad setting; 409 another switch command
is in flight, or the switch is offline (the message says why; the appliance keeps reconnecting);
502 the switch answered with another port; 504 it did not answer in time.
"""

from __future__ import annotations

from aiohttp import web

from appliance.api.httpjson import fail, json_response, read_json
from appliance.api.openapi import (
    BOOLEAN,
    Operation,
    Param,
    array,
    describe,
    enum,
    integer,
    nullable,
    number,
    obj,
    ok,
    string,
)
from appliance.api.rights import audit_detail, require_port
from appliance.runtime import APPLIANCE
from appliance.switch import (
    PortError,
    SwitchBusy,
    SwitchController,
    SwitchError,
    SwitchMismatch,
    SwitchTimeout,
)

routes = web.RouteTableDef()


def _switch(request: web.Request) -> SwitchController:
    switch = request.app[APPLIANCE].switch
    assert switch is not None  # the routes are added only with a switch
    return switch


_PORT = obj(
    ("port", "name", "layout", "mouse"),
    port=integer(1),
    name=string(),
    layout=string(),
    mouse=enum("absolute", "relative"),
    wol_mac=nullable(string()),
    atx=nullable(string()),
)
_STATUS = obj(
    ("driver", "state", "active", "ports"),
    driver=string(),
    state=enum("online", "offline", "switching"),
    active=nullable(integer(1)),
    selecting=nullable(integer(1)),
    error=nullable(string()),
    can_query=BOOLEAN,
    ports=array(_PORT),
)


@routes.get("/api/switch")
@describe(
    Operation(
        permission="view",
        summary="The KVM switch: driver, state, active port and each port's settings",
        tag="switch",
        replies={200: ok("the switch", _STATUS)},
    )
)
async def switch_state(request: web.Request) -> web.Response:
    return json_response(_switch(request).status())


@routes.post("/api/switch/select")
@describe(
    Operation(
        permission="switch",
        audit="switch.select",
        summary="Switch to a port (number or name); answers once the switch confirms it",
        tag="switch",
        body=obj(("port",), port={"oneOf": [integer(1), string(minLength=1)]}),
        replies={
            200: ok(
                "switched",
                {
                    "allOf": [
                        _STATUS,
                        obj(("port", "took"), port=integer(1), took=nullable(number(0))),
                    ]
                },
            )
        },
        errors={
            400: "no such port",
            409: "another switch command is in flight, or the switch is offline",
            502: "the switch named another port",
            504: "the switch did not answer in time",
        },
    )
)
async def switch_select(request: web.Request) -> web.Response:
    """``{"port": 2}`` or ``{"port": "db-01"}``: answers once the switch confirms the port."""
    switch = _switch(request)
    data = await read_json(request)
    if "port" not in data:
        fail(400, "port is required (a number or a port name)")
    spec = data["port"]
    if isinstance(spec, bool) or not isinstance(spec, int | str):
        fail(400, f"port must be a number or a port name, not {spec!r}")
    try:
        wanted = switch.ports.find(spec)
    except PortError as exc:
        fail(400, str(exc))
    audit_detail(request, port=wanted, previous=switch.active)
    require_port(request, wanted)  # a user narrowed to some ports selects only those
    try:
        port = await switch.select(spec)
    except PortError as exc:
        fail(400, str(exc))
    except SwitchBusy as exc:
        fail(409, str(exc))
    except SwitchTimeout as exc:
        fail(504, str(exc))
    except SwitchMismatch as exc:
        fail(502, str(exc))
    except SwitchError as exc:  # offline: the port vanished, the connection was refused
        fail(409, str(exc))
    return json_response({**switch.status(), "port": port, "took": switch.last_confirm_s})


@routes.patch("/api/switch/ports/{port}")
@describe(
    Operation(
        permission="admin",
        audit="switch.port",
        summary="Rename a port or change its settings (kept in the state directory)",
        tag="switch",
        params=(Param("port", integer(1, 999), "the port number", where="path", required=True),),
        body=obj(
            name=nullable(string(maxLength=63)),
            layout=nullable(string()),
            mouse=nullable(enum("absolute", "relative")),
            wol_mac=nullable(string()),
            atx=nullable(string()),
        ),
        replies={200: ok("the port's settings now", _PORT)},
        errors={400: "no such port, nothing to change, or a bad value"},
    )
)
async def switch_port(request: web.Request) -> web.Response:
    """``{"name": "db-01", "layout": "de", "mouse": "relative", "wol_mac": ..., "atx": ...}``
    (any of them; null resets name, layout and mouse to the configured default)."""
    switch = _switch(request)
    text = request.match_info["port"]
    if not (text.isascii() and text.isdigit()) or len(text) > 3:
        fail(400, f"port must be a number, not {text!r}")
    data = await read_json(request)
    if not data:
        fail(400, "nothing to change: send name, layout, mouse, wol_mac or atx")
    try:
        settings = switch.rename(int(text), data)
    except PortError as exc:
        fail(400, str(exc))
    return json_response(settings.as_dict())
