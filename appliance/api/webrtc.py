"""``POST /api/webrtc/offer``, with aiortc loaded only when the first viewer asks for WebRTC.

Why lazy: aiortc and what it pulls in (its ICE, DTLS and SRTP stacks) add about 18 MiB of RSS and
0.15-0.25 s of start-up, while most browsers watch over WebCodecs and never make an offer. On a
512 MB board that memory matters. The first offer imports :mod:`.webrtc_peers` in a worker
thread (the event loop keeps serving meanwhile) and costs that once; later offers go straight
through. Input validation happens before the import, so a bad request never loads it.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from aiohttp import web

from appliance.api.connections import CONNECTIONS, credential_of
from appliance.api.httpjson import fail, json_response, read_json
from appliance.api.ice import IceServer
from appliance.api.openapi import Operation, describe, obj, ok, string
from appliance.api.rights import connection_check
from appliance.runtime import APPLIANCE

if TYPE_CHECKING:
    from appliance.api.webrtc_peers import Peer, WebRtcPeers

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

MAX_SDP = 64 * 1024


class WebRtcService:
    """The app's WebRTC side: settings now, :class:`.webrtc_peers.WebRtcPeers` on demand."""

    def __init__(
        self,
        app: web.Application,
        ice_servers: tuple[IceServer, ...],
        max_peers: int,
        connect_timeout: float = 20.0,
    ):
        self._app = app
        self.ice_servers = ice_servers
        self.max_peers = max_peers
        self.connect_timeout = connect_timeout
        self._peers: WebRtcPeers | None = None
        self._lock = asyncio.Lock()

    @property
    def peers(self) -> dict[str, Peer]:
        """The connected peers (none before the first offer)."""
        return self._peers.peers if self._peers is not None else {}

    async def get(self) -> WebRtcPeers:
        async with self._lock:
            if self._peers is None:
                loop = asyncio.get_running_loop()
                module: Any = await loop.run_in_executor(
                    None, importlib.import_module, "appliance.api.webrtc_peers"
                )
                self._peers = module.WebRtcPeers(
                    self._app[APPLIANCE],
                    self._app[APPLIANCE].h264,
                    self.ice_servers,
                    self.max_peers,
                    self.connect_timeout,
                    self._app.get(CONNECTIONS),
                )
                log.info("WebRTC loaded for the first viewer")
            return self._peers

    async def close(self) -> None:
        if self._peers is not None:
            await self._peers.close()


WEBRTC: web.AppKey[WebRtcService] = web.AppKey("webrtc", WebRtcService)


def setup(
    app: web.Application,
    ice_servers: Sequence[IceServer] = (),
    max_peers: int = 16,
    connect_timeout: float = 20.0,
) -> WebRtcService:
    """Add the offer route; peers share the appliance's one H.264 encoder (``Appliance.h264``).

    *connect_timeout*: seconds a peer may take to connect (or to come back from "disconnected")
    before its slot is freed; see :mod:`.webrtc_peers`.
    """
    service = WebRtcService(app, tuple(ice_servers), max_peers, connect_timeout)
    app[WEBRTC] = service
    app.add_routes(routes)

    async def close_peers(app: web.Application) -> None:
        await service.close()

    app.on_shutdown.append(close_peers)
    return service


@routes.post("/api/webrtc/offer")
@describe(
    Operation(
        permission="view",
        summary="WebRTC: answer a complete SDP offer (video sent only; input data channels)",
        description="ICE candidates must be in the offer (no trickle). Data channels: `input` "
        "(the /api/ws client messages) and `pointer` (absolute moves). See docs/api.md.",
        tag="video",
        body=obj(
            ("sdp", "type"),
            sdp=string(pattern="^v=0", maxLength=MAX_SDP),
            type={"const": "offer"},
        ),
        replies={
            200: ok("the answer", obj(("sdp", "type"), sdp=string(), type={"const": "answer"}))
        },
        errors={
            400: "not an offer, or an offer the server cannot accept",
            413: f"SDP larger than {MAX_SDP} bytes",
            503: "the viewer limit is reached",
        },
    )
)
async def offer(request: web.Request) -> web.Response:
    data = await read_json(request)
    sdp, kind = data.get("sdp"), data.get("type")
    if kind != "offer" or not isinstance(sdp, str) or not sdp.startswith("v=0"):
        fail(400, 'expected {"sdp": "v=0...", "type": "offer"}')
    if len(sdp) > MAX_SDP:
        fail(413, f"SDP larger than {MAX_SDP} bytes")
    peers = await request.app[WEBRTC].get()
    try:
        # data-channel messages obey the role of the offer's credential (the client id is for
        # "typing" in the presence list; a peer is not a console connection of its own)
        check = connection_check(request, "rtc")
        answer = await peers.answer(sdp, credential_of(request), check)
    except web.HTTPException:
        raise
    except Exception as exc:
        log.warning("WebRTC offer refused: %s", exc)
        fail(400, f"cannot accept this offer: {exc}")
    return json_response({"sdp": answer.sdp, "type": answer.type})
