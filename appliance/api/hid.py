"""REST routes for keyboard and mouse: typing text, key combos, single keys, mouse, release."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from appliance.api.httpjson import fail, get_field, json_response, read_json
from appliance.api.jobs import KEYBOARD, stop_jobs, wait_for_job
from appliance.api.openapi import (
    BOOLEAN,
    EMPTY,
    Operation,
    array,
    describe,
    enum,
    integer,
    number,
    obj,
    ok,
    string,
)
from appliance.api.rights import audit_detail
from appliance.jobs import Job, JobFailed, Progress
from appliance.runtime import APPLIANCE, Appliance
from hid.controller import Device, Pacing, TypingAborted
from hid.keymap import UnknownKey
from hid.keynames import parse_chords
from hid.reports import ABS_MAX, BUTTONS
from hid.text import plan_text

MAX_TYPE_CHARS = 200_000
# Chords per /api/hid/keys request: a long BIOS walk ("down" x 40, "enter"...) fits many times
# over; at the default 0.1 s a chord, 256 take about 26 s. Longer sequences are scripts.
MAX_CHORDS = 256
routes = web.RouteTableDef()

_UNTYPABLE = obj(
    ("index", "char", "codepoint"),
    index=integer(0),
    char=string(),
    codepoint=string(pattern="^U\\+[0-9A-F]{4,6}$"),
)
_KEY_CODE = "a KeyboardEvent.code (KeyA, F12, ...) or a friendly name (ctrl, del, ...)"
_OFFLINE = "the target is offline (or the job failed: with the job's fields)"
_PACING = number(0, 1000, "milliseconds per key stroke (default: hid.pacing_ms)")
_WAIT = {**BOOLEAN, "description": "false: answer 202 at once, progress over the WebSocket"}


def _app(request: web.Request) -> Appliance:
    return request.app[APPLIANCE]


def _layout(appliance: Appliance, name: str | None) -> Any:
    from hid.layouts import UnknownLayout, get_layout

    try:
        return get_layout(name or appliance.layout)
    except UnknownLayout as exc:
        fail(400, str(exc).strip("'\""))


def _require_online(appliance: Appliance) -> None:
    """Typing and combos on a target known to be off fail fast instead of queueing."""
    if appliance.hid.online is False:
        fail(503, f"target offline: {appliance.hid.last_error or 'not answering'}")


def _job_response(job: Job, cancelled: str) -> web.Response:
    """A finished typing or chord job as the synchronous answer: 200 with the result, 409 when
    it was cancelled, 503 (with the job's extra fields) when it failed."""
    if job.status == "cancelled":
        fail(409, cancelled, job=job.id)
    if job.status == "failed":
        fail(503, job.error or "failed", job=job.id, **job.error_info)
    return json_response({"job": job.id, **(job.result or {})})


@routes.post("/api/hid/type")
@describe(
    Operation(
        permission="input",
        audit="paste",
        summary="Type text on the target's keyboard",
        description="A waiting request owns its job: if the client disconnects, the job is "
        "cancelled and its keys released.",
        tag="hid",
        body=obj(
            ("text",),
            text=string(maxLength=MAX_TYPE_CHARS),
            layout=string("the target's keyboard layout (GET /api/hid/layouts)"),
            pacing_ms=_PACING,
            wait=_WAIT,
        ),
        replies={
            200: ok(
                "typed",
                obj(
                    ("job", "chars", "strokes", "untypable"),
                    job=integer(1),
                    chars=integer(0),
                    strokes=integer(0),
                    untypable=array(_UNTYPABLE),
                ),
            ),
            202: ok(
                "started (wait: false)",
                obj(("job", "untypable"), job=integer(1), untypable=array(_UNTYPABLE)),
            ),
        },
        errors={
            400: "a wrong field or an unknown layout",
            409: "cancelled (POST /api/hid/type/cancel, the panic button, ...)",
            413: f"text longer than {MAX_TYPE_CHARS} characters",
            503: _OFFLINE,
        },
    )
)
async def type_text(request: web.Request) -> web.StreamResponse:
    appliance = _app(request)
    data = await read_json(request)
    text = get_field(data, "text", str)
    audit_detail(request, length=len(text))  # never the text itself
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
    last_sent = 0.0

    async def work(report: Progress) -> dict[str, Any]:
        def progress(typed: int, total: int) -> None:
            nonlocal last_sent
            report(typed, total)
            loop_time = asyncio.get_running_loop().time()
            if typed < total and loop_time - last_sent < 0.1:
                return  # at most ten progress events a second
            last_sent = loop_time
            appliance.events.publish(
                {
                    "type": "type_progress",
                    "job": job.id,
                    "typed": typed,
                    "total": total,
                    "done": False,
                }
            )

        try:
            res = await appliance.hid.type_text(plan, layout, pacing, progress)
        except TypingAborted as exc:
            raise JobFailed(str(exc), typed=exc.typed) from None
        return res.as_dict()

    def finished(job: Job) -> None:
        # The completion event typing clients wait for (kept alongside the generic ``job``).
        if job.status == "done":
            result = {"job": job.id, **(job.result or {})}
        else:
            result = {"job": job.id, "error": job.error, **job.error_info}
        appliance.events.publish({"type": "type_progress", **result, "done": True})

    job = appliance.jobs.start("type", work, tags=[KEYBOARD], total=plan.chars, on_finish=finished)
    if not wait:
        untypable = [u.as_dict() for u in plan.untypable]
        return json_response({"job": job.id, "untypable": untypable}, status=202)
    await wait_for_job(request, appliance, job)
    return _job_response(job, "typing was cancelled")


@routes.post("/api/hid/type/cancel")
@describe(
    Operation(
        permission="input",
        summary="Stop every keyboard job (pastes, key chords, scripts)",
        description="Answers once their key releases reached the target.",
        tag="hid",
        replies={200: ok("how many were stopped", obj(("cancelled",), cancelled=integer(0)))},
    )
)
async def cancel_typing(request: web.Request) -> web.Response:
    """Every keyboard job: pastes, chords and scripts (as before: every job there was)."""
    return json_response({"cancelled": await stop_jobs(_app(request), tag=KEYBOARD)})


@routes.post("/api/hid/keys")
@describe(
    Operation(
        permission="input",
        summary="Press key combinations in turn (`ctrl+alt+f2 enter`)",
        description=f"At most {MAX_CHORDS} chords, each at most 6 keys and 8 modifiers. Key "
        f"names: {_KEY_CODE}.",
        tag="hid",
        body=obj(("keys",), keys=string("chords separated by spaces"), wait=_WAIT),
        replies={
            200: ok(
                "pressed",
                obj(
                    ("pressed", "job"),
                    pressed=array(array(string()), description="the chords, as key codes"),
                    job=integer(1),
                ),
            ),
            202: ok(
                "started (wait: false)", obj(("job", "chords"), job=integer(1), chords=integer(1))
            ),
        },
        errors={
            400: "an unknown key, too many keys in a chord or too many chords",
            409: "cancelled",
            503: _OFFLINE,
        },
    )
)
async def keys(request: web.Request) -> web.StreamResponse:
    appliance = _app(request)
    data = await read_json(request)
    spec = get_field(data, "keys", str)
    wait = get_field(data, "wait", bool, True)
    try:
        chords = parse_chords(spec, max_chords=MAX_CHORDS)
    except UnknownKey as exc:
        fail(400, str(exc))
    _require_online(appliance)
    client = appliance.new_client("api-keys")

    async def work(report: Progress) -> dict[str, Any]:
        await appliance.hid.press_chords(client, chords, progress=report)
        return {"pressed": chords}

    job = appliance.jobs.start("keys", work, tags=[KEYBOARD], total=len(chords))
    if not wait:
        return json_response({"job": job.id, "chords": len(chords)}, status=202)
    await wait_for_job(request, appliance, job)
    if job.status == "done":
        return json_response({"pressed": chords, "job": job.id})
    return _job_response(job, "the key combinations were cancelled")


@routes.post("/api/hid/key")
@describe(
    Operation(
        permission="input",
        summary="Press or release one key, held by this API client until released",
        tag="hid",
        body=obj(
            ("code", "down"),
            code={
                "anyOf": [string(_KEY_CODE), integer(0x04, 0xE7, "a HID usage")],
            },
            down=BOOLEAN,
        ),
        replies={200: ok("done", EMPTY)},
        errors={400: "an unknown key"},
    )
)
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
@describe(
    Operation(
        permission="input",
        summary="Move the pointer (absolute or relative), click a button, turn the wheel",
        tag="hid",
        body={
            **obj(
                x=number(0, 1, "absolute, fraction of the picture width"),
                y=number(0, 1, "absolute, fraction of the picture height"),
                dx=integer(-100_000, 100_000, "relative counts"),
                dy=integer(-100_000, 100_000, "relative counts"),
                button=enum(*BUTTONS, description="click (press and release) this button"),
                wheel=integer(description="notches, clamped to ±1000; > 0 away from the user"),
            ),
            "dependentRequired": {"x": ["y"], "y": ["x"]},
        },
        replies={200: ok("done", EMPTY)},
    )
)
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
@describe(
    Operation(
        permission="input",
        summary="The panic button: cancel every keyboard job, release every key and button",
        tag="hid",
        replies={200: ok("released", EMPTY)},
    )
)
async def release(request: web.Request) -> web.Response:
    """The panic button: stop every job that presses keys, then let go of everything."""
    appliance = _app(request)
    await stop_jobs(appliance, tag=KEYBOARD)
    hid = appliance.hid
    hid.release_all()
    await hid.drain()
    return json_response({})


@routes.put("/api/hid/mouse_mode")
@describe(
    Operation(
        permission="input",
        summary="Switch the pointer between absolute and relative reports",
        tag="hid",
        body=obj(("mode",), mode=enum("absolute", "relative")),
        replies={200: ok("switched", obj(("mode",), mode=enum("absolute", "relative")))},
    )
)
async def mouse_mode(request: web.Request) -> web.Response:
    data = await read_json(request)
    mode = get_field(data, "mode", str)
    try:
        _app(request).hid.set_mouse_mode(mode)
    except ValueError as exc:
        fail(400, str(exc))
    return json_response({"mode": mode})


@routes.get("/api/hid/layouts")
@describe(
    Operation(
        permission="view",
        summary="The keyboard layouts text can be typed in",
        tag="hid",
        replies={
            200: ok(
                "layout names and the configured default",
                obj(("layouts", "default"), layouts=array(string()), default=string()),
            )
        },
    )
)
async def layouts(request: web.Request) -> web.Response:
    from hid.layouts import LAYOUT_NAMES

    return json_response({"layouts": list(LAYOUT_NAMES), "default": _app(request).layout})
