"""Wait, without blocking the event loop, until a non-blocking file descriptor takes data.

A serial port opened non-blocking answers ``EAGAIN`` while its driver's buffer is full (a
CH9329 holding back under flow control, a KVM switch's slow UART); the writer then waits for the
loop to report the fd writable, with a time-out so a wedged device ends in a clear error instead
of a hang. Shared by the CH9329 output and the KVM switch's serial link.
"""

from __future__ import annotations

import asyncio
import contextlib


async def wait_writable(fd: int, timeout: float) -> bool:
    """True once *fd* is writable; False after *timeout* seconds."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_writer(fd, wake)
    try:
        async with asyncio.timeout(timeout):
            await ready
        return True
    except TimeoutError:
        return False
    finally:
        with contextlib.suppress(Exception):
            loop.remove_writer(fd)
