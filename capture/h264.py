"""H.264 encoding, once per stream, shared by every viewer (WebRTC peers, WebSocket viewers).

Why one encoder: x264 at 1080p costs a large share of a core per stream; encoding per viewer (what
aiortc does by default) would make ten viewers cost ten encodes. Here a single :class:`H264Encoder`
takes the freshest frame from the :class:`~capture.hub.FrameHub`, encodes it, and hands the same
access unit to every subscriber. A keyframe request from any viewer makes the next frame an IDR for
everybody (cheap compared to a per-viewer encode).

Latest frame wins: the encoder never queues frames; it asks the hub for "something newer than
what I encoded last" and skips whatever arrived meanwhile. Each subscriber has a small bounded
queue of encoded frames; when a slow viewer's queue overflows it is emptied and that viewer waits
for the next keyframe (requested once it reads again), so a stalled viewer never delays the
encoder or the other viewers.

A static screen costs almost nothing: a frame whose pixels did not change (same ``content_seq``)
is not encoded, except a few refinement frames right after a change (x264 sharpens a picture over
successive P-frames) and a keep-alive frame about once a second so decoders and RTP stacks see
the stream is alive.

The encoder task runs only while somebody is subscribed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Final

import av
from av.video.frame import PictureType

from capture.frame import Frame
from capture.hub import FrameHub
from capture.pacing import FramePacer

log = logging.getLogger(__name__)

CLOCK_RATE: Final = 90_000
"""RTP's video clock: pts are in 1/90000 s."""
TIME_BASE: Final = Fraction(1, CLOCK_RATE)
CODECS: Final = ("auto", "libx264", "h264_v4l2m2m")


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    """One H.264 access unit in Annex-B form (start codes; SPS/PPS in front of every IDR).

    ``pts`` is in 90 kHz units; ``seq`` is the hub's frame seq; ``capture_ts`` is the frame's
    ``time.monotonic()`` capture time and ``capture_wall`` the same instant on the wall clock
    (``time.time()``), which a browser on the same machine can compare with ``Date.now()``.
    """

    data: bytes
    keyframe: bool
    pts: int
    seq: int
    capture_ts: float
    capture_wall: float = 0.0
    width: int = 0
    height: int = 0


@dataclass(frozen=True, slots=True)
class EncoderSettings:
    """What the encoder produces. ``bitrate``/``maxrate``/``bufsize`` in kbit/s and kbit.

    ``bufsize`` 0 means one second's worth of ``maxrate``: big enough that an IDR of a text screen
    is readable at once, small enough that the stream stays near the bitrate.
    """

    bitrate: int = 5000
    maxrate: int = 0  # 0: = bitrate (CBR-ish)
    bufsize: int = 0
    gop: int = 0  # frames between periodic IDRs; 0: none (IDRs only on request)
    max_fps: float = 30.0
    keepalive: float = 1.0  # seconds between frames of an unchanged picture
    refine_frames: int = 2  # extra encodes of a picture that stopped changing
    codec: str = "libx264"  # "auto" tries h264_v4l2m2m first
    threads: int = 0  # x264 threads (0: x264 decides)
    min_keyframe_interval: float = 0.2  # coalesce keyframe-request storms (PLI from many peers)

    def __post_init__(self) -> None:
        if self.codec not in CODECS:
            raise ValueError(f"codec {self.codec!r} is not one of {CODECS}")
        if self.bitrate <= 0 or self.max_fps <= 0 or self.keepalive <= 0:
            raise ValueError("bitrate, max_fps and keepalive must be positive")


@dataclass
class EncoderStats:
    """Counters a test or a benchmark can read (encode calls are what viewers must not multiply)."""

    frames_encoded: int = 0
    keyframes: int = 0
    keepalives: int = 0
    bytes_out: int = 0
    encode_seconds: float = 0.0
    starts: int = 0
    codec_opens: int = 0


class Subscription:
    """One consumer's view of the stream: a bounded queue of :class:`EncodedFrame`.

    The first frame a subscriber gets is a keyframe. On overflow the queue is emptied and the
    subscriber skips frames until the next keyframe, which it requests when it reads again (a
    viewer that stopped reading must not force keyframes on everybody else).
    """

    def __init__(self, encoder: H264Encoder, maxsize: int) -> None:
        self._encoder = encoder
        self._queue: deque[EncodedFrame] = deque()
        self._maxsize = max(1, maxsize)
        self._ready = asyncio.Event()
        self.need_keyframe = True
        self._asked = True  # subscribe() already requested one
        self.closed = False
        self.dropped = 0
        self.delivered = 0

    def _put(self, frame: EncodedFrame) -> None:
        if self.closed:
            return
        if self.need_keyframe:
            if not frame.keyframe:
                self.dropped += 1
                return
            self.need_keyframe = False
        if len(self._queue) >= self._maxsize:
            self.dropped += len(self._queue) + 1
            self._queue.clear()
            self.need_keyframe = True
            self._asked = False
            self._ready.clear()
            return
        self._queue.append(frame)
        self._ready.set()

    async def get(self) -> EncodedFrame:
        """The next frame for this viewer. Raises :class:`EOFError` once closed."""
        while True:
            if self._queue:
                frame = self._queue.popleft()
                if not self._queue:
                    self._ready.clear()
                self.delivered += 1
                return frame
            if self.closed:
                raise EOFError("subscription closed")
            if self.need_keyframe and not self._asked:
                self._asked = True
                self._encoder.request_keyframe()
            await self._ready.wait()

    def __len__(self) -> int:
        return len(self._queue)

    def close(self) -> None:
        """Stop receiving; wakes a pending :meth:`get` (which raises EOFError)."""
        if self.closed:
            return
        self.closed = True
        self._queue.clear()
        self._ready.set()
        self._encoder._unsubscribe(self)


def _x264_params(settings: EncoderSettings) -> str:
    maxrate = settings.maxrate or settings.bitrate
    bufsize = settings.bufsize or maxrate
    params = {
        "repeat-headers": "1",  # SPS/PPS in-band before every IDR: a viewer can join at any IDR
        "annexb": "1",
        "forced-idr": "1",  # a requested I-frame is an IDR, not just an I-frame
        "vbv-maxrate": str(maxrate),
        "vbv-bufsize": str(bufsize),
        "rc-lookahead": "0",
        "sync-lookahead": "0",
        "bframes": "0",
        "scenecut": "0",  # IDRs only when asked (or by gop): keeps the bitrate even
    }
    return ":".join(f"{k}={v}" for k, v in params.items())


class H264Encoder:
    """The shared encoder of one stream. Use from one event loop; encoding runs in its thread."""

    def __init__(self, hub: FrameHub, settings: EncoderSettings | None = None) -> None:
        self.hub = hub
        self.settings = settings or EncoderSettings()
        self.stats = EncoderStats()
        self._subs: list[Subscription] = []
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.idle = asyncio.Event()
        """Set while nobody is subscribed (the encoder task is not running)."""
        self.idle.set()
        self._key_requested = False
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._ctx: Any = None  # av.VideoCodecContext
        self._ctx_key: tuple[int, int, str] | None = None
        self._codec_name = ""
        self.fallback_reason = ""
        """Why the encoder in use is not the one asked for ("" when it is)."""
        self._last_idr = -1e9
        self._last_pts = -1
        self._t0: float | None = None

    # ------------------------------------------------------------------ public API
    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    @property
    def codec_name(self) -> str:
        """The codec actually in use ("libx264" or "h264_v4l2m2m"); "" before the first frame."""
        return self._codec_name

    def subscribe(self, maxsize: int = 8) -> Subscription:
        """A new consumer; starts the encoder if it was idle and asks for a keyframe."""
        sub = Subscription(self, maxsize)
        self._subs.append(sub)
        self.request_keyframe()
        if not self.running:
            self.idle.clear()
            self.stats.starts += 1
            self._task = asyncio.create_task(self._run(), name="h264-encoder")
        return sub

    def request_keyframe(self) -> None:
        """Make the next encoded frame an IDR (any viewer's PLI/FIR, every new viewer)."""
        self._key_requested = True
        self._wake.set()

    async def close(self) -> None:
        """Close every subscription and stop the encoder (app shutdown)."""
        for sub in list(self._subs):
            sub.close()
        await self._stop_task()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        self._ctx = None
        self._ctx_key = None

    # ------------------------------------------------------------------ internals
    def _unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)
        if not self._subs and self._task is not None:
            self._task.cancel()
            self._task = None
            self.idle.set()

    async def _stop_task(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _wait_for_work(self, after_seq: int, timeout: float) -> None:
        """Return when a changed frame, a keyframe request or the timeout comes first."""
        if self._key_requested or timeout <= 0:
            return
        self._wake.clear()
        next_frame = asyncio.ensure_future(self.hub.next_frame(after_seq, changed_only=True))
        wake = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({next_frame, wake}, timeout=timeout, return_when="FIRST_COMPLETED")
        finally:
            for fut in (next_frame, wake):
                if not fut.done():
                    fut.cancel()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(1, "h264")
        s = self.settings
        interval = 1.0 / s.max_fps
        last: Frame | None = None
        last_encode = -1e9
        pacer = FramePacer(s.max_fps)
        refine_left = 0
        try:
            while self._subs:
                now = time.monotonic()
                if refine_left > 0:
                    # Refine only a picture that has held still for a while: a source a little
                    # slower than max_fps must not find the encoder busy re-encoding the
                    # previous picture just as its next frame arrives.
                    timeout = last_encode + max(3 * interval, 0.1) - now
                else:
                    timeout = last_encode + s.keepalive - now
                await self._wait_for_work(last.seq if last else 0, timeout)
                frame = self.hub.latest
                if frame is None:
                    frame = await self.hub.next_frame(0)
                changed = last is None or frame.content_seq != last.content_seq
                now = time.monotonic()
                keyframe = self._key_requested
                if keyframe and now - self._last_idr < s.min_keyframe_interval and last:
                    # A storm of requests: one IDR per interval serves them all.
                    await asyncio.sleep(s.min_keyframe_interval - (now - self._last_idr))
                    frame = self.hub.latest or frame
                    changed = frame.content_seq != last.content_seq
                # Cap the average rate at max_fps without delaying a source that runs at it.
                rest = pacer.delay()
                if rest > 0:
                    await asyncio.sleep(rest)
                    frame = self.hub.latest or frame
                    changed = last is None or frame.content_seq != last.content_seq
                keyframe = self._key_requested
                self._key_requested = False
                is_keepalive = not changed and not keyframe and refine_left <= 0
                if changed:
                    refine_left = s.refine_frames
                elif not keyframe and refine_left > 0:
                    refine_left -= 1
                last_encode = time.monotonic()
                pacer.take(last_encode)
                try:
                    out = await loop.run_in_executor(
                        self._executor, self._encode, frame, keyframe, last_encode
                    )
                except Exception:
                    log.exception("H.264 encode failed; reopening the encoder")
                    self._ctx = None
                    self._ctx_key = None
                    self._key_requested = True
                    await asyncio.sleep(0.5)
                    continue
                last = frame
                if is_keepalive:
                    self.stats.keepalives += 1
                for encoded in out:
                    self._fanout(encoded)
        except asyncio.CancelledError:
            pass

    def _fanout(self, encoded: EncodedFrame) -> None:
        if encoded.keyframe:
            self._last_idr = time.monotonic()
        for sub in list(self._subs):
            sub._put(encoded)

    # ------------------------------------------------------------------ encoder thread
    def state(self) -> dict[str, object]:
        """For ``/api/state``: which codec was asked for, which one runs, and why if they differ."""
        return {
            "requested": self.settings.codec,
            "codec": self._codec_name,
            "hardware": self._codec_name == "h264_v4l2m2m",
            "fallback_reason": self.fallback_reason,
            "subscribers": len(self._subs),
        }

    def _open(self, width: int, height: int, pix_fmt: str = "yuv420p") -> None:
        s = self.settings
        names = ["h264_v4l2m2m", "libx264"] if s.codec == "auto" else [s.codec]
        if s.codec == "h264_v4l2m2m":
            names.append("libx264")  # a missing or failing M2M device must not kill the stream
        error: Exception | None = None
        for name in names:
            try:
                ctx: Any = av.CodecContext.create(name, "w")
                ctx.width = width
                ctx.height = height
                # Full-range JPEG YUV goes in as it is (yuvj420p marks the range in the VUI);
                # the M2M encoder takes yuv420p only.
                ctx.pix_fmt = pix_fmt if name == "libx264" else "yuv420p"
                ctx.time_base = TIME_BASE
                ctx.framerate = Fraction(round(s.max_fps * 1000), 1000)
                ctx.bit_rate = s.bitrate * 1000
                ctx.gop_size = s.gop if s.gop > 0 else 100_000
                ctx.max_b_frames = 0
                if name == "libx264":
                    ctx.thread_count = s.threads
                    ctx.options = {
                        "preset": "ultrafast",
                        "tune": "zerolatency",
                        "profile": "baseline",
                        "x264-params": _x264_params(s),
                    }
                ctx.open()
            except Exception as exc:  # av.FFmpegError, OSError for a missing device
                log.warning("cannot open H.264 encoder %s: %s", name, exc)
                error = exc
                if name == "h264_v4l2m2m":
                    self.fallback_reason = f"h264_v4l2m2m: {exc}"
                continue
            if name == names[0]:
                self.fallback_reason = ""
            self._ctx = ctx
            self._ctx_key = (width, height, pix_fmt)
            self._codec_name = name
            self.stats.codec_opens += 1
            log.info("H.264 encoder %s opened at %dx%d", name, width, height)
            return
        raise RuntimeError(f"no H.264 encoder could be opened: {error}")

    def _encode(self, frame: Frame, keyframe: bool, now: float) -> list[EncodedFrame]:
        """Convert and encode one frame (runs in the encoder thread)."""
        started = time.perf_counter()
        # The frame's one I420 picture (shared with the JPEG encoder; counted there).
        picture = frame.i420()
        cpu = time.thread_time()
        width, height = picture.width, picture.height
        pix_fmt = "yuvj420p" if picture.full_range else "yuv420p"
        if self._ctx is None or self._ctx_key != (width, height, pix_fmt):
            self._open(width, height, pix_fmt)
            self._t0 = None
            keyframe = True
        if self._codec_name != "libx264":
            pix_fmt = "yuv420p"  # the same bytes; the M2M encoder is told nothing of the range
        if height % 4 == 0:
            # Wrap, do not copy (0.7-2.7 ms at 1080p): the encoder copies the picture into its
            # own buffers during encode(), and the frame keeps the array alive meanwhile. (PyAV
            # derives the height as rows // 6 * 4, so this works only for heights divisible by 4.)
            vf = av.VideoFrame.from_numpy_buffer(picture.data, format=pix_fmt)
        else:
            vf = av.VideoFrame.from_ndarray(picture.data, format=pix_fmt)
            frame.work.add("h264", "copies")
        if self._t0 is None:
            self._t0 = now
        pts = round((now - self._t0) * CLOCK_RATE)
        if pts <= self._last_pts:
            pts = self._last_pts + 1
        self._last_pts = pts
        vf.pts = pts
        vf.time_base = TIME_BASE
        if keyframe:
            vf.pict_type = PictureType.I
        packets = self._ctx.encode(vf)
        wall = time.time() - (time.monotonic() - frame.timestamp)
        out = []
        for packet in packets:
            data = bytes(packet)
            key = bool(packet.is_keyframe)
            if key and self._ctx.extradata and sps_info(data) is None:
                # Encoders with global headers (V4L2 M2M) put SPS/PPS in extradata only.
                data = bytes(self._ctx.extradata) + data
            out.append(
                EncodedFrame(
                    data=data,
                    keyframe=key,
                    pts=int(packet.pts if packet.pts is not None else pts),
                    seq=frame.seq,
                    capture_ts=frame.timestamp,
                    capture_wall=wall,
                    width=width,
                    height=height,
                )
            )
            self.stats.bytes_out += len(data)
            self.stats.keyframes += key
        self.stats.frames_encoded += 1
        self.stats.encode_seconds += time.perf_counter() - started
        frame.work.add("h264", "encodes", time.thread_time() - cpu)
        return out


@dataclass
class SpsInfo:
    """The fields a WebCodecs codec string needs (``avc1.PPCCLL``)."""

    profile_idc: int
    constraints: int
    level_idc: int
    extra: dict[str, int] = field(default_factory=dict)

    @property
    def codec_string(self) -> str:
        return f"avc1.{self.profile_idc:02X}{self.constraints:02X}{self.level_idc:02X}"


def iter_nals(data: bytes) -> list[bytes]:
    """Split an Annex-B byte stream into NAL units (without start codes)."""
    out: list[bytes] = []
    i, n = 0, len(data)
    starts: list[int] = []
    while i < n - 2:
        j = data.find(b"\x00\x00\x01", i)
        if j < 0:
            break
        starts.append(j + 3)
        i = j + 3
    for k, start in enumerate(starts):
        end = starts[k + 1] - 3 if k + 1 < len(starts) else n
        nal = data[start:end]
        while k + 1 < len(starts) and nal.endswith(b"\x00"):
            nal = nal[:-1]  # the leading zero of a 4-byte start code
        out.append(nal)
    return out


def sps_info(data: bytes) -> SpsInfo | None:
    """Profile/constraints/level from the first SPS in an access unit, if it has one."""
    for nal in iter_nals(data):
        if nal and nal[0] & 0x1F == 7 and len(nal) >= 4:
            return SpsInfo(nal[1], nal[2], nal[3])
    return None
