"""``[video]``, ``[stream]`` and ``[webrtc]``: capturing the target's screen and sending it on.

Read by ``appliance.runtime`` (the capture source), ``appliance.api.video`` and
``appliance.api.h264`` (encoders), and ``appliance.api.app`` (WebRTC).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from appliance.config import checks
from appliance.config.context import Context
from appliance.config.errors import ConfigError
from appliance.config.options import option

VideoSource = Literal["demo", "v4l2", "qemu"]
PixelFormat = Literal["MJPG", "YUYV", "UYVY", "NV12"]
H264Codec = Literal["libx264", "h264_v4l2m2m", "auto"]
"""Here "auto" is passed on: the encoder tries the hardware codec first (not resolved here)."""


def _source_for(context: Context) -> VideoSource:
    """For "auto": the demo target draws its own screen, a QEMU guest's display is read from
    QEMU; hardware is captured through V4L2."""
    if context.target == "qemu":
        return "qemu"
    return "demo" if context.target == "demo" else "v4l2"


def edid_setting(key: str, value: object) -> str:
    """ "default", "keep", or a readable file holding a valid EDID (binary or hex text)."""
    if not isinstance(value, str) or not value:
        raise ConfigError(key, f'must be "default", "keep" or an EDID file path, not {value!r}')
    if value in ("default", "keep"):
        return value
    try:
        load_edid(value)
    except OSError as exc:
        raise ConfigError(key, f"cannot read {value}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ConfigError(key, f"{value}: {exc}") from None
    return value


def load_edid(setting: str) -> bytes | None:
    """The EDID bytes *setting* names (None for "keep": the receiver's own stays)."""
    from capture import edid

    if setting == "keep":
        return None
    if setting == "default":
        return edid.DEFAULT
    return edid.load(Path(setting).read_bytes())


@dataclass(frozen=True, slots=True, kw_only=True)
class VideoConfig:
    source: VideoSource = option(
        "auto", derive=_source_for, doc="auto: demo, qemu or v4l2 following target.kind"
    )
    """Resolved: the file may say "auto", the loaded value never does."""
    device: Path = option(Path("/dev/video0"), doc="V4L2 capture device")
    width: int = option(1920, check=checks.int_range(160, 7680), doc="capture width")
    height: int = option(1080, check=checks.int_range(120, 4320), doc="capture height")
    fps: int = option(30, check=checks.int_range(1, 240), doc="capture frame rate")
    format: PixelFormat = option("MJPG", doc="capture pixel format")
    edid: str = option(
        "default",
        check=edid_setting,
        doc='EDID the HDMI receiver offers: "default" (1080p60/50/30, 720p), "keep", or a file',
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamConfig:
    jpeg_quality: int = option(80, check=checks.int_range(1, 100), doc="MJPEG quality")
    max_fps: int = option(30, check=checks.int_range(1, 240), doc="frame rate cap for streams")
    h264_bitrate: int = option(
        5000, check=checks.int_range(100, 100_000), doc="H.264 bitrate, kbit/s (CBR with a VBV cap)"
    )
    h264_gop: int = option(
        0, check=checks.int_range(0, 100_000), doc="frames between IDRs; 0: only when a viewer asks"
    )
    h264_codec: H264Codec = option(
        "libx264",
        doc="H.264 encoder; h264_v4l2m2m is the Raspberry Pi's hardware encoder",
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class WebRtcConfig:
    ice_urls: tuple[str, ...] = option(
        (), check=checks.ice_urls, doc="STUN/TURN servers; none by default (LAN)"
    )
    turn_username: str = option("", doc="TURN user name (for turn: URLs)")
    turn_password: str = option("", doc="TURN password")
    max_peers: int = option(16, check=checks.int_range(1, 256), doc="most WebRTC viewers at once")
    connect_timeout: float = option(
        20.0, check=checks.number(1, 300), doc="seconds a viewer may take to connect"
    )
