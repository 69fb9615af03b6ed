"""Pixel conversions between what capture devices deliver and what the consumers take.

Every function here is one pass over the picture, and the pipeline calls each at most once per
frame (capture/frame.py caches the results). What goes where:

- the encoders (x264, the V4L2 M2M encoder, the JPEG encoder) take planar I420: packed 4:2:2
  (YUYV, UYVY) and NV12 are re-laid out to it directly — a strided numpy copy of the luma and
  every other row of chroma, never through BGR (≈0.9 ms at 1080p on the development machine,
  where YUYV → BGR → I420 costs ≈1.6 ms and writes three times the bytes);
- the device's JPEG is decoded by libavcodec straight to YUV (≈3.8 ms at 1080p, where OpenCV's
  ``imdecode`` to BGR takes ≈9.5 ms);
- BGR is made only for screen matching, drawing and PNG snapshots.

Raw YUV is limited range (16-235) and goes into JPEGs as it is, as the reference streamer does
(a range expansion would be another pass over every frame); JPEG YUV is full range and is handed
to x264 as ``yuvj420p``, which marks the range in the stream instead of converting it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal, get_args

import cv2
import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.uint8]

PixelFormat = Literal["bgr", "mjpeg", "yuyv", "uyvy", "nv12", "i420"]
PIXEL_FORMATS: Final[tuple[PixelFormat, ...]] = get_args(PixelFormat)
RAW_FORMATS: Final = frozenset({"yuyv", "uyvy", "nv12"})


@dataclass(frozen=True, slots=True)
class Yuv420:
    """A planar 4:2:0 picture in one contiguous array of shape (height * 3 / 2, width).

    Width and height are even. ``full_range``: JPEG's 0-255 levels rather than video's 16-235.
    """

    data: Array
    width: int
    height: int
    full_range: bool = False

    @property
    def planes(self) -> tuple[Array, Array, Array]:
        w, h = self.width, self.height
        flat = self.data.reshape(-1)
        y = flat[: w * h].reshape(h, w)
        u = flat[w * h : w * h * 5 // 4].reshape(h // 2, w // 2)
        v = flat[w * h * 5 // 4 :].reshape(h // 2, w // 2)
        return y, u, v


def _empty(width: int, height: int, full_range: bool = False) -> Yuv420:
    return Yuv420(np.empty((height * 3 // 2, width), np.uint8), width, height, full_range)


def packed_to_i420(data: Array, fmt: Literal["yuyv", "uyvy"], width: int, height: int) -> Yuv420:
    """YUYV/UYVY (rows of ``bytesperline`` >= 2 * width bytes) → I420; chroma from even rows."""
    w, h = width & ~1, height & ~1
    out = _empty(w, h)
    y, u, v = out.planes
    rows = data[:h, : 2 * w]
    luma, cb, cr = (0, 1, 3) if fmt == "yuyv" else (1, 0, 2)
    y[:] = rows[:, luma::2]
    u[:] = rows[0::2, cb::4]
    v[:] = rows[0::2, cr::4]
    return out


def nv12_to_i420(data: Array, width: int, height: int) -> Yuv420:
    """NV12 (a luma plane, then interleaved CbCr rows; both ``bytesperline`` wide) → I420."""
    w, h = width & ~1, height & ~1
    out = _empty(w, h)
    y, u, v = out.planes
    y[:] = data[:h, :w]
    chroma = data[height : height + h // 2, :w]
    u[:] = chroma[:, 0::2]
    v[:] = chroma[:, 1::2]
    return out


def bgr_to_i420(image: Array) -> Yuv420:
    h, w = image.shape[0] & ~1, image.shape[1] & ~1
    if (h, w) != image.shape[:2]:
        image = image[:h, :w]
    yuv: Array = cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420)  # type: ignore[assignment]
    return Yuv420(yuv, w, h)


def raw_to_bgr(data: Array, fmt: PixelFormat, width: int, height: int) -> Array:
    """A raw device picture straight to BGR (one pass; for matching, drawing, PNGs)."""
    if fmt in ("yuyv", "uyvy"):
        rows = np.ascontiguousarray(data[:height, : 2 * width]).reshape(height, width, 2)
        code = cv2.COLOR_YUV2BGR_YUYV if fmt == "yuyv" else cv2.COLOR_YUV2BGR_UYVY
        return cv2.cvtColor(rows, code)  # type: ignore[return-value]
    if fmt == "nv12":
        planes = data[: height * 3 // 2, :width]
        if not planes.flags.c_contiguous:
            planes = np.ascontiguousarray(planes)
        return cv2.cvtColor(planes, cv2.COLOR_YUV2BGR_NV12)  # type: ignore[return-value]
    raise ValueError(f"{fmt} is not a raw format")


def i420_to_bgr(yuv: Yuv420) -> Array:
    if yuv.full_range:
        import av

        frame = av.VideoFrame.from_numpy_buffer(yuv.data, format="yuvj420p")
        bgr: Array = frame.to_ndarray(format="bgr24")  # type: ignore[assignment]
        return bgr
    return cv2.cvtColor(yuv.data, cv2.COLOR_YUV2BGR_I420)  # type: ignore[return-value]


class JpegDecoder:
    """libavcodec's MJPEG decoder, to YUV. One per thread that decodes (it keeps state)."""

    def __init__(self) -> None:
        import av

        self._ctx: Any = av.CodecContext.create("mjpeg", "r")
        self._packet = av.Packet

    def decode(self, jpeg: bytes) -> tuple[Any, str]:
        """The decoded ``av.VideoFrame`` and its pixel format (yuvj420p, yuvj422p, ...)."""
        frames = self._ctx.decode(self._packet(jpeg))
        if not frames:
            raise ValueError("the JPEG decoded to no picture")
        frame = frames[0]
        return frame, str(frame.format.name)


def av_frame_to_i420(frame: Any) -> Yuv420:
    """Copy a decoded 4:2:0 ``av.VideoFrame`` into one contiguous I420 array (drops padding)."""
    w, h = int(frame.width) & ~1, int(frame.height) & ~1
    out = _empty(w, h, full_range=True)
    for plane, dst in zip(frame.planes, out.planes, strict=True):
        rows, cols = dst.shape
        src = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
        dst[:] = src[:rows, :cols]
    return out


def parse_fourcc(fourcc: str) -> PixelFormat:
    """The pipeline's name for a V4L2 FourCC (MJPG, YUYV, UYVY, NV12)."""
    names: dict[str, PixelFormat] = {
        "MJPG": "mjpeg",
        "JPEG": "mjpeg",
        "YUYV": "yuyv",
        "UYVY": "uyvy",
        "NV12": "nv12",
    }
    try:
        return names[fourcc]
    except KeyError:
        raise ValueError(f"unsupported pixel format {fourcc!r}") from None
