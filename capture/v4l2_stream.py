"""Streaming capture straight from a V4L2 device: mmap buffers, non-blocking, the device's format.

Why not OpenCV's ``VideoCapture``: it decodes a dongle's MJPEG to BGR (≈9.5 ms per 1080p frame on
the development machine, a large share of a Pi's core at 30 fps) and converts raw YUV to BGR
before anybody asked for pixels. Here a frame leaves the driver's buffer as the device made it —
JPEG bytes, YUYV/UYVY/NV12 rows — with one copy out of the mmap buffer (so the buffer goes back
to the driver at once; ≈0.3 ms for 1080p YUYV), and everything else is done on demand
(capture/frame.py).

Latest frame wins here too: when several buffers are ready, only the newest is copied; the older
ones go straight back to the driver.

Layouts are those of the kernel UAPI header ``linux/videodev2.h``, written with ctypes so the
platform's own alignment applies (``struct v4l2_buffer`` holds a ``struct timeval`` and a
pointer-sized union: 88 bytes on 64-bit Linux, checked against the header in the tests).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import mmap
import os
import select
import time
from dataclasses import dataclass
from typing import Final

import numpy as np

from capture.frame import Captured
from capture.v4l2_ioctl import ior, iow, iowr
from capture.work import WorkCounters
from capture.yuv import PixelFormat, parse_fourcc

V4L2_BUF_TYPE_VIDEO_CAPTURE: Final = 1
V4L2_MEMORY_MMAP: Final = 1
V4L2_FIELD_ANY: Final = 0
V4L2_CAP_VIDEO_CAPTURE: Final = 0x00000001
V4L2_CAP_STREAMING: Final = 0x04000000
V4L2_CAP_DEVICE_CAPS: Final = 0x80000000


class Capability(ctypes.Structure):
    _fields_ = (
        ("driver", ctypes.c_char * 16),
        ("card", ctypes.c_char * 32),
        ("bus_info", ctypes.c_char * 32),
        ("version", ctypes.c_uint32),
        ("capabilities", ctypes.c_uint32),
        ("device_caps", ctypes.c_uint32),
        ("reserved", ctypes.c_uint32 * 3),
    )


class PixFormat(ctypes.Structure):
    _fields_ = (
        ("width", ctypes.c_uint32),
        ("height", ctypes.c_uint32),
        ("pixelformat", ctypes.c_uint32),
        ("field", ctypes.c_uint32),
        ("bytesperline", ctypes.c_uint32),
        ("sizeimage", ctypes.c_uint32),
        ("colorspace", ctypes.c_uint32),
        ("priv", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("ycbcr_enc", ctypes.c_uint32),
        ("quantization", ctypes.c_uint32),
        ("xfer_func", ctypes.c_uint32),
    )


class _FormatUnion(ctypes.Union):
    # raw_data is the union's size; the pointer gives it the alignment of struct v4l2_window's
    # pointers, which is what places the union at offset 8 on 64-bit Linux.
    _fields_ = (("pix", PixFormat), ("raw_data", ctypes.c_uint8 * 200), ("_align", ctypes.c_void_p))


class Format(ctypes.Structure):
    _fields_ = (("type", ctypes.c_uint32), ("fmt", _FormatUnion))


class RequestBuffers(ctypes.Structure):
    _fields_ = (
        ("count", ctypes.c_uint32),
        ("type", ctypes.c_uint32),
        ("memory", ctypes.c_uint32),
        ("capabilities", ctypes.c_uint32),
        ("flags", ctypes.c_uint8),
        ("reserved", ctypes.c_uint8 * 3),
    )


class _Timeval(ctypes.Structure):
    _fields_ = (("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long))


class _Timecode(ctypes.Structure):
    _fields_ = (
        ("type", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("frames", ctypes.c_uint8),
        ("seconds", ctypes.c_uint8),
        ("minutes", ctypes.c_uint8),
        ("hours", ctypes.c_uint8),
        ("userbits", ctypes.c_uint8 * 4),
    )


class _BufferM(ctypes.Union):
    _fields_ = (
        ("offset", ctypes.c_uint32),
        ("userptr", ctypes.c_ulong),
        ("planes", ctypes.c_void_p),
        ("fd", ctypes.c_int32),
    )


class Buffer(ctypes.Structure):
    _fields_ = (
        ("index", ctypes.c_uint32),
        ("type", ctypes.c_uint32),
        ("bytesused", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("field", ctypes.c_uint32),
        ("timestamp", _Timeval),
        ("timecode", _Timecode),
        ("sequence", ctypes.c_uint32),
        ("memory", ctypes.c_uint32),
        ("m", _BufferM),
        ("length", ctypes.c_uint32),
        ("reserved2", ctypes.c_uint32),
        ("request_fd", ctypes.c_int32),
    )


class _Fract(ctypes.Structure):
    _fields_ = (("numerator", ctypes.c_uint32), ("denominator", ctypes.c_uint32))


class _CaptureParm(ctypes.Structure):
    _fields_ = (
        ("capability", ctypes.c_uint32),
        ("capturemode", ctypes.c_uint32),
        ("timeperframe", _Fract),
        ("extendedmode", ctypes.c_uint32),
        ("readbuffers", ctypes.c_uint32),
        ("reserved", ctypes.c_uint32 * 4),
    )


class _ParmUnion(ctypes.Union):
    _fields_ = (("capture", _CaptureParm), ("raw_data", ctypes.c_uint8 * 200))


class StreamParm(ctypes.Structure):
    _fields_ = (("type", ctypes.c_uint32), ("parm", _ParmUnion))


VIDIOC_QUERYCAP: Final = ior("V", 0, ctypes.sizeof(Capability))
VIDIOC_G_FMT: Final = iowr("V", 4, ctypes.sizeof(Format))
VIDIOC_S_FMT: Final = iowr("V", 5, ctypes.sizeof(Format))
VIDIOC_REQBUFS: Final = iowr("V", 8, ctypes.sizeof(RequestBuffers))
VIDIOC_QUERYBUF: Final = iowr("V", 9, ctypes.sizeof(Buffer))
VIDIOC_QBUF: Final = iowr("V", 15, ctypes.sizeof(Buffer))
VIDIOC_DQBUF: Final = iowr("V", 17, ctypes.sizeof(Buffer))
VIDIOC_STREAMON: Final = iow("V", 18, ctypes.sizeof(ctypes.c_int))
VIDIOC_STREAMOFF: Final = iow("V", 19, ctypes.sizeof(ctypes.c_int))
VIDIOC_S_PARM: Final = iowr("V", 22, ctypes.sizeof(StreamParm))


def fourcc_code(fourcc: str) -> int:
    if len(fourcc) != 4:
        raise ValueError(f"a FourCC has four characters, not {fourcc!r}")
    a, b, c, d = (ord(ch) for ch in fourcc)
    return a | b << 8 | c << 16 | d << 24


def fourcc_name(code: int) -> str:
    return "".join(chr((code >> shift) & 0xFF) for shift in (0, 8, 16, 24))


def _ioctl(fd: int, request: int, arg: ctypes.Structure | ctypes.c_int) -> None:
    fcntl.ioctl(fd, request, arg)


def captured_from_buffer(
    fmt: PixelFormat,
    width: int,
    height: int,
    bytesperline: int,
    buffer: memoryview | bytes,
    used: int,
    work: WorkCounters | None = None,
) -> Captured | None:
    """Copy one filled device buffer into a frame in its own format (the capture's one copy).

    None for a buffer that holds no picture (a JPEG that does not start with SOI, a raw buffer
    shorter than the picture), which some dongles deliver now and then.
    """
    started = time.thread_time()
    captured: Captured | None
    if fmt == "mjpeg":
        data = bytes(buffer[:used])
        captured = Captured(fmt, width, height, data) if data[:2] == b"\xff\xd8" else None
    else:
        rows = height * 3 // 2 if fmt == "nv12" else height
        need = rows * bytesperline
        if used < need or len(buffer) < need:
            return None
        array = np.frombuffer(buffer, np.uint8, count=need).reshape(rows, bytesperline).copy()
        captured = Captured(fmt, width, height, array)
    if work is not None and captured is not None:
        work.add("capture", "copies", time.thread_time() - started)
    return captured


@dataclass(frozen=True)
class StreamFormat:
    """What the driver agreed to (it may round the size or refuse the pixel format)."""

    format: PixelFormat
    fourcc: str
    width: int
    height: int
    bytesperline: int
    sizeimage: int


class V4l2Stream:
    """One open, streaming capture device. Blocking only in :meth:`read`, bounded by its timeout."""

    def __init__(
        self, device: str, fourcc: str, width: int, height: int, fps: int, buffers: int = 4
    ) -> None:
        self.device = device
        self.requested = (parse_fourcc(fourcc), fourcc, width, height, fps)
        self.buffers = buffers
        self.fd: int | None = None
        self.format: StreamFormat | None = None
        self._maps: list[mmap.mmap] = []
        self._streaming = False
        self.dropped = 0
        """Buffers the driver filled that held no picture (flagged corrupt, a torn JPEG)."""

    def open(self) -> StreamFormat:
        """Open, set the format and frame rate, map the buffers and start streaming.

        Raises OSError (no such device, busy, not a capture device) or ValueError (the driver
        offers none of the pixel formats the pipeline takes).
        """
        _, fourcc, width, height, fps = self.requested
        fd = self.fd = os.open(self.device, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            cap = Capability()
            _ioctl(fd, VIDIOC_QUERYCAP, cap)
            caps = cap.device_caps if cap.capabilities & V4L2_CAP_DEVICE_CAPS else cap.capabilities
            if not caps & V4L2_CAP_VIDEO_CAPTURE or not caps & V4L2_CAP_STREAMING:
                raise OSError(errno.ENODEV, f"{self.device} is not a streaming capture device")
            fmt = Format(type=V4L2_BUF_TYPE_VIDEO_CAPTURE)
            fmt.fmt.pix.width, fmt.fmt.pix.height = width, height
            fmt.fmt.pix.pixelformat = fourcc_code(fourcc)
            fmt.fmt.pix.field = V4L2_FIELD_ANY
            _ioctl(fd, VIDIOC_S_FMT, fmt)
            pix = fmt.fmt.pix
            got = fourcc_name(pix.pixelformat)
            self.format = StreamFormat(
                format=parse_fourcc(got),  # ValueError if the driver chose another format
                fourcc=got,
                width=pix.width,
                height=pix.height,
                bytesperline=pix.bytesperline or pix.width * (2 if got in ("YUYV", "UYVY") else 1),
                sizeimage=pix.sizeimage,
            )
            parm = StreamParm(type=V4L2_BUF_TYPE_VIDEO_CAPTURE)
            parm.parm.capture.timeperframe.numerator = 1
            parm.parm.capture.timeperframe.denominator = fps
            with contextlib.suppress(OSError):  # HDMI bridges take their rate from the source
                _ioctl(fd, VIDIOC_S_PARM, parm)
            req = RequestBuffers(
                count=self.buffers, type=V4L2_BUF_TYPE_VIDEO_CAPTURE, memory=V4L2_MEMORY_MMAP
            )
            _ioctl(fd, VIDIOC_REQBUFS, req)
            if req.count < 2:
                raise OSError(errno.ENOMEM, f"{self.device}: only {req.count} capture buffers")
            for index in range(req.count):
                buf = Buffer(index=index, type=V4L2_BUF_TYPE_VIDEO_CAPTURE, memory=V4L2_MEMORY_MMAP)
                _ioctl(fd, VIDIOC_QUERYBUF, buf)
                self._maps.append(
                    mmap.mmap(fd, buf.length, mmap.MAP_SHARED, mmap.PROT_READ, offset=buf.m.offset)
                )
                _ioctl(fd, VIDIOC_QBUF, buf)
            _ioctl(fd, VIDIOC_STREAMON, ctypes.c_int(V4L2_BUF_TYPE_VIDEO_CAPTURE))
            self._streaming = True
        except BaseException:
            self.close()
            raise
        return self.format

    def _dequeue(self) -> Buffer | None:
        assert self.fd is not None
        buf = Buffer(type=V4L2_BUF_TYPE_VIDEO_CAPTURE, memory=V4L2_MEMORY_MMAP)
        try:
            _ioctl(self.fd, VIDIOC_DQBUF, buf)
        except OSError as exc:
            if exc.errno == errno.EAGAIN:
                return None
            raise
        return buf

    def read(self, timeout: float, work: WorkCounters | None = None) -> Captured | None:
        """The newest frame, waiting at most *timeout* s; None if none came, or if it held no
        picture (then ``dropped`` counts it).

        Raises OSError when the device fails (ENODEV: unplugged).
        """
        fd, fmt = self.fd, self.format
        if fd is None or fmt is None:
            raise OSError(errno.EBADF, "capture stream is closed")
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLERR)
        if not poller.poll(max(0, int(timeout * 1000))):
            return None
        newest = self._dequeue()
        while newest is not None:  # older ready buffers go back uncopied
            newer = self._dequeue()
            if newer is None:
                break
            _ioctl(fd, VIDIOC_QBUF, newest)
            newest = newer
        if newest is None:
            return None
        try:
            if newest.flags & 0x40:  # V4L2_BUF_FLAG_ERROR: the driver says it is corrupt
                self.dropped += 1
                return None
            view = memoryview(self._maps[newest.index])
            try:
                captured = captured_from_buffer(
                    fmt.format,
                    fmt.width,
                    fmt.height,
                    fmt.bytesperline,
                    view,
                    newest.bytesused,
                    work,
                )
            finally:
                view.release()
            if captured is None:
                self.dropped += 1
            return captured
        finally:
            _ioctl(fd, VIDIOC_QBUF, newest)

    def close(self) -> None:
        fd, self.fd = self.fd, None
        if fd is None:
            return
        if self._streaming:
            with contextlib.suppress(OSError):
                _ioctl(fd, VIDIOC_STREAMOFF, ctypes.c_int(V4L2_BUF_TYPE_VIDEO_CAPTURE))
            self._streaming = False
        for m in self._maps:
            with contextlib.suppress(BufferError):
                m.close()
        self._maps.clear()
        with contextlib.suppress(OSError):
            os.close(fd)
