"""The two values every video consumer sees: a captured frame and the state of the signal.

A frame keeps the picture in the format the device delivered it (the device's JPEG bytes, packed
YUYV/UYVY, NV12; BGR from the demo and QEMU targets) and makes the other forms a consumer asks
for — I420 for the encoders, BGR for screen matching — on first use, once, however many
consumers ask (``i420()``, ``image``). Each such pass is counted in the hub's
:class:`~capture.work.WorkCounters`.

Frames are immutable snapshots: the hub hands the same object to every consumer, so nobody may
write into ``data``, ``image`` or ``i420()`` (encoders, matchers and viewers share them without
copies).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from capture import yuv
from capture.work import WorkCounters
from capture.yuv import PixelFormat, Yuv420

Image = npt.NDArray[np.uint8]
"""A BGR ``uint8`` array of shape (height, width, 3), as OpenCV produces it."""

SignalStatus = Literal["ok", "no_signal", "no_device", "starting", "target_off"]
SIGNAL_STATUSES: Final[tuple[str, ...]] = ("ok", "no_signal", "no_device", "starting", "target_off")

_decoders = threading.local()  # one libavcodec JPEG decoder per decoding thread


def _decoder() -> yuv.JpegDecoder:
    decoder: yuv.JpegDecoder | None = getattr(_decoders, "decoder", None)
    if decoder is None:
        decoder = _decoders.decoder = yuv.JpegDecoder()
    return decoder


@dataclass(frozen=True, slots=True)
class Captured:
    """A picture as the device delivered it.

    ``data``: JPEG bytes (``mjpeg``); an array of shape (height, bytesperline) for ``yuyv`` and
    ``uyvy``, (height * 3 / 2, bytesperline) for ``nv12``, (height * 3 / 2, width) for ``i420``;
    a BGR (height, width, 3) array for ``bgr``.
    """

    format: PixelFormat
    width: int
    height: int
    data: bytes | Image

    @classmethod
    def bgr(cls, image: Image) -> Captured:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected a BGR uint8 HxWx3 image, got {image.dtype} {image.shape}")
        return cls("bgr", int(image.shape[1]), int(image.shape[0]), image)


class Frame:
    """One captured picture.

    ``seq`` increments for every published frame; ``content_seq`` only when the pixels differ
    from the previous frame, so consumers can skip re-encoding a static screen.
    ``timestamp`` is ``time.monotonic()`` when the frame was captured.
    """

    __slots__ = (
        "_bgr",
        "_i420",
        "_lock",
        "captured",
        "content_seq",
        "seq",
        "timestamp",
        "work",
    )

    def __init__(
        self,
        captured: Captured,
        seq: int,
        content_seq: int,
        timestamp: float,
        work: WorkCounters | None = None,
    ) -> None:
        self.captured = captured
        self.seq = seq
        self.content_seq = content_seq
        self.timestamp = timestamp
        self.work = work if work is not None else WorkCounters()
        self._lock = threading.Lock()
        self._bgr: Image | None = captured.data if captured.format == "bgr" else None  # type: ignore[assignment]
        self._i420: Yuv420 | None = None
        if captured.format == "i420":
            assert not isinstance(captured.data, bytes)
            self._i420 = Yuv420(captured.data, captured.width, captured.height)

    @property
    def format(self) -> PixelFormat:
        return self.captured.format

    @property
    def width(self) -> int:
        return self.captured.width

    @property
    def height(self) -> int:
        return self.captured.height

    @property
    def jpeg(self) -> bytes | None:
        """The device's own JPEG (an MJPEG source), to pass on untouched; else None."""
        data = self.captured.data
        return data if isinstance(data, bytes) else None

    def i420(self) -> Yuv420:
        """The picture as I420 (what the encoders take): made once per frame, then shared."""
        done = self._i420
        if done is not None:
            return done
        with self._lock:
            if self._i420 is None:
                self._i420 = self._make_i420()
            return self._i420

    @property
    def image(self) -> Image:
        """The picture as BGR (screen matching, drawing, PNGs): made once per frame."""
        done = self._bgr
        if done is not None:
            return done
        with self._lock:
            if self._bgr is None:
                self._bgr = self._make_bgr()
            return self._bgr

    # Both run under the frame's lock, in whichever consumer's thread asked first.
    def _make_i420(self) -> Yuv420:
        cap, work = self.captured, self.work
        if isinstance(cap.data, bytes):
            return self._decode()
        if cap.format == "bgr":
            with work.timed("yuv", "conversions"):
                return yuv.bgr_to_i420(cap.data)
        with work.timed("yuv", "conversions"):
            if cap.format == "nv12":
                return yuv.nv12_to_i420(cap.data, cap.width, cap.height)
            if cap.format in ("yuyv", "uyvy"):
                return yuv.packed_to_i420(cap.data, cap.format, cap.width, cap.height)
        raise ValueError(f"cannot make I420 from {cap.format}")

    def _decode(self) -> Yuv420:
        data = self.captured.data
        assert isinstance(data, bytes)
        work = self.work
        with work.timed("decode", "decodes"):
            decoded, pix_fmt = _decoder().decode(data)
        if pix_fmt not in ("yuvj420p", "yuv420p"):  # 4:2:2 / 4:4:4 JPEGs: chroma to 4:2:0
            with work.timed("yuv", "conversions"):
                decoded = decoded.reformat(format="yuvj420p")
        with work.timed("decode", "copies"):
            return yuv.av_frame_to_i420(decoded)

    def _make_bgr(self) -> Image:
        cap, work = self.captured, self.work
        if self._i420 is not None or isinstance(cap.data, bytes):
            i420 = self._i420 if self._i420 is not None else self._decode()
            self._i420 = i420
            with work.timed("bgr", "conversions"):
                return yuv.i420_to_bgr(i420)
        assert not isinstance(cap.data, bytes)
        with work.timed("bgr", "conversions"):
            return yuv.raw_to_bgr(cap.data, cap.format, cap.width, cap.height)


@dataclass(frozen=True, slots=True)
class SignalState:
    """What the capture side currently sees, for status displays and the API.

    ``status`` is one of :data:`SIGNAL_STATUSES`; ``message`` says why in words a user
    understands ("No capture device at /dev/video0"); ``fps`` is measured, not configured.
    """

    status: SignalStatus = "starting"
    message: str = ""
    width: int = 0
    height: int = 0
    fps: float = 0.0

    def __post_init__(self) -> None:
        if self.status not in SIGNAL_STATUSES:
            raise ValueError(f"signal status {self.status!r} is not one of {SIGNAL_STATUSES}")

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def as_dict(self) -> dict[str, object]:
        return {
            "status": self.status,
            "message": self.message,
            "width": self.width,
            "height": self.height,
            "fps": round(self.fps, 2),
        }
