"""Ask WebRTC receivers to show our video at once: the RTP "playout-delay" header extension.

Why: a browser's WebRTC receiver smooths playback. It holds each decoded frame until a render
time computed from its jitter estimate, the decode time and a fixed render delay (measured in
Chromium here: a 27-40 ms target on a loopback link with no jitter at all), which is right for a
video call and wrong for a remote console, where only the newest picture matters. The
``playout-delay`` extension (http://www.webrtc.org/experiments/rtp-hdrext/playout-delay) lets the
sender state the allowed playout delay; min = max = 0 tells Chromium and Safari to render each
frame as soon as it is decoded. ``RTCRtpReceiver.jitterBufferTarget = 0`` on the page is not
enough: it only lowers the minimum.

aiortc does not know the extension, so this module (1) adds its URI to aiortc's video header
extensions, so that answers accept it when the browser offers it (Chromium does), and (2) gives a
sender a header-extension map that writes it into every packet (a receiver applies the value of
the frames that carry it; on every packet it also survives loss). Three bytes per packet.
"""

from __future__ import annotations

from struct import pack
from typing import Final

from aiortc import RTCRtpSender
from aiortc import codecs as aiortc_codecs
from aiortc import rtp as aiortc_rtp
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters

PLAYOUT_DELAY_URI: Final = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay"
ONE_BYTE: Final = 0xBEDE  # RFC 8285 header-extension profiles
TWO_BYTE: Final = 0x1000


def playout_delay_value(min_ms: int = 0, max_ms: int = 0) -> bytes:
    """The extension's 3 bytes: 12-bit minimum and maximum delay, each in units of 10 ms."""
    lo, hi = min_ms // 10, max_ms // 10
    if not 0 <= lo <= hi <= 0xFFF:
        raise ValueError(
            f"playout delay must satisfy 0 <= min <= max <= 40950 ms: {min_ms, max_ms}"
        )
    return pack("!I", (lo << 12) | hi)[1:]


class PlayoutDelayMap(aiortc_rtp.HeaderExtensionsMap):
    """aiortc's header-extension map plus playout-delay on every packet, once negotiated."""

    def __init__(self, value: bytes) -> None:
        super().__init__()
        self._value = value
        self._id: int | None = None

    def configure(self, parameters: RTCRtpParameters) -> None:
        super().configure(parameters)
        for ext in parameters.headerExtensions:
            if ext.uri == PLAYOUT_DELAY_URI:
                self._id = ext.id

    def set(self, values: aiortc_rtp.HeaderExtensions) -> tuple[int, bytes]:
        profile, data = super().set(values)
        if self._id is None:
            return profile, data
        # Appended after the others' padding: RFC 8285 allows padding bytes between elements.
        # (Per packet and per peer: no unpacking and re-packing of what aiortc built.)
        if profile == TWO_BYTE:
            element = bytes((self._id, len(self._value))) + self._value
        else:
            profile = ONE_BYTE
            element = bytes(((self._id << 4) | (len(self._value) - 1),)) + self._value
        data += element + b"\x00" * (-(len(data) + len(element)) % 4)
        return profile, data


def offer_playout_delay() -> None:
    """Let answers accept the extension for video (idempotent; aiortc's list is process-wide)."""
    video = aiortc_codecs.HEADER_EXTENSIONS["video"]
    if not any(ext.uri == PLAYOUT_DELAY_URI for ext in video):
        used = {ext.id for exts in aiortc_codecs.HEADER_EXTENSIONS.values() for ext in exts}
        free = next(i for i in range(1, 15) if i not in used)
        video.append(RTCRtpHeaderExtensionParameters(id=free, uri=PLAYOUT_DELAY_URI))


def send_playout_delay(sender: RTCRtpSender, min_ms: int = 0, max_ms: int = 0) -> None:
    """Make *sender* (before it starts) put playout-delay into each packet it sends."""
    offer_playout_delay()
    sender._RTCRtpSender__rtp_header_extensions_map = PlayoutDelayMap(  # type: ignore[attr-defined]
        playout_delay_value(min_ms, max_ms)
    )
