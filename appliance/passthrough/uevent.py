"""The kernel's device hot-plug events (NETLINK_KOBJECT_UEVENT), read on the event loop.

Why the kernel's own socket and not polling or pyudev: the kernel tells every listener the moment
an input device appears or vanishes, the standard library can read it, and nothing is added to
the image. The kernel's message is ``ACTION@DEVPATH`` then ``KEY=VALUE`` strings, each ended by a
NUL byte. udev re-broadcasts events (after its rules ran) on another group with a binary
``libudev`` header; only the kernel's group is joined, and anything else is refused.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

log = logging.getLogger(__name__)

NETLINK_KOBJECT_UEVENT: Final = 15
"""linux/netlink.h (not every typeshed names it in :mod:`socket`)."""
KERNEL_GROUP: Final = 1
"""The multicast group the kernel sends uevents to (udev's re-broadcast is group 2)."""
MAX_MESSAGE: Final = 8192
"""A uevent is at most a page of environment (UEVENT_BUFFER_SIZE 2048 plus the header)."""


@dataclass(frozen=True, slots=True)
class UEvent:
    action: str
    devpath: str
    properties: Mapping[str, str] = field(default_factory=dict)

    @property
    def subsystem(self) -> str:
        return self.properties.get("SUBSYSTEM", "")

    @property
    def devnode(self) -> str | None:
        """``/dev/…`` of the device node, if the device has one (``DEVNAME``)."""
        name = self.properties.get("DEVNAME")
        if not name:
            return None
        return name if name.startswith("/") else f"/dev/{name}"

    @property
    def is_evdev(self) -> bool:
        """An evdev node (``/dev/input/eventN``), not the input device above it or a mouseN."""
        node = self.devnode or ""
        return self.subsystem == "input" and node.startswith("/dev/input/event")


def parse_uevent(data: bytes) -> UEvent | None:
    """One kernel uevent message; None for anything else (udev's, truncated, not text)."""
    if data.startswith(b"libudev\0"):
        return None
    head, _, rest = data.partition(b"\0")
    action, at, devpath = head.decode("utf-8", "replace").partition("@")
    if not at or not action or not devpath.startswith("/"):
        return None
    props: dict[str, str] = {}
    for item in rest.split(b"\0"):
        key, eq, value = item.decode("utf-8", "replace").partition("=")
        if eq and key:
            props[key] = value
    if props.get("ACTION", action) != action:
        return None
    return UEvent(action=action, devpath=devpath, properties=props)


@dataclass
class UeventMonitor:
    """Calls ``on_event`` for each kernel uevent; ``on_overflow`` when the socket's buffer ran
    over (events were lost: the caller rescans the devices instead of trusting its picture)."""

    on_event: Callable[[UEvent], None]
    on_overflow: Callable[[], None]
    _sock: socket.socket | None = None

    def start(self) -> None:
        """Join the kernel's uevent group (OSError when the platform or sandbox refuses)."""
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_KOBJECT_UEVENT)
        try:
            sock.bind((0, KERNEL_GROUP))
            sock.setblocking(False)
            asyncio.get_running_loop().add_reader(sock.fileno(), self._readable)
        except BaseException:
            sock.close()
            raise
        self._sock = sock

    def close(self) -> None:
        if self._sock is not None:
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None

    def _readable(self) -> None:
        assert self._sock is not None
        while True:
            try:
                data, (sender, _groups) = self._sock.recvfrom(MAX_MESSAGE)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    log.warning("passthrough: uevents were lost (buffer full); rescanning")
                    self.on_overflow()
                    continue
                log.warning("passthrough: uevent socket: %s", exc)
                return
            if sender != 0:
                continue  # only the kernel (port 0) speaks for the kernel
            event = parse_uevent(data)
            if event is not None:
                self.on_event(event)
