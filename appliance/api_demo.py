"""Demo-target-only routes: its state for tests and power control."""

from __future__ import annotations

from aiohttp import web

from appliance.httpjson import fail, get_field, json_response, read_json
from appliance.runtime import APPLIANCE

routes = web.RouteTableDef()


def _demo(request: web.Request):  # type: ignore[no-untyped-def]
    demo = request.app[APPLIANCE].demo
    if demo is None:
        fail(404, "the demo target is not configured")
    return demo


@routes.get("/api/demo/state")
async def demo_state(request: web.Request) -> web.Response:
    return json_response(_demo(request).state())


@routes.post("/api/demo/power")
async def demo_power(request: web.Request) -> web.Response:
    demo = _demo(request)
    data = await read_json(request)
    demo.set_power(get_field(data, "on", bool))
    return json_response(demo.state())
