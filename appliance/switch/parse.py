"""Reply scanning shared by the wire protocols: bytes in, port numbers out, noise ignored.

Why a scanner and not a framer: the switches here have no checksums or lengths, and their
serial lines carry line noise, heartbeats and echoes. Each protocol's reply is a fixed pattern
(``AA BB 03 11 p EE``, ``OUT1 VS 3\\r\\n``, ``Chn2\\r\\n``...), so the scanner looks for that
pattern anywhere in what arrived, keeps only a short tail (a reply split across two reads) and
drops everything before a match. Arbitrary bytes can never make it raise or grow without bound.
"""

from __future__ import annotations

import re
from collections.abc import Callable

PortFn = Callable[["re.Match[bytes]"], int | None]


class ReplyScanner:
    """Finds replies matching *pattern* in a byte stream; *port_of* turns a match into the
    1-based port it names (None: a well-formed reply naming no port, ignored)."""

    def __init__(self, pattern: re.Pattern[bytes], port_of: PortFn, keep: int = 64) -> None:
        self.pattern = pattern
        self.port_of = port_of
        self.keep = keep
        self._buf = bytearray()
        self.skipped = 0
        """Bytes discarded as noise (for statistics)."""

    def reset(self) -> None:
        self._buf.clear()

    def feed(self, chunk: bytes) -> list[int]:
        """The ports named by replies completed by *chunk*, in order."""
        self._buf += chunk
        found: list[int] = []
        end = 0
        for match in self.pattern.finditer(self._buf):
            port = self.port_of(match)
            if port is not None:
                found.append(port)
            self.skipped += match.start() - end
            end = match.end()
        del self._buf[:end]
        if len(self._buf) > self.keep:  # no reply is this long: the head is noise
            self.skipped += len(self._buf) - self.keep
            del self._buf[: len(self._buf) - self.keep]
        return found


def decimal_port(match: re.Match[bytes]) -> int | None:
    """Group 1 as a decimal port number (1..99); 0 names no port."""
    port = int(match[1])
    return port if port >= 1 else None
