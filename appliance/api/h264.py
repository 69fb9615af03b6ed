"""H.264 over WebSocket (``GET /api/stream.h264``): the lowest-latency way to a browser.

The browser feeds each binary message to a WebCodecs ``VideoDecoder`` and paints the result on a
canvas: no jitter buffer, no RTP, nothing between the encoder and the screen but TCP. Every viewer
shares the appliance's single :class:`~capture.h264.H264Encoder` (``Appliance.h264``), so ten
viewers cost one encode.

Each message is one access unit behind a small fixed header (big-endian; documented in
docs/api.md):

    0  u8   flags: bit 0 = keyframe (IDR, with SPS/PPS in front)
    1  u8   header length (20): later versions may append fields, readers skip to this offset
    2  u16  width          4  u16  height          6  u16  reserved (0)
    8  u32  frame seq (the hub's frame counter)
    12 u64  capture time: wall-clock microseconds since the Unix epoch
    20 ...  the access unit, Annex-B (start codes)

Before the first keyframe, and whenever the size or profile changes, a text message
``{"type": "stream", "codec": "avc1.42C028", "width": 1920, "height": 1080}`` says what follows.
The client may send ``{"type": "keyframe"}`` (after a decoder error, say) to get an IDR.

A viewer that stops reading fills its own small queue, which is then emptied; it resumes at the
next keyframe. The encoder and the other viewers never wait for it. A viewer whose credentials are
revoked is closed with code 4401 (``appliance.api.connections``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import struct
from typing import Any, Final

from aiohttp import WSCloseCode, WSMsgType, web

from appliance.api.connections import CLOSE_CODE, CLOSE_REASON, CONNECTIONS
from appliance.api.openapi import Operation, describe, ok
from appliance.jsondecode import JsonError, decode_json
from appliance.runtime import APPLIANCE
from capture.h264 import EncodedFrame, sps_info

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

HEADER: Final = struct.Struct(">BBHHHIQ")
FLAG_KEYFRAME: Final = 0x01
QUEUE: Final = 6  # access units per viewer before it skips to the next keyframe


def pack_frame(frame: EncodedFrame) -> bytes:
    """The binary WebSocket message for one access unit (header + Annex-B data)."""
    header = HEADER.pack(
        FLAG_KEYFRAME if frame.keyframe else 0,
        HEADER.size,
        frame.width & 0xFFFF,
        frame.height & 0xFFFF,
        0,
        frame.seq & 0xFFFFFFFF,
        max(0, round(frame.capture_wall * 1e6)),
    )
    return header + frame.data


def unpack_header(message: bytes) -> tuple[dict[str, Any], bytes]:
    """Inverse of :func:`pack_frame` (tests and Python clients)."""
    flags, length, width, height, _, seq, wall_us = HEADER.unpack_from(message)
    info = {
        "keyframe": bool(flags & FLAG_KEYFRAME),
        "width": width,
        "height": height,
        "seq": seq,
        "capture_us": wall_us,
    }
    return info, message[length:]


@routes.get("/api/stream.h264")
@describe(
    Operation(
        permission="view",
        summary="WebSocket: H.264 access units for WebCodecs",
        description="Text `stream` messages say the codec and size; binary messages are one "
        "access unit each, Annex-B, behind a 20-byte big-endian header. The client may send "
        '{"type": "keyframe"}. Formats: docs/api.md#get-apistreamh264-websocket. Closed with '
        "code 4401 when the credentials that opened it are revoked.",
        tag="websocket",
        replies={101: ok("switching to the WebSocket protocol")},
        errors={400: "not a WebSocket upgrade request"},
        extensions={
            "x-websocket": True,
            "x-websocket-binary-header": "u8 flags, u8 header length, u16 width, u16 height, "
            "u16 reserved, u32 frame seq, u64 capture time (µs since the epoch)",
            "x-websocket-close-codes": {str(CLOSE_CODE): CLOSE_REASON},
            "x-docs": "docs/api.md#get-apistreamh264-websocket",
        },
    )
)
async def stream_h264(request: web.Request) -> web.WebSocketResponse:
    encoder = request.app[APPLIANCE].h264
    ws = web.WebSocketResponse(heartbeat=10.0, max_msg_size=4096)
    await ws.prepare(request)
    sub = encoder.subscribe(maxsize=QUEUE)
    described: tuple[str, int, int] | None = None

    async def sender() -> None:
        nonlocal described
        while True:
            try:
                frame = await sub.get()
            except EOFError:  # the encoder closed (app shutdown): end this viewer's socket
                await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")
                return
            if frame.keyframe:
                info = sps_info(frame.data)
                what = (info.codec_string if info else "", frame.width, frame.height)
                if what != described:
                    described = what
                    await ws.send_str(
                        json.dumps(
                            {
                                "type": "stream",
                                "codec": what[0],
                                "width": frame.width,
                                "height": frame.height,
                            }
                        )
                    )
            await ws.send_bytes(pack_frame(frame))

    async def receive_requests() -> None:
        async for message in ws:
            if message.type is not WSMsgType.TEXT:
                continue
            try:
                msg = decode_json(message.data)
            except JsonError:  # ignored, as any other message but "keyframe" is
                continue
            if isinstance(msg, dict) and msg.get("type") == "keyframe":
                encoder.request_keyframe()

    send_task = asyncio.create_task(sender(), name="h264-ws-send")
    try:
        connections = request.app[CONNECTIONS]
        with request.app[APPLIANCE].viewing("h264_ws"):
            revoked = await connections.run_until_revoked(request, "h264", receive_requests())
        if revoked:
            send_task.cancel()  # no frame after the close frame
            await ws.close(code=CLOSE_CODE, message=CLOSE_REASON.encode())
    finally:
        sub.close()
        send_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, EOFError, ConnectionError):
            await send_task
    return ws
