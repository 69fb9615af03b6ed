"""JPEG/PNG encoding of frames, once per distinct picture however many clients ask.

Encoding is CPU work (several ms at 1080p), so it runs in a thread pool, never in the event
loop. Results are cached by (content_seq, size, quality): ten MJPEG viewers of a static BIOS
screen cost one encode in total, and concurrent requests for the same picture share the one
encode in flight. One encoder per hub: content_seq numbers are only unique within one hub.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Executor
from functools import partial

import cv2

from capture.frame import Frame, Image
from capture.yuv import Yuv420

CacheKey = tuple[str, int, int, int, int, int, int]


def target_size(
    width: int,
    height: int,
    *,
    scale: float | None = None,
    max_width: int | None = None,
    max_height: int | None = None,
) -> tuple[int, int]:
    """Output size for a *width* x *height* frame: *scale* first, then shrink to fit the maxima.

    The aspect ratio is kept; the maxima never enlarge a picture. None or 0 means "no limit"
    (so HTTP handlers can pass a query parameter's default of 0 straight through).
    """
    factor = 1.0 if scale is None else scale
    if factor <= 0:
        raise ValueError(f"scale must be positive, not {scale}")
    for name, limit, size in (("max_width", max_width, width), ("max_height", max_height, height)):
        if limit is None or limit == 0:
            continue
        if limit < 0:
            raise ValueError(f"{name} must not be negative, not {limit}")
        factor = min(factor, limit / size)
    if factor == 1.0:
        return width, height
    return max(1, round(width * factor)), max(1, round(height * factor))


def _resized(image: Image, size: tuple[int, int]) -> Image:
    h, w = image.shape[:2]
    if (w, h) == size:
        return image
    interpolation = cv2.INTER_AREA if size[0] < w else cv2.INTER_LINEAR
    return cv2.resize(image, size, interpolation=interpolation)  # type: ignore[return-value]


def encode_jpeg(image: Image, quality: int, size: tuple[int, int]) -> bytes:
    """Blocking JPEG encode (for the thread pool)."""
    ok, buf = cv2.imencode(".jpg", _resized(image, size), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


def encode_png_bytes(image: Image, size: tuple[int, int], compression: int = 1) -> bytes:
    """Blocking PNG encode; low compression because the encode time matters more than bytes."""
    ok, buf = cv2.imencode(
        ".png", _resized(image, size), [cv2.IMWRITE_PNG_COMPRESSION, compression]
    )
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def encode_jpeg_i420(picture: Yuv420, quality: int) -> bytes:
    """Blocking JPEG encode of an I420 picture by libjpeg-turbo (simplejpeg): no BGR on the way.

    Why simplejpeg: OpenCV's encoder takes BGR only, and libavcodec's MJPEG encoder was 1.7-1.9x
    slower than libjpeg-turbo on a desktop picture (720p: 3.7-4.2 ms against 2.2 ms).
    The levels go in as they are: see capture/yuv.py on limited-range sources.
    """
    import simplejpeg

    y, u, v = picture.planes
    data: bytes = simplejpeg.encode_jpeg_yuv_planes(y, u, v, quality=quality, fastdct=True)
    return data


def encode_frame(frame: Frame, quality: int, size: tuple[int, int]) -> bytes:
    """Blocking: *frame* as JPEG at *size* the cheapest way its format allows; counted."""
    native = size == (frame.width, frame.height)
    if native and frame.format != "bgr":
        picture = frame.i420()
        if (picture.width, picture.height) == size:
            with frame.work.timed("jpeg", "encodes"):
                return encode_jpeg_i420(picture, quality)
    image = frame.image
    with frame.work.timed("jpeg", "encodes"):
        return encode_jpeg(image, quality, size)


def encode_frame_png(frame: Frame, size: tuple[int, int]) -> bytes:
    image = frame.image
    with frame.work.timed("png", "encodes"):
        return encode_png_bytes(image, size)


class JpegEncoder:
    """Encode frames in a thread pool with a small cache keyed by content, size and quality."""

    def __init__(
        self, quality: int = 80, *, executor: Executor | None = None, cache_size: int = 8
    ) -> None:
        _check_quality(quality)
        self.quality = quality
        self.executor = executor
        self.cache_size = cache_size
        self.encodes = 0  # encodes actually run (cache misses), for tests and statistics
        self._cache: OrderedDict[CacheKey, asyncio.Future[bytes]] = OrderedDict()

    async def encode(
        self,
        frame: Frame,
        *,
        quality: int | None = None,
        scale: float | None = None,
        max_width: int | None = None,
        max_height: int | None = None,
    ) -> bytes:
        """JPEG bytes of *frame* (optionally scaled); cached per content_seq.

        A device JPEG is returned as it is unless a size or a *quality* is asked for.
        """
        size = target_size(
            frame.width, frame.height, scale=scale, max_width=max_width, max_height=max_height
        )
        device_jpeg = frame.jpeg
        if device_jpeg is not None and quality is None and size == (frame.width, frame.height):
            frame.work.passed_through()
            return device_jpeg
        q = self.quality if quality is None else quality
        _check_quality(q)
        key: CacheKey = ("jpeg", frame.content_seq, frame.width, frame.height, q, *size)
        return await self._cached(key, partial(encode_frame, frame, q, size))

    async def encode_png(
        self,
        frame: Frame,
        *,
        scale: float | None = None,
        max_width: int | None = None,
        max_height: int | None = None,
    ) -> bytes:
        """Lossless PNG bytes of *frame* (for snapshots and screen matching)."""
        size = target_size(
            frame.width, frame.height, scale=scale, max_width=max_width, max_height=max_height
        )
        key: CacheKey = ("png", frame.content_seq, frame.width, frame.height, 0, *size)
        return await self._cached(key, partial(encode_frame_png, frame, size))

    async def _cached(self, key: CacheKey, job: Callable[[], bytes]) -> bytes:
        future = self._cache.get(key)
        if future is not None and future.cancelled():  # e.g. executor shut down: try again
            del self._cache[key]
            future = None
        if future is not None:
            self._cache.move_to_end(key)
        else:
            loop = asyncio.get_running_loop()
            future = loop.run_in_executor(self.executor, job)
            self.encodes += 1
            self._cache[key] = future
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        try:
            # shield: one viewer going away must not cancel the encode others are waiting for.
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            raise
        except Exception:
            if self._cache.get(key) is future:
                del self._cache[key]
            raise


def _check_quality(quality: int) -> None:
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be 1..100, not {quality}")
