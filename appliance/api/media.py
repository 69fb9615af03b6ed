"""``/api/media``: virtual media — the image store (list, upload, download from a URL, delete)
and the target's drive (attach, detach). Added for targets that have a media facet.

Uploads stream: ``PUT /api/media/images/{name}`` writes the body as it arrives (never held in
memory; see :mod:`appliance.media.store`), and a ``Content-Range: bytes START-END/TOTAL`` header
continues an interrupted upload from the size ``GET`` reports. Every change goes out as a
WebSocket ``media`` event and in the ``state`` document.
"""

from __future__ import annotations

import re
from typing import Any, NoReturn

from aiohttp import web

from appliance.api.httpjson import fail, get_field, json_response, read_json
from appliance.api.jobs import wait_for_job
from appliance.api.openapi import (
    BOOLEAN,
    JOB_REF,
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
from appliance.api.rights import audit_detail
from appliance.media.errors import MediaError, TooLarge
from appliance.media.fetch import name_from_url
from appliance.media.names import MAX_NAME, check_name
from appliance.mediactl import TRANSFERS, MediaControl
from appliance.runtime import APPLIANCE
from appliance.targets.facets import ActionRefused, FacetUnavailable

routes = web.RouteTableDef()

READ_CHUNK = 1 << 16
_RANGE = re.compile(r"^bytes (\d{1,19})-(\d{1,19})/(\d{1,19}|\*)$")

_IMAGE = obj(
    ("name", "size", "state", "sha256", "attached", "modified"),
    name=string(),
    size=integer(0, description="bytes on disk (so far, for an incomplete image)"),
    state=enum(
        "ready",
        "incomplete",
        "transferring",
        description="incomplete: an interrupted upload or download (resume or delete it)",
    ),
    sha256=nullable(string("hex; null while unknown")),
    attached=BOOLEAN,
    modified=number(0, description="Unix time, seconds"),
)
_STATUS = obj(
    ("available", "inserted", "image"),
    available=BOOLEAN,
    inserted=BOOLEAN,
    image=nullable(string("the store image in the drive")),
    path=string("what the drive reads"),
    label=string(),
    kind=enum("cdrom", "flash"),
    read_only=BOOLEAN,
    volume_label=nullable(string("ISO 9660 volume label (demo target)")),
    url=string("the URL streamed into the drive"),
    streaming=nullable(
        string(
            "why attaching a URL with transfer 'stream' cannot work here (no nbdkit, no nbd "
            "module, no NBD helper for the unprivileged service); null: it can"
        )
    ),
    reason=string(),
)
_NAME = Param(
    "name",
    string("an image name: no / or \\, no leading dot", minLength=1, maxLength=MAX_NAME),
    where="path",
)
_NAME_ERRORS = {400: "an invalid image name (separator, leading dot, too long), or a symbolic link"}


def _control(request: web.Request) -> MediaControl:
    media = request.app[APPLIANCE].media
    if media is None:  # routes are added only with media; kept for type narrowing
        fail(409, "this target has no virtual media")
    return media


def _refuse(exc: MediaError | ActionRefused | FacetUnavailable) -> NoReturn:
    if isinstance(exc, MediaError):
        fail(exc.status, str(exc), **exc.info)
    fail(409, str(exc))


def _name(request: web.Request) -> str:
    try:
        return check_name(request.match_info["name"])
    except MediaError as exc:
        _refuse(exc)


@routes.get("/api/media")
@describe(
    Operation(
        permission="view",
        summary="The virtual drive: what is inserted, as what",
        tag="media",
        replies={200: ok("the drive", _STATUS)},
    )
)
async def media_status(request: web.Request) -> web.Response:
    return json_response(_control(request).status())


@routes.get("/api/media/images")
@describe(
    Operation(
        permission="view",
        summary="The images in the store, with size, checksum and state",
        tag="media",
        replies={
            200: ok(
                "the images by name, free space and the size limit (bytes)",
                obj(
                    ("images", "free", "max_image_size"),
                    images=array(_IMAGE),
                    free=integer(0),
                    max_image_size=integer(1),
                ),
            )
        },
    )
)
async def list_images(request: web.Request) -> web.Response:
    store = _control(request).store
    try:
        store.prepare()
        free = max(store.free_space(), 0)
    except (MediaError, OSError):
        free = 0
    return json_response(
        {
            "images": [i.as_dict() for i in store.list()],
            "free": free,
            "max_image_size": store.max_size,
        }
    )


@routes.get("/api/media/images/{name}")
@describe(
    Operation(
        permission="view",
        summary="One image (an incomplete one's size is where a resumed upload starts)",
        tag="media",
        params=(_NAME,),
        replies={200: ok("the image", _IMAGE)},
        errors={**_NAME_ERRORS, 404: "no such image"},
    )
)
async def get_image(request: web.Request) -> web.Response:
    name = _name(request)
    try:
        info = _control(request).store.info(name)
    except MediaError as exc:
        _refuse(exc)
    if info is None:
        fail(404, f"no image named {name!r}")
    return json_response(info.as_dict())


def _content_range(header: str) -> tuple[int, int, int | None]:
    m = _RANGE.match(header.strip())
    if not m:
        fail(400, "Content-Range must be 'bytes START-END/TOTAL' (TOTAL may be *)")
    start, end = int(m[1]), int(m[2])
    total = None if m[3] == "*" else int(m[3])
    if end < start or (total is not None and end >= total):
        fail(400, f"Content-Range {header!r} does not fit: END < START or END >= TOTAL")
    return start, end, total


@routes.put("/api/media/images/{name}")
@describe(
    Operation(
        permission="media",
        audit="media.upload",
        summary="Upload an image (streamed; resumable with Content-Range)",
        description=(
            "The body is the image's bytes (any length; chunked is fine). Without "
            "Content-Range the upload starts from byte 0 (replacing an incomplete one). With "
            "`Content-Range: bytes START-END/TOTAL` it continues an incomplete image whose size "
            "is START. The image takes its name only when complete; until then it is listed as "
            "incomplete, and a dropped connection keeps what arrived."
        ),
        tag="media",
        params=(
            _NAME,
            Param(
                "Content-Range",
                string("bytes START-END/TOTAL"),
                "where this body goes in the image",
                where="header",
            ),
        ),
        body={"type": "string", "format": "binary"},
        body_type="application/octet-stream",
        body_required=False,
        replies={
            200: ok("a part was stored; the image is still incomplete", _IMAGE),
            201: ok("the image is complete", _IMAGE),
        },
        errors={
            **_NAME_ERRORS,
            409: "the image exists, is attached or is being transferred, or START is not the "
            "incomplete image's size (`offset` says where to resume)",
            413: "the image is over media.max_image_mb",
            507: "not enough free space on the image disk",
        },
    )
)
async def upload_image(request: web.Request) -> web.Response:
    audit_detail(request, image=request.match_info["name"])
    store = _control(request).store
    name = _name(request)
    length = request.content_length
    header = request.headers.get("Content-Range")
    if header is not None:
        start, end, total = _content_range(header)
        limit: int | None = end - start + 1
        if length is not None and length != limit:
            fail(400, f"Content-Length {length} does not match Content-Range {header!r}")
    else:
        start, total, limit = 0, length, length
    try:
        transfer = store.begin(name, start=start, total=total)
    except MediaError as exc:
        _refuse(exc)
    kept = False
    try:
        try:
            await transfer.pump(request.content.iter_chunked(READ_CHUNK), limit=limit)
        except TooLarge as exc:
            _refuse(exc)  # the part is removed (finally): an oversize image is never resumed
        except MediaError as exc:  # disk full: keep what is there for a resume
            kept = True
            await transfer.suspend()
            _refuse(exc)
        except Exception:
            # The client went away or the body was cut short: keep what arrived (synced).
            kept = True
            await transfer.suspend()
            raise
        if transfer.complete or (total is None and header is None):
            info = await transfer.finish()
            kept = True
            return json_response(info.as_dict(), status=201)
        kept = True
        await transfer.suspend()
        partial = store.info(name)
        assert partial is not None
        return json_response(partial.as_dict(), status=200)
    finally:
        if not kept:
            await transfer.abort()


@routes.delete("/api/media/images/{name}")
@describe(
    Operation(
        permission="media",
        audit="media.delete",
        summary="Delete an image (or an incomplete one)",
        tag="media",
        params=(_NAME,),
        replies={200: ok("deleted", obj(("deleted",), deleted=string()))},
        errors={
            **_NAME_ERRORS,
            404: "no such image",
            409: "the image is attached or being transferred",
        },
    )
)
async def delete_image(request: web.Request) -> web.Response:
    audit_detail(request, image=request.match_info["name"])
    name = _name(request)
    try:
        _control(request).store.delete(name)
    except MediaError as exc:
        _refuse(exc)
    return json_response({"deleted": name})


@routes.post("/api/media/fetch")
@describe(
    Operation(
        permission="media",
        audit="media.fetch",
        summary="Download an image from an HTTP(S) URL into the store (a job)",
        description=(
            "Answers 202 with the job at once (progress in bytes as `job` events, or "
            "`GET /api/jobs/{id}`); with `wait: true` answers when the download has ended. "
            "With `sha256` the download must match it or is removed."
        ),
        tag="media",
        body=obj(
            ("url",),
            url=string("http:// or https://", maxLength=4096),
            name=string("the image name (default: the URL's last path segment)"),
            sha256=string("expected SHA-256, hex", pattern="^[0-9a-fA-F]{64}$"),
            wait=BOOLEAN,
        ),
        replies={
            200: ok("wait: the finished job (done or failed)", JOB_REF),
            202: ok("the job started", JOB_REF),
        },
        errors={409: "the image exists, is attached or is being transferred"},
    )
)
async def fetch_image(request: web.Request) -> web.Response:
    control = _control(request)
    data = await read_json(request)
    url = get_field(data, "url", str)
    name = get_field(data, "name", str, None)
    sha256 = get_field(data, "sha256", str, None)
    wait = get_field(data, "wait", bool, False)
    audit_detail(request, url=url, name=name)
    try:
        job = control.fetch(url, name if name is not None else name_from_url(url), sha256)
    except MediaError as exc:
        _refuse(exc)
    if not wait:
        return json_response(job.as_dict(), status=202)
    await wait_for_job(request, request.app[APPLIANCE], job)
    return json_response(job.as_dict(), status=200)


@routes.post("/api/media/attach")
@describe(
    Operation(
        permission="media",
        audit="media.attach",
        summary="Put an image (from the store, or a URL) in the target's drive",
        description=(
            "`image` names a store image; `url` streams an HTTP(S) image that answers range "
            "requests through NBD with nothing stored (`transfer: stream`), or downloads it "
            "into the store first and attaches it when done (`download`: answers 202 with the "
            "job); `auto` streams where the appliance can. A CD-ROM is always read-only; a "
            "flash drive is read-only unless `read_only` is false. An attached image cannot "
            "be deleted or overwritten."
        ),
        tag="media",
        body=obj(
            image=string("an image name in the store"),
            url=string("http:// or https:// image URL (instead of image)", maxLength=4096),
            transfer=enum(*TRANSFERS, description="for url; default auto"),
            sha256=string("for a url download: expected SHA-256", pattern="^[0-9a-fA-F]{64}$"),
            kind=enum("cdrom", "flash", description="default cdrom"),
            read_only=BOOLEAN,
        ),
        replies={
            200: ok("the drive", _STATUS),
            202: ok("url download: the job (it attaches the image when done)", JOB_REF),
        },
        errors={
            404: "no such image",
            409: "a medium is inserted, the image is incomplete or being transferred, the "
            "drive is unavailable, or streaming is not possible here",
            502: "the URL could not be streamed (server down, no range requests)",
        },
    )
)
async def attach(request: web.Request) -> web.Response:
    control = _control(request)
    data = await read_json(request)
    image = get_field(data, "image", str, None)
    url = get_field(data, "url", str, None)
    if (image is None) == (url is None):
        fail(400, "give either image (a store image) or url")
    kind = get_field(data, "kind", str, "cdrom")
    if kind not in ("cdrom", "flash"):
        fail(400, f"kind must be cdrom or flash, not {kind!r}")
    read_only = get_field(data, "read_only", bool, True)
    transfer = get_field(data, "transfer", str, "auto")
    audit_detail(request, image=image, url=url, kind=kind, read_only=read_only)
    if transfer not in TRANSFERS:
        fail(400, f"transfer must be one of {', '.join(TRANSFERS)}, not {transfer!r}")
    sha256 = get_field(data, "sha256", str, None)
    try:
        if image is not None:
            check_name(image)
            return json_response(await control.attach(image, kind, read_only))
        job = await control.attach_url(url, kind, read_only, transfer=transfer, sha256=sha256)
    except (MediaError, ActionRefused, FacetUnavailable) as exc:
        _refuse(exc)
    if job is not None:
        return json_response(job.as_dict(), status=202)
    return json_response(control.status())


@routes.post("/api/media/detach")
@describe(
    Operation(
        permission="media",
        audit="media.detach",
        summary="Empty the target's drive (a no-op when it is empty)",
        tag="media",
        replies={200: ok("the drive", _STATUS)},
        errors={409: "the host holds the medium locked and the kernel cannot force an eject"},
    )
)
async def detach(request: web.Request) -> web.Response:
    try:
        status: dict[str, Any] = await _control(request).detach()
    except (ActionRefused, FacetUnavailable) as exc:
        _refuse(exc)
    return json_response(status)
