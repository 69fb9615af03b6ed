"""The few V4L2 ioctls OpenCV does not give us: DV timings (is an HDMI signal there, which mode)
and source-change events.

OpenCV's capture only says whether a frame arrived; an HDMI bridge knows better. Its driver answers
``VIDIOC_QUERY_DV_TIMINGS`` with the timings it detects or with ENOLINK (no signal), ENOLCK (signal
but no lock) or ERANGE (out of range), and queues ``V4L2_EVENT_SOURCE_CHANGE`` when the source
changes. Devices without DV timings (UVC dongles, cameras) answer ENOTTY or ENODATA.

Layouts follow the kernel UAPI header ``linux/videodev2.h`` (x86_64 and the arm64/armhf boards
agree: the structs are packed or naturally aligned with 64-bit members, see ``EVENT_SIZE``). The
ioctl numbers are computed the way ``asm-generic/ioctl.h`` does (_IOR/_IOW/_IOWR).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import struct
from dataclasses import dataclass
from typing import Final, Literal

# asm-generic/ioctl.h: nr 8 bits, type 8 bits, size 14 bits, direction 2 bits.
_IOC_NRBITS: Final = 8
_IOC_TYPEBITS: Final = 8
_IOC_SIZEBITS: Final = 14
_IOC_NRSHIFT: Final = 0
_IOC_TYPESHIFT: Final = _IOC_NRSHIFT + _IOC_NRBITS
_IOC_SIZESHIFT: Final = _IOC_TYPESHIFT + _IOC_TYPEBITS
_IOC_DIRSHIFT: Final = _IOC_SIZESHIFT + _IOC_SIZEBITS
IOC_WRITE: Final = 1
IOC_READ: Final = 2


def ioc(direction: int, kind: str, nr: int, size: int) -> int:
    """The ioctl request number, like the kernel's ``_IOC`` macro."""
    if not 0 <= size < 1 << _IOC_SIZEBITS:
        raise ValueError(f"ioctl argument size {size} does not fit")
    return (
        (direction << _IOC_DIRSHIFT)
        | (ord(kind) << _IOC_TYPESHIFT)
        | (nr << _IOC_NRSHIFT)
        | (size << _IOC_SIZESHIFT)
    )


def ior(kind: str, nr: int, size: int) -> int:
    return ioc(IOC_READ, kind, nr, size)


def iow(kind: str, nr: int, size: int) -> int:
    return ioc(IOC_WRITE, kind, nr, size)


def iowr(kind: str, nr: int, size: int) -> int:
    return ioc(IOC_READ | IOC_WRITE, kind, nr, size)


# struct v4l2_bt_timings (packed, 124 bytes): width, height, interlaced, polarities (u32),
# pixelclock (u64), 9 porch/sync u32, standards, flags, picture_aspect (2 x u32),
# cea861_vic, hdmi_vic (u8), reserved[46].
_BT = struct.Struct("<4IQ9I2I2I2B46x")
# struct v4l2_dv_timings (packed): u32 type + union { bt; u32 reserved[32] } = 132 bytes.
DV_TIMINGS_SIZE: Final = 4 + 32 * 4
V4L2_DV_BT_656_1120: Final = 0
# struct v4l2_event_subscription: type, id, flags, reserved[5] (all u32) = 32 bytes.
_SUBSCRIPTION = struct.Struct("<3I5I")
# struct v4l2_event: u32 type; (4 bytes padding: the union holds an s64) union u[64];
# u32 pending, sequence; struct timespec (2 x s64); u32 id; u32 reserved[8]; padding to 8.
_EVENT = struct.Struct("<I4x64sIIqqI8I4x")
EVENT_SIZE: Final = _EVENT.size  # 136 on 64-bit Linux

VIDIOC_S_DV_TIMINGS: Final = iowr("V", 87, DV_TIMINGS_SIZE)
VIDIOC_G_DV_TIMINGS: Final = iowr("V", 88, DV_TIMINGS_SIZE)
VIDIOC_DQEVENT: Final = ior("V", 89, EVENT_SIZE)
VIDIOC_SUBSCRIBE_EVENT: Final = iow("V", 90, _SUBSCRIPTION.size)
VIDIOC_QUERY_DV_TIMINGS: Final = ior("V", 99, DV_TIMINGS_SIZE)

V4L2_EVENT_SOURCE_CHANGE: Final = 5
V4L2_EVENT_SRC_CH_RESOLUTION: Final = 1 << 0

SignalLoss = Literal["no_link", "no_lock", "out_of_range"]

#: errno of QUERY_DV_TIMINGS → what it means for the picture
LOSS_ERRNOS: Final[dict[int, SignalLoss]] = {
    errno.ENOLINK: "no_link",
    errno.ENOLCK: "no_lock",
    errno.ERANGE: "out_of_range",
}
#: errno meaning "this device (or its current input) has no DV timings at all"
UNSUPPORTED_ERRNOS: Final = frozenset({errno.ENOTTY, errno.ENODATA, errno.EINVAL})


@dataclass(frozen=True)
class DvTimings:
    """Detected BT.656/1120 timings; ``raw`` is the whole struct, to hand back to S_DV_TIMINGS."""

    width: int
    height: int
    interlaced: bool
    pixelclock: int
    frame_width: int
    frame_height: int
    raw: bytes

    @property
    def fps(self) -> float:
        """Frames per second from the pixel clock and the total (blanking included) frame size."""
        total = self.frame_width * self.frame_height
        return self.pixelclock / total if total else 0.0

    def __str__(self) -> str:
        scan = "i" if self.interlaced else "p"
        return f"{self.width}x{self.height}{scan}{self.fps:.2f}"

    @classmethod
    def unpack(cls, raw: bytes) -> DvTimings:
        if len(raw) != DV_TIMINGS_SIZE:
            raise ValueError(f"v4l2_dv_timings is {DV_TIMINGS_SIZE} bytes, not {len(raw)}")
        (kind,) = struct.unpack_from("<I", raw)
        if kind != V4L2_DV_BT_656_1120:
            raise ValueError(f"unknown DV timings type {kind}")
        f = _BT.unpack_from(raw, 4)
        width, height, interlaced, _pol, pixelclock = f[0:5]
        hfp, hsync, hbp, vfp, vsync, vbp, il_vfp, il_vsync, il_vbp = f[5:14]
        frame_height = height + vfp + vsync + vbp
        if interlaced:
            frame_height += height + il_vfp + il_vsync + il_vbp
        return cls(
            width=width,
            height=height,
            interlaced=bool(interlaced),
            pixelclock=pixelclock,
            frame_width=width + hfp + hsync + hbp,
            frame_height=frame_height,
            raw=bytes(raw),
        )

    @classmethod
    def pack(
        cls,
        width: int,
        height: int,
        pixelclock: int,
        hporches: tuple[int, int, int] = (0, 0, 0),
        vporches: tuple[int, int, int] = (0, 0, 0),
    ) -> DvTimings:
        """Progressive timings from their parts (tests, and a driver that wants them set)."""
        body = _BT.pack(
            width, height, 0, 0, pixelclock, *hporches, *vporches, 0, 0, 0, 0, 0, 0, 0, 0, 0
        )
        raw = struct.pack("<I", V4L2_DV_BT_656_1120) + body + bytes(DV_TIMINGS_SIZE - 4 - _BT.size)
        return cls.unpack(raw)


@dataclass(frozen=True)
class Event:
    """A dequeued V4L2 event; ``changes`` is the source-change bit mask for SOURCE_CHANGE."""

    type: int
    id: int
    pending: int
    sequence: int
    changes: int

    @classmethod
    def unpack(cls, raw: bytes) -> Event:
        kind, data, pending, sequence, _sec, _nsec, ident, *_reserved = _EVENT.unpack(raw)
        changes = struct.unpack_from("<I", data)[0] if kind == V4L2_EVENT_SOURCE_CHANGE else 0
        return cls(type=kind, id=ident, pending=pending, sequence=sequence, changes=changes)


def query_dv_timings(fd: int) -> DvTimings:
    """What the receiver detects now. Raises OSError: ENOLINK/ENOLCK/ERANGE (see LOSS_ERRNOS),
    ENOTTY/ENODATA (no DV timings on this device or input)."""
    buf = bytearray(DV_TIMINGS_SIZE)
    fcntl.ioctl(fd, VIDIOC_QUERY_DV_TIMINGS, buf)
    return DvTimings.unpack(bytes(buf))


def get_dv_timings(fd: int) -> DvTimings:
    """The timings the receiver is configured for (what capture formats follow)."""
    buf = bytearray(DV_TIMINGS_SIZE)
    fcntl.ioctl(fd, VIDIOC_G_DV_TIMINGS, buf)
    return DvTimings.unpack(bytes(buf))


def set_dv_timings(fd: int, timings: DvTimings) -> None:
    """Configure the receiver for *timings*; EBUSY while someone streams."""
    buf = bytearray(timings.raw)
    fcntl.ioctl(fd, VIDIOC_S_DV_TIMINGS, buf)


def subscribe_source_change(fd: int, input_index: int = 0) -> None:
    """Ask for SOURCE_CHANGE events of *input_index* on this fd."""
    buf = bytearray(_SUBSCRIPTION.pack(V4L2_EVENT_SOURCE_CHANGE, input_index, 0, 0, 0, 0, 0, 0))
    fcntl.ioctl(fd, VIDIOC_SUBSCRIBE_EVENT, buf)


def dequeue_event(fd: int) -> Event | None:
    """The next pending event, or None when there is none (ENOENT)."""
    buf = bytearray(EVENT_SIZE)
    try:
        fcntl.ioctl(fd, VIDIOC_DQEVENT, buf)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise
    return Event.unpack(bytes(buf))


# struct v4l2_edid: u32 pad, start_block, blocks, reserved[5]; u8 *edid (40 bytes on 64-bit).
class _Edid(ctypes.Structure):
    _fields_ = (
        ("pad", ctypes.c_uint32),
        ("start_block", ctypes.c_uint32),
        ("blocks", ctypes.c_uint32),
        ("reserved", ctypes.c_uint32 * 5),
        ("edid", ctypes.c_void_p),
    )


VIDIOC_G_EDID: Final = iowr("V", 40, ctypes.sizeof(_Edid))
VIDIOC_S_EDID: Final = iowr("V", 41, ctypes.sizeof(_Edid))
VIDIOC_G_INPUT: Final = ior("V", 38, ctypes.sizeof(ctypes.c_int))
EDID_MAX_BLOCKS: Final = 256


def current_input(fd: int) -> int:
    """The selected input (the EDID's ``pad`` on a video node); 0 if the device has no inputs."""
    value = ctypes.c_int(0)
    try:
        fcntl.ioctl(fd, VIDIOC_G_INPUT, value)
    except OSError as exc:
        if exc.errno in UNSUPPORTED_ERRNOS:
            return 0
        raise
    return value.value


def get_edid(fd: int, pad: int = 0) -> bytes:
    """The receiver's EDID (b"" when none is set). ENOTTY/EINVAL: the device has no EDID."""
    probe = _Edid(pad=pad, start_block=0, blocks=0)
    try:
        fcntl.ioctl(fd, VIDIOC_G_EDID, probe)  # blocks=0: the driver says how many there are
    except OSError as exc:
        if exc.errno == errno.ENODATA:
            return b""
        raise
    count = min(probe.blocks, EDID_MAX_BLOCKS)
    if count == 0:
        return b""
    buf = ctypes.create_string_buffer(count * 128)
    query = _Edid(pad=pad, start_block=0, blocks=count, edid=ctypes.addressof(buf))
    fcntl.ioctl(fd, VIDIOC_G_EDID, query)
    return buf.raw[: query.blocks * 128]


def set_edid(fd: int, edid: bytes, pad: int = 0) -> None:
    """Load *edid* (whole 128-byte blocks; b"" clears it, which the source sees as unplugged)."""
    if len(edid) % 128:
        raise ValueError(f"an EDID is whole 128-byte blocks, not {len(edid)} bytes")
    buf = ctypes.create_string_buffer(edid, len(edid) or 1)
    request = _Edid(pad=pad, start_block=0, blocks=len(edid) // 128, edid=ctypes.addressof(buf))
    fcntl.ioctl(fd, VIDIOC_S_EDID, request)
