"""The audit log: who did what, from where, with what outcome (``STATE_DIR/audit.jsonl``).

One JSON object per line, appended (``O_APPEND``: a line written by the server and one written by
the CLI never interleave, as each is one ``write`` well below ``PIPE_BUF``-like sizes the kernel
keeps whole for regular files), each with ``time`` (ISO 8601 UTC), ``event``, ``user``,
``address``, ``outcome`` and event-specific details — lengths and counts, never typed text or
secrets. Every entry also goes to the ``ipkvm.audit`` logger (under systemd: the journal).

Size-bounded: when the file passes ``max_bytes`` it is renamed to ``audit.jsonl.1`` (the older
``.1`` to ``.2`` ... up to ``keep`` files) and a new one begun, so the log costs at most
``(keep + 1) * max_bytes`` of the SD card (default 1 MiB x 4). A write is one small ``write``
without fsync (~10 µs on tmpfs, tens of µs on an SD card): cheap enough for the event loop, and
an audit line lost in a power cut is the price of not wearing the card out.

Standard library only: the CLI writes here too (``ipkvm user add`` ...).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from appliance.statefiles import chown_like_dir

log = logging.getLogger("ipkvm.audit")

AUDIT_FILE = "audit.jsonl"
MAX_BYTES = 1 << 20
KEEP = 3
Outcome = Literal["ok", "failed", "denied", "locked"]


class AuditLog:
    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int = MAX_BYTES,
        keep: int = KEEP,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.keep = keep
        self.clock = clock
        self._lock = threading.Lock()

    def record(
        self,
        event: str,
        *,
        user: str | None,
        address: str | None = None,
        outcome: Outcome = "ok",
        **details: Any,
    ) -> dict[str, Any]:
        """Append one entry (and log it). Never raises: a full disk must not stop a login."""
        now = self.clock() if self.clock is not None else None
        stamp = datetime.fromtimestamp(now, UTC) if now is not None else datetime.now(UTC)
        entry: dict[str, Any] = {
            "time": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "event": event,
            "user": user,
            "address": address,
            "outcome": outcome,
            **details,
        }
        line = json.dumps(entry, sort_keys=False, separators=(",", ":")) + "\n"
        log.info("%s", line.rstrip("\n"))
        try:
            with self._lock:
                self._rotate_if_needed()
                fd = os.open(
                    self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600
                )
                try:
                    chown_like_dir(fd, self.path.parent)  # root's CLI must not lock the service out
                    os.write(fd, line.encode())
                finally:
                    os.close(fd)
        except OSError as exc:
            log.error("cannot write the audit log %s: %s", self.path, exc)
        return entry

    def _rotate_if_needed(self) -> None:
        try:
            size = os.stat(self.path).st_size
        except FileNotFoundError:
            return
        if size < self.max_bytes:
            return
        for n in range(self.keep, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{n}")
            newer = self.path.with_name(f"{self.path.name}.{n - 1}") if n > 1 else self.path
            with contextlib.suppress(FileNotFoundError):
                os.replace(newer, older)

    def files(self) -> list[Path]:
        """Oldest first."""
        names = [self.path.with_name(f"{self.path.name}.{n}") for n in range(self.keep, 0, -1)]
        return [p for p in [*names, self.path] if p.exists()]

    def tail(self, limit: int = 200, event: str | None = None) -> list[dict[str, Any]]:
        """The newest ``limit`` entries (optionally of one event type, or a prefix ``power``),
        newest first. Reads the files (at most a few MiB): call it in a thread."""
        out: list[dict[str, Any]] = []
        for path in reversed(self.files()):
            try:
                lines = path.read_bytes().splitlines()
            except OSError:
                continue
            for raw in reversed(lines):
                try:
                    entry = json.loads(raw)
                except ValueError:
                    continue
                if not isinstance(entry, dict):
                    continue
                name = str(entry.get("event", ""))
                if event and not (name == event or name.startswith(event + ".")):
                    continue
                out.append(entry)
                if len(out) >= limit:
                    return out
        return out
