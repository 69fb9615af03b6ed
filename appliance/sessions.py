"""Browser login sessions that survive a restart: ``STATE_DIR/sessions.json``.

Why on disk: an upgrade, a watchdog restart or a crash must not log every admin out in the middle
of an incident. Why hashed: the cookie is a bearer secret with 256 random bits, so the file keeps
only its SHA-256 — a copy of the file (a backup, a pulled SD card) gives no working cookie, and a
plain hash is enough because the input cannot be guessed.

Each record also carries a fingerprint of the password hash it was created under, so a password
change ends every session even when it happened while the server was stopped, and a restored old
file cannot bring sessions back. Times are wall-clock Unix seconds because expiry must survive a
reboot (a monotonic clock restarts at zero).

The file is re-read only when its identity on disk (inode, size, mtime, ctime) changes, so checking
a cookie costs one ``stat`` and a dict lookup; it is written only on login, logout and password
change, never per request. A corrupt or unreadable file is logged and treated as empty: the service
starts, everyone logs in again, and the next login replaces the file. A failed write is logged and
the change is kept in memory, so logins keep working on a read-only or full disk.

Standard library only: the small CLI commands import this module (through ``appliance.auth``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SESSIONS_FILE = "sessions.json"
FORMAT_VERSION = 1
_DIGEST_RE = re.compile(r"[0-9a-f]{64}")  # fullmatch: "$" also matches before a final "\n"


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One browser session as stored: never the cookie itself."""

    user: str
    created: float  # Unix seconds
    expires: float  # Unix seconds, fixed at login
    password: str  # fingerprint of the password hash the session was created under


def session_digest(sid: str) -> str:
    """The key a session is stored under: SHA-256 of the cookie value, hex."""
    return hashlib.sha256(sid.encode("utf-8", "surrogatepass")).hexdigest()


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError("not a finite number")
    return float(value)


def parse_sessions(data: Any) -> dict[str, SessionRecord]:
    """The records of a decoded ``sessions.json``; ValueError if it is not one.

    A malformed entry inside a well-formed file is skipped (refused), not fatal.
    """
    if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
        raise ValueError(f"not a version {FORMAT_VERSION} sessions file")
    items = data.get("sessions")
    if not isinstance(items, list):
        raise ValueError("'sessions' is not a list")
    records: dict[str, SessionRecord] = {}
    for item in items:
        try:
            digest, user, fingerprint = item["sha256"], item["user"], item["password"]
            if not isinstance(digest, str) or not _DIGEST_RE.fullmatch(digest):
                raise ValueError("bad digest")
            if not isinstance(user, str) or not isinstance(fingerprint, str):
                raise ValueError("bad user or password fingerprint")
            records[digest] = SessionRecord(
                user, _number(item["created"]), _number(item["expires"]), fingerprint
            )
        except (KeyError, TypeError, ValueError):
            continue
    return records


def dump_sessions(records: dict[str, SessionRecord]) -> bytes:
    items = [
        {
            "sha256": digest,
            "user": r.user,
            "created": round(r.created, 3),
            "expires": round(r.expires, 3),
            "password": r.password,
        }
        for digest, r in sorted(records.items(), key=lambda kv: kv[1].created)
    ]
    return (json.dumps({"version": FORMAT_VERSION, "sessions": items}, indent=1) + "\n").encode()


class SessionTable:
    """The in-process view of ``sessions.json``, kept in step with the file.

    Read-modify-write across processes is serialised by the caller (``AuthStore`` holds its
    ``flock`` around :meth:`load` + :meth:`save`); the internal lock only keeps the cached view
    consistent between the event loop and the worker thread that writes.
    """

    def __init__(self, path: Path, write: Callable[[Path, bytes], None]) -> None:
        self.path = path
        self._write = write
        self._lock = threading.Lock()
        self._sig: tuple[int, int, int, int] | None = None
        self._records: dict[str, SessionRecord] = {}

    def _refresh_locked(self) -> None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            if self._sig is not None:  # deleted by hand: every session ends
                self._sig, self._records = None, {}
            return
        except OSError as exc:
            log.error("cannot stat %s: %s; keeping the sessions known in memory", self.path, exc)
            return
        sig = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if sig == self._sig:
            return
        self._sig = sig
        try:
            self._records = parse_sessions(json.loads(self.path.read_bytes()))
        # RecursionError: JSON nested too deeply for the decoder (a damaged or hostile file).
        except (OSError, ValueError, RecursionError) as exc:
            log.warning(
                "ignoring unreadable sessions file %s (%s): browsers must log in again",
                self.path,
                exc,
            )
            self._records = {}

    def get(self, digest: str) -> SessionRecord | None:
        with self._lock:
            self._refresh_locked()
            return self._records.get(digest)

    def load(self) -> dict[str, SessionRecord]:
        """A copy of the current records (call under the store's flock before :meth:`save`)."""
        with self._lock:
            self._refresh_locked()
            return dict(self._records)

    def exists(self) -> bool:
        with self._lock:
            self._refresh_locked()
            return self._sig is not None or bool(self._records)

    def save(self, records: dict[str, SessionRecord]) -> bool:
        """Replace the table and the file (atomically, 0600). False if only memory changed.

        The write (with fsync, slow on an SD card) happens outside the internal lock, so the event
        loop checking cookies meanwhile never waits for it; it sees the old table until the new
        file is in place.
        """
        data = dump_sessions(records)
        try:
            self._write(self.path, data)
            st = os.stat(self.path)
        except OSError as exc:
            log.error("cannot write %s: %s; sessions are kept in memory only", self.path, exc)
            with self._lock:
                self._records = dict(records)
            return False
        with self._lock:
            self._records = dict(records)
            self._sig = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        return True
