"""REST routes for automation: wait for an image or text on screen, run DuckyScripts.

``POST /api/screen/wait`` blocks until a template (or OCR text) is on the target's screen, or
answers 408. ``POST /api/scripts/run`` parses a whole DuckyScript first (400 with line and column,
nothing sent), then runs it on the appliance's own HidController and FrameHub, publishing
``script_progress`` events to WebSocket clients; ``POST /api/scripts/cancel`` stops it. Scripts
run one at a time per target; a second one waits for the first.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from aiohttp import web

from appliance.api.httpjson import fail, get_field, json_response, read_json
from appliance.api.jobs import KEYBOARD, stop_jobs, wait_for_job
from appliance.api.openapi import (
    BOOLEAN,
    Operation,
    array,
    describe,
    integer,
    number,
    obj,
    ok,
    string,
)
from appliance.api.rights import audit_detail
from appliance.jobs import Job, JobFailed, Progress
from appliance.runtime import APPLIANCE, Appliance
from appliance.scripting import ducky, screen

routes = web.RouteTableDef()

_REGION = array(
    integer(),
    minItems=4,
    maxItems=4,
    description="[x, y, w, h] in whole pixels of the frame: x, y >= 0, w, h > 0",
)
_SCRIPT_ERROR = "the script (400 with line and column), a template or the layout is wrong"
_NO_OCR = "text waits need tesseract, which is not installed (with line and column for scripts)"


def _app(request: web.Request) -> Appliance:
    return request.app[APPLIANCE]


def _region(data: dict[str, Any]) -> screen.Region | None:
    raw = data.get("region")
    if raw is None:
        return None
    if (
        not isinstance(raw, list)
        or len(raw) != 4
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in raw)
    ):
        fail(400, "field 'region' must be [x, y, w, h] in whole pixels")
    x, y, w, h = raw
    if x < 0 or y < 0 or w <= 0 or h <= 0:
        fail(400, "field 'region' needs x, y >= 0 and w, h > 0")
    return (x, y, w, h)


def _timeout(data: dict[str, Any]) -> float:
    timeout = float(get_field(data, "timeout", (int, float), ducky.DEFAULT_WAIT_TIMEOUT))
    if not 0 < timeout <= screen.MAX_TIMEOUT:
        fail(400, f"field 'timeout' must be more than 0 and at most {screen.MAX_TIMEOUT:g} s")
    return timeout


@routes.post("/api/screen/wait")
@describe(
    Operation(
        permission="view",
        summary="Wait until an image (template) or text is on the target's screen",
        description="Give exactly one of `image` and `text`. See docs/scripting.md.",
        tag="scripting",
        body={
            **obj(
                image=string("base64 PNG or JPEG template", contentEncoding="base64"),
                text=string("text to find by OCR"),
                timeout={
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "maximum": screen.MAX_TIMEOUT,
                    "description": f"seconds (default {ducky.DEFAULT_WAIT_TIMEOUT:g})",
                },
                threshold={"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                region=_REGION,
            ),
            "oneOf": [{"required": ["image"]}, {"required": ["text"]}],
        },
        replies={
            200: ok(
                "found",
                obj(
                    ("found", "x", "y", "w", "h", "score"),
                    found={"const": True},
                    x=integer(),
                    y=integer(),
                    w=integer(),
                    h=integer(),
                    score=number(),
                ),
            )
        },
        errors={
            400: "a wrong field, an undecodable template, or both or neither of image and text",
            408: "not found before the timeout (with best_score)",
            501: _NO_OCR,
        },
    )
)
async def screen_wait(request: web.Request) -> web.Response:
    appliance = _app(request)
    data = await read_json(request)
    timeout = _timeout(data)
    region = _region(data)
    image = get_field(data, "image", str, None)
    text = get_field(data, "text", str, None)
    if (image is None) == (text is None):
        fail(400, "give exactly one of 'image' (base64 PNG or JPEG) or 'text'")
    try:
        if image is not None:
            threshold = float(get_field(data, "threshold", (int, float), 0.9))
            if not 0 < threshold <= 1:
                fail(400, "field 'threshold' must be more than 0 and at most 1")
            try:
                raw = base64.b64decode(image, validate=True)
            except (binascii.Error, ValueError):
                fail(400, "field 'image' is not valid base64")
            template = await screen.load_template(raw)  # header checked first, then a thread
            match = await screen.wait_for_image(
                appliance.hub, template, timeout=timeout, threshold=threshold, region=region
            )
        else:
            assert text is not None
            match = await screen.wait_for_text(appliance.hub, text, timeout=timeout, region=region)
    except screen.NoOcr as exc:
        fail(501, str(exc))
    except screen.ScreenError as exc:
        fail(400, str(exc))
    except screen.ScreenTimeout as exc:
        fail(408, str(exc), best_score=exc.best_score)
    return json_response(match.as_dict())


@routes.post("/api/scripts/run")
@describe(
    Operation(
        permission="input",
        audit="script.run",
        summary="Run a DuckyScript on the appliance",
        description="The whole script is checked first (nothing is sent when it is wrong). "
        "Progress goes out as `script_progress` and `job` WebSocket events; one script runs at "
        "a time, a second one waits. See docs/scripting.md.",
        tag="scripting",
        body=obj(
            ("script",),
            script=string("DuckyScript source"),
            templates={
                "type": "object",
                "additionalProperties": string(contentEncoding="base64"),
                "description": "template name → base64 PNG or JPEG, for WAIT_FOR_IMAGE",
            },
            layout=string("the target's keyboard layout (GET /api/hid/layouts)"),
            pacing_ms=number(0, 1000, "milliseconds per key stroke"),
            wait={**BOOLEAN, "description": "false: answer 202 at once"},
        ),
        replies={
            200: ok(
                "the script ran to its end",
                obj(
                    ("job", "commands", "elapsed"),
                    job=integer(1),
                    commands=integer(0),
                    elapsed=number(0),
                ),
            ),
            202: ok(
                "started (wait: false)",
                obj(("job", "commands"), job=integer(1), commands=integer(0)),
            ),
        },
        errors={
            400: _SCRIPT_ERROR,
            408: "a wait in the script timed out (with line and best_score)",
            409: "cancelled",
            501: _NO_OCR,
            503: "the target is offline, or the script stopped (with line)",
        },
    )
)
async def run_script(request: web.Request) -> web.Response:
    appliance = _app(request)
    data = await read_json(request)
    source = get_field(data, "script", str)
    audit_detail(request, length=len(source), lines=source.count("\n") + 1)  # never the text
    uploaded = get_field(data, "templates", dict, {})
    layout_name = get_field(data, "layout", str, None)
    pacing_ms = get_field(data, "pacing_ms", (int, float), None)
    if pacing_ms is not None and not 0 <= pacing_ms <= 1000:
        fail(400, "field 'pacing_ms' must be between 0 and 1000")
    wait = get_field(data, "wait", bool, True)
    try:
        script = ducky.parse(source)
        # Every template's header is checked (format, size) before any is decoded; then each is
        # decoded once, in the template thread, so an undecodable or flat one is refused with
        # its line before anything is sent. They are not kept: a script holds at most the one it
        # is waiting for, not all its templates at once.
        templates = ducky.decode_templates(script, uploaded)
        checked: set[str] = set()
        for cmd in script.templates:
            if cmd.template in checked:
                continue
            checked.add(cmd.template)
            try:
                await screen.load_template(templates[cmd.template])
            except screen.ScreenError as exc:
                raise ducky.DuckyError(cmd.line, cmd.column, f"{cmd.template}: {exc}") from None
    except ducky.DuckyError as exc:
        fail(400, str(exc), line=exc.line, column=exc.column)
    text_waits = [c for c in script.commands if isinstance(c, ducky.WaitText)]
    if text_waits and screen.tesseract_path() is None:
        line = text_waits[0].line
        fail(501, f"line {line}: {screen.TESSERACT_HINT}", line=line, column=1)

    from hid.layouts import UnknownLayout, get_layout

    try:
        layout = get_layout(layout_name or appliance.layout)
    except UnknownLayout as exc:
        fail(400, str(exc).strip("'\""))
    try:
        ducky.check_typable(script, layout)
    except ducky.DuckyError as exc:
        fail(400, str(exc), line=exc.line, column=exc.column)
    if appliance.hid.online is False:
        fail(503, f"target offline: {appliance.hid.last_error or 'not answering'}")

    client = appliance.new_client("script")
    executor = ducky.HidExecutor(appliance, layout, client, pacing_ms)
    executor.follow_port_layout = layout_name is None  # an explicit layout stays after SWITCH
    total = len(script.commands)

    async def work(report: Progress) -> dict[str, Any]:
        def progress(done: int, total: int, command: ducky.Command) -> None:
            report(done, total, line=command.line)
            appliance.events.publish(
                {
                    "type": "script_progress",
                    "job": job.id,
                    "done": False,
                    "step": done,
                    "total": total,
                    "line": command.line,
                    "command": ducky.describe(command),
                }
            )

        try:
            async with appliance.script_lock:  # a second script waits for the first
                res = await ducky.run(script, executor, templates, progress)
        except ducky.WaitTimedOut as exc:
            raise JobFailed(
                str(exc), line=exc.line, status=408, best_score=exc.best_score
            ) from None
        except ducky.ScriptFailed as exc:
            raise JobFailed(str(exc), line=exc.line, status=503) from None
        finally:
            appliance.hid.release_client(client)
        return res.as_dict()

    def finished(job: Job) -> None:
        # The completion event script clients wait for (kept alongside the generic ``job``).
        if job.status == "done":
            result = {"job": job.id, **(job.result or {})}
        else:
            result = {"job": job.id, "error": job.error, **job.error_info}
        appliance.events.publish({"type": "script_progress", **result, "done": True})

    job = appliance.jobs.start("script", work, tags=[KEYBOARD], total=total, on_finish=finished)
    if not wait:
        return json_response({"job": job.id, "commands": total}, status=202)
    await wait_for_job(request, appliance, job)
    if job.status == "cancelled":
        fail(409, "the script was cancelled", job=job.id)
    if job.status == "failed":
        info = dict(job.error_info)
        status = int(info.pop("status", 503))
        fail(status, job.error or "failed", job=job.id, **info)
    return json_response({"job": job.id, **(job.result or {})})


@routes.post("/api/scripts/cancel")
@describe(
    Operation(
        permission="input",
        summary="Stop running scripts and key-chord jobs (not pastes)",
        tag="scripting",
        replies={200: ok("how many were stopped", obj(("cancelled",), cancelled=integer(0)))},
    )
)
async def cancel_scripts(request: web.Request) -> web.Response:
    """Scripts, and key-chord jobs (short scripts of their own); not pastes."""
    return json_response({"cancelled": await stop_jobs(_app(request), kinds=("script", "keys"))})
