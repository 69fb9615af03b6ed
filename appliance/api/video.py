"""MJPEG stream and snapshots. Each frame is JPEG-encoded once (JpegEncoder caches by content),
however many clients watch; a client only gets a new part when the picture changed, plus a
keep-alive part about once a second so proxies and browsers do not time out. A JPEG capture
device's pictures are sent as they are (no decode, no encode) unless a quality is asked for. A
stream ends (the response body is finished) when the credentials that opened it are revoked."""

from __future__ import annotations

import asyncio

from aiohttp import web

from appliance import fields
from appliance.api.connections import CONNECTIONS
from appliance.api.httpjson import fail, field_or_400, get_field, json_response, read_json
from appliance.api.openapi import (
    BOOLEAN,
    Operation,
    Param,
    Reply,
    array,
    describe,
    enum,
    integer,
    nullable,
    obj,
    ok,
    string,
)
from appliance.runtime import APPLIANCE, Appliance
from capture import edid as edid_codec
from capture.frame import Frame
from capture.pacing import FramePacer
from capture.source import EdidUnsupported

routes = web.RouteTableDef()
BOUNDARY = "frame"
QUALITY_DOC = (
    "JPEG quality (default: a JPEG capture device's own pictures as they are, else "
    "stream.jpeg_quality)"
)
KEEPALIVE = 1.0


def _int_param(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    return field_or_400(lambda: fields.query_integer(request.query, name, default, lo, hi))


def _quality(request: web.Request) -> int | None:
    """The ``quality`` asked for; None (not given) lets a device's own JPEG through untouched."""
    if "quality" not in request.query:
        return None
    return _int_param(request, "quality", 0, 1, 100)


@routes.get("/api/stream.mjpeg")
@describe(
    Operation(
        permission="view",
        summary="The picture as an MJPEG stream (multipart/x-mixed-replace)",
        description="A part (image/jpeg) is sent when the picture changes, and about once a "
        "second on a static screen. The response never ends on its own: it ends when the client "
        "goes away or the credentials that opened it are revoked (within 1 s).",
        tag="video",
        params=(
            Param("fps", integer(1, 60), "frame rate cap (default: stream.max_fps)"),
            Param("quality", integer(1, 100), QUALITY_DOC),
        ),
        replies={
            200: Reply(
                "the stream; parts separated by --frame",
                {"type": "string", "contentMediaType": "image/jpeg"},
                f"multipart/x-mixed-replace; boundary={BOUNDARY}",
            )
        },
        errors={400: "a query parameter is not an integer or out of range"},
        extensions={"x-streaming": "multipart/x-mixed-replace"},
    )
)
async def stream_mjpeg(request: web.Request) -> web.StreamResponse:
    appliance = request.app[APPLIANCE]
    cfg = appliance.config.stream
    max_fps = _int_param(request, "fps", cfg.max_fps, 1, 60)
    quality = _quality(request)
    resp = web.StreamResponse(
        headers={
            "Content-Type": f"multipart/x-mixed-replace; boundary={BOUNDARY}",
            "Cache-Control": "no-store, no-cache, must-revalidate",
            "Pragma": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await resp.prepare(request)
    try:
        with appliance.stream(), appliance.viewing("mjpeg"):
            parts = _stream_parts(resp, appliance, appliance.hub.latest, max_fps, quality)
            await request.app[CONNECTIONS].run_until_revoked(request, "mjpeg", parts)
    except ConnectionResetError:
        pass  # the viewer went away
    return resp


async def _stream_parts(
    resp: web.StreamResponse,
    appliance: Appliance,
    frame: Frame | None,
    max_fps: float,
    quality: int | None,
) -> None:
    hub = appliance.hub
    pacer = FramePacer(max_fps)  # caps the rate without delaying a source at the cap
    latest: Frame | None = None
    jpeg = b""
    try:
        while True:
            if frame is not None:
                rest = pacer.delay()
                if rest > 0:
                    await asyncio.sleep(rest)
                    frame = hub.latest or frame  # the freshest picture after the wait
                pacer.take()
                jpeg = await appliance.jpeg.encode(frame, quality=quality)
                await resp.write(
                    b"--" + BOUNDARY.encode() + b"\r\nContent-Type: image/jpeg\r\n"
                    b"Content-Length: " + str(len(jpeg)).encode() + b"\r\n\r\n" + jpeg + b"\r\n"
                )
                # Take the freshest picture at once if it changed while this one was sent.
                latest = hub.latest
                if latest is not None and latest.content_seq != frame.content_seq:
                    frame = latest
                    continue
            try:
                async with asyncio.timeout(KEEPALIVE):
                    frame = await hub.next_frame(frame.seq if frame else -1, changed_only=True)
            except TimeoutError:
                frame = hub.latest  # keep-alive: the same picture again

    finally:
        # A viewer that leaves ends this loop with an exception whose traceback keeps this
        # frame, and with it the last picture (2.7 MB at 720p) and its JPEG, in a reference
        # cycle until a full GC, which is rare: a soak of MJPEG viewers alone found 10-20 such
        # dead frames pinning pictures, and RSS +64 MiB in 3 min (docs/reliability.md).
        frame = latest = None
        jpeg = b""


@routes.get("/api/snapshot")
@describe(
    Operation(
        permission="view",
        summary="The latest frame as one JPEG or PNG",
        tag="video",
        params=(
            Param("format", enum("jpeg", "jpg", "png"), "case-insensitive; default jpeg"),
            Param("quality", integer(1, 100), QUALITY_DOC),
            Param("width", integer(0, 7680), "scale down to at most this width (0: as is)"),
            Param("height", integer(0, 4320), "scale down to at most this height (0: as is)"),
        ),
        replies={
            200: Reply(
                "the picture (image/jpeg, or image/png for format=png)",
                {"type": "string", "contentMediaType": "image/*"},
                "image/*",
            )
        },
        errors={
            400: "a query parameter is not an integer, out of range or an unknown format",
            503: "no frame yet (the message says why: no signal, target off, ...)",
        },
    )
)
async def snapshot(request: web.Request) -> web.Response:
    appliance = request.app[APPLIANCE]
    fmt = request.query.get("format", "jpeg").lower()
    if fmt not in ("jpeg", "jpg", "png"):
        fail(400, "query parameter 'format' must be jpeg or png")
    quality = _quality(request)
    width = _int_param(request, "width", 0, 0, 7680)
    height = _int_param(request, "height", 0, 0, 4320)
    frame = appliance.hub.latest
    if frame is None:
        fail(503, f"no frame yet: {appliance.hub.signal.message or appliance.hub.signal.status}")
    if fmt == "png":
        body = await appliance.jpeg.encode_png(
            frame, max_width=width or None, max_height=height or None
        )
        content_type = "image/png"
    else:
        body = await appliance.jpeg.encode(
            frame, quality=quality, max_width=width or None, max_height=height or None
        )
        content_type = "image/jpeg"
    return web.Response(body=body, content_type=content_type, headers={"Cache-Control": "no-store"})


_EDID = obj(
    ("edid", "info", "configured"),
    edid=string("the EDID as hex, 256 characters per 128-byte block; empty: none set"),
    info=nullable(
        obj(
            vendor=string(),
            product=integer(0),
            name=string(),
            version=string(),
            timings=array(string("1920x1080p60")),
            vics=array(integer(0)),
            ycbcr444=BOOLEAN,
            ycbcr422=BOOLEAN,
            hdmi=BOOLEAN,
            extensions=integer(0),
        )
    ),
    configured=nullable(
        obj(
            configured=BOOLEAN,
            applied=BOOLEAN,
            supported=BOOLEAN,
            error=string("why the configured EDID (video.edid) could not be set"),
        )
    ),
)


async def _edid_reply(appliance: Appliance) -> web.Response:
    try:
        data = await appliance.source.read_edid()
    except EdidUnsupported as exc:
        fail(409, str(exc))
    except OSError as exc:
        fail(502, f"cannot read the EDID: {exc.strerror or exc}")
    info: dict[str, object] | None = None
    if data:
        try:
            info = edid_codec.parse(data).as_dict()
        except edid_codec.EdidError:
            info = None  # the receiver holds something we cannot read: shown as hex only
    return json_response(
        {"edid": data.hex(), "info": info, "configured": appliance.source.edid_state()}
    )


@routes.get("/api/video/edid")
@describe(
    Operation(
        permission="view",
        summary="The EDID the HDMI receiver offers the target, as hex and decoded",
        tag="video",
        replies={200: ok("the EDID", _EDID)},
        errors={
            409: "the video source has no EDID (demo target, a UVC dongle)",
            502: "the device failed",
        },
    )
)
async def get_edid(request: web.Request) -> web.Response:
    return await _edid_reply(request.app[APPLIANCE])


@routes.put("/api/video/edid")
@describe(
    Operation(
        permission="admin",
        audit="video.edid",
        summary="Set the EDID the HDMI receiver offers (the target sees a re-plug)",
        description='Body: {"edid": "00ffffffffffff00..."} (hex, whole 128-byte blocks) or '
        '{"default": true} for the built-in one (1080p60/50/30, 720p60/50, RGB). Not saved: '
        "video.edid applies again at the next start.",
        tag="video",
        body=obj(
            edid=string("hex; spaces allowed"),
            default=BOOLEAN,
        ),
        replies={200: ok("the EDID now set", _EDID)},
        errors={
            400: "neither edid nor default given, or not a valid EDID (the message says why)",
            409: "the video source has no EDID (demo target, a UVC dongle)",
            502: "the device refused it",
        },
    )
)
async def put_edid(request: web.Request) -> web.Response:
    appliance = request.app[APPLIANCE]
    data = await read_json(request)
    use_default = get_field(data, "default", bool, False)
    text = get_field(data, "edid", str, None)
    if use_default == (text is not None):
        fail(400, 'send either {"edid": "<hex>"} or {"default": true}')
    if text is None:
        blob = edid_codec.DEFAULT
    else:
        try:
            blob = edid_codec.from_text(text)
            edid_codec.parse(blob)
        except edid_codec.EdidError as exc:
            fail(400, f"not a valid EDID: {exc}")
    try:
        await appliance.source.write_edid(blob)
    except EdidUnsupported as exc:
        fail(409, str(exc))
    except OSError as exc:
        fail(502, f"the receiver refused the EDID: {exc.strerror or exc}")
    return await _edid_reply(appliance)
