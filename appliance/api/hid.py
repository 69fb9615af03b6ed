"""REST routes for keyboard and mouse: typing text, key combos, single keys, mouse, release."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from appliance.api.httpjson import fail, get_field, json_response, read_json
from appliance.runtime import APPLIANCE, Appliance
from hid.controller import Device, Pacing, TypingAborted
from hid.keymap import UnknownKey
from hid.keynames import parse_chords
from hid.reports import ABS_MAX, BUTTONS
from hid.text import plan_text

MAX_TYPE_CHARS = 200_000
routes = web.RouteTableDef()


def _app(request: web.Request) -> Appliance:
    return request.app[APPLIANCE]


def _layout(appliance: Appliance, name: str | None) -> Any:
    from hid.layouts import UnknownLayout, get_layout

    try:
        return get_layout(name or appliance.config.hid.layout)
    except UnknownLayout as exc:
        fail(400, str(exc).strip("'\""))


def _require_online(appliance: Appliance) -> None:
    """Typing and combos on a target known to be off fail fast instead of queueing."""
    if appliance.hid.online is False:
        fail(503, f"target offline: {appliance.hid.last_error or 'not answering'}")


@routes.post("/api/hid/type")
async def type_text(request: web.Request) -> web.StreamResponse:
    appliance = _app(request)
    data = await read_json(request)
    text = get_field(data, "text", str)
    if len(text) > MAX_TYPE_CHARS:
        fail(413, f"text longer than {MAX_TYPE_CHARS} characters")
    layout = _layout(appliance, get_field(data, "layout", str, None))
    pacing_ms = get_field(data, "pacing_ms", (int, float), appliance.config.hid.pacing_ms)
    if not 0 <= pacing_ms <= 1000:
        fail(400, "field 'pacing_ms' must be between 0 and 1000")
    wait = get_field(data, "wait", bool, True)
    _require_online(appliance)
    pacing = Pacing(pacing_ms / 1000, pacing_ms / 1000)
    plan = plan_text(text, layout)  # once: the typing task and the 202's untypable list share it
    job = appliance.jobs.next_id()
    last_sent = 0.0

    def progress(typed: int, total: int) -> None:
        nonlocal last_sent
        loop_time = asyncio.get_running_loop().time()
        if typed < total and loop_time - last_sent < 0.1:
            return  # at most ten progress events a second
        last_sent = loop_time
        appliance.events.publish(
            {"type": "type_progress", "job": job, "typed": typed, "total": total, "done": False}
        )

    async def run() -> dict[str, Any]:
        result: dict[str, Any]
        try:
            res = await appliance.hid.type_text(plan, layout, pacing, progress)
            result = {"job": job, **res.as_dict()}
        except TypingAborted as exc:
            result = {"job": job, "error": str(exc), "typed": exc.typed}
        except asyncio.CancelledError:
            result = {"job": job, "error": "cancelled"}
            appliance.events.publish({"type": "type_progress", **result, "done": True})
            raise
        finally:
            appliance.jobs.tasks.pop(job, None)
        appliance.events.publish({"type": "type_progress", **result, "done": True})
        return result

    task = asyncio.create_task(run(), name=f"type-{job}")
    appliance.jobs.tasks[job] = task
    if not wait:
        untypable = [u.as_dict() for u in plan.untypable]
        return json_response({"job": job, "untypable": untypable}, status=202)
    try:
        result = await asyncio.shield(task)
    except asyncio.CancelledError:
        if task.cancelled():
            fail(409, "typing was cancelled", job=job)
        raise
    if "error" in result:
        fail(409 if result["error"] == "cancelled" else 503, result["error"], **result)
    return json_response(result)


@routes.post("/api/hid/type/cancel")
async def cancel_typing(request: web.Request) -> web.Response:
    return json_response({"cancelled": _app(request).jobs.cancel_all()})


@routes.post("/api/hid/keys")
async def keys(request: web.Request) -> web.Response:
    appliance = _app(request)
    data = await read_json(request)
    spec = get_field(data, "keys", str)
    try:
        chords = parse_chords(spec)
    except UnknownKey as exc:
        fail(400, str(exc))
    _require_online(appliance)
    client = appliance.new_client("api-keys")
    await appliance.hid.press_chords(client, chords)
    return json_response({"pressed": chords})


@routes.post("/api/hid/key")
async def key(request: web.Request) -> web.Response:
    data = await read_json(request)
    code = get_field(data, "code", (str, int))
    down = get_field(data, "down", bool)
    try:
        _app(request).hid.key("api", code, down)
    except UnknownKey as exc:
        fail(400, str(exc))
    return json_response({})


@routes.post("/api/hid/mouse")
async def mouse(request: web.Request) -> web.Response:
    hid = _app(request).hid
    data = await read_json(request)
    if "x" in data or "y" in data:
        x = get_field(data, "x", (int, float))
        y = get_field(data, "y", (int, float))
        if not (0 <= x <= 1 and 0 <= y <= 1):
            fail(400, "absolute x and y must be between 0 and 1")
        hid.mouse_abs(round(x * ABS_MAX), round(y * ABS_MAX))
    if "dx" in data or "dy" in data:
        dx = get_field(data, "dx", int, 0)
        dy = get_field(data, "dy", int, 0)
        if abs(dx) > 100_000 or abs(dy) > 100_000:
            fail(400, "relative moves are limited to ±100000 counts")
        hid.mouse_rel(dx, dy)
    button = get_field(data, "button", str, None)
    if button is not None:
        if button not in BUTTONS:
            fail(400, f"unknown button {button!r}; expected one of {', '.join(BUTTONS)}")
        hid.mouse_button("api", button, True)
        await hid.drain(Device.MOUSE)
        await asyncio.sleep(0.05)
        hid.mouse_button("api", button, False)
    wheel = get_field(data, "wheel", int, 0)
    if wheel:
        hid.mouse_wheel(max(-1000, min(1000, wheel)))
    await hid.drain(Device.MOUSE)  # a keyboard backlog must not hold a mouse call
    return json_response({})


@routes.post("/api/hid/release")
async def release(request: web.Request) -> web.Response:
    hid = _app(request).hid
    hid.release_all()
    await hid.drain()
    return json_response({})


@routes.put("/api/hid/mouse_mode")
async def mouse_mode(request: web.Request) -> web.Response:
    data = await read_json(request)
    mode = get_field(data, "mode", str)
    try:
        _app(request).hid.set_mouse_mode(mode)
    except ValueError as exc:
        fail(400, str(exc))
    return json_response({"mode": mode})


@routes.get("/api/hid/layouts")
async def layouts(request: web.Request) -> web.Response:
    from hid.layouts import LAYOUT_NAMES

    return json_response(
        {"layouts": list(LAYOUT_NAMES), "default": _app(request).config.hid.layout}
    )
