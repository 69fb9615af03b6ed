"""Credentials for the appliance: the admin password, API tokens, browser sessions, login throttle.

Security from the first boot: there is no default password. The first start generates a random
one, stores only its scrypt hash and shows the plaintext once (``ensure_admin``). API tokens are
stored as SHA-256 digests only, so a leaked ``tokens.json`` does not grant access.

The password and token files may be changed by another process (``ipkvm passwd``, ``ipkvm token``)
while the server runs; every check looks at the file's identity (inode, size, mtime, ctime) and
re-reads it when it changed, so a new token works at once and a revoked one stops at once. A
password change also ends every browser session. Browser sessions are kept (hashed) in
``sessions.json`` so a restart does not log anyone out (see ``appliance.sessions``).

A request's proof of identity is summed up as a :class:`Credential` (which session, token or
password it used, never the secret itself), so that connections that outlive the request can be
re-checked later with :meth:`AuthStore.credential_valid` (see ``appliance.api.connections``).

Standard library only: the small CLI commands import this module.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import fcntl
import hashlib
import hmac
import ipaddress
import json
import os
import re
import secrets
import threading
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from appliance.sessions import SESSIONS_FILE, SessionRecord, SessionTable, session_digest

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

ADMIN_USER = "admin"
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
TOKEN_PREFIX = "ipk_"
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
_SCRYPT_MAXMEM = 64 * 1024 * 1024
# No 0/O, 1/l/I: the generated password is read off a console and typed by a human.
PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
_TOKEN_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_USER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
_VERIFIED_CACHE_SECONDS = 60.0
_MAX_SESSIONS = 256
# A session "created" this far in the future means the clock went back: refuse it for now.
_CLOCK_SLACK = 300.0

# scrypt costs ~50 ms and 16 MiB per call: a small dedicated pool keeps the event loop free and
# bounds the memory a burst of Basic-auth requests can take on a 512 MiB board.
_scrypt_pool: ThreadPoolExecutor | None = None
SCRYPT_WORKERS = 2


def _pool() -> ThreadPoolExecutor:
    global _scrypt_pool
    if _scrypt_pool is None:
        from concurrent.futures import ThreadPoolExecutor

        _scrypt_pool = ThreadPoolExecutor(
            max_workers=SCRYPT_WORKERS, thread_name_prefix="ipkvm-scrypt"
        )
    return _scrypt_pool


class AuthError(ValueError):
    """A request the store refuses (too short a password, duplicate token name...)."""


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What may be shown about a token: never the token or its digest."""

    id: str
    name: str
    created: str  # ISO 8601, UTC


CredentialKind = Literal["session", "token", "basic"]


@dataclass(frozen=True, slots=True)
class Credential:
    """What authenticated a request, in a form that can be re-checked but not replayed.

    ``key`` is the SHA-256 of the session cookie (as ``sessions.json`` stores it), the SHA-256 of
    the API token (as ``tokens.json`` stores it), or for HTTP Basic the fingerprint of the
    password hash the password was checked against: a new password ends Basic connections just as
    it ends sessions. Long-lived connections keep it to be closed when it stops being valid.
    """

    kind: CredentialKind
    key: str

    @classmethod
    def for_session(cls, sid: str) -> Credential:
        return cls("session", session_digest(sid))

    @classmethod
    def for_token(cls, token: str) -> Credential:
        return cls("token", token_digest(token))


def token_digest(token: str) -> str:
    """How a token is stored and compared: SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def generate_password() -> str:
    """4 groups of 4 from a 31-letter unambiguous alphabet: ~79 bits, easy to type from a screen."""
    groups = ("".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(4)) for _ in range(4))
    return "-".join(groups)


def _normalize(password: str) -> bytes:
    # The same password typed on different systems may arrive composed or decomposed.
    return unicodedata.normalize("NFC", password).encode("utf-8")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def _chown_like_dir(fd: int, directory: Path) -> None:
    """Run as root (``sudo ipkvm token create``), files still belong to the service user."""
    if os.geteuid() != 0:
        return
    st = os.stat(directory)
    if st.st_uid != 0:
        os.fchown(fd, st.st_uid, st.st_gid)


def write_private(path: Path, data: bytes) -> None:
    """Atomically replace ``path`` with ``data``, mode 0600: readers never see half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)
            _chown_like_dir(fd, path.parent)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class _JsonFile:
    """A small JSON file re-read only when its identity on disk changed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # read() runs on the event loop and in the scrypt threads: keep (sig, data) consistent.
        self._lock = threading.Lock()
        self._sig: tuple[int, int, int, int] | None = None
        self._data: Any = None
        self.generation = 0
        """Bumped whenever the content seen changes (including appearing/disappearing)."""

    def read(self) -> Any:
        with self._lock:
            return self._read_locked()

    def _read_locked(self) -> Any:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            if self._sig is not None or self._data is not None:
                self._sig, self._data = None, None
                self.generation += 1
            return None
        sig = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if sig != self._sig:
            try:
                data = json.loads(self.path.read_bytes())
            except (OSError, ValueError):
                data = None  # unreadable or half-written by hand: treat as absent, fail closed
            self._sig, self._data = sig, data
            self.generation += 1
        return self._data

    def write(self, data: Any) -> None:
        write_private(self.path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())
        self.read()


class AuthStore:
    """Admin password, API tokens and sessions for one state directory.

    ``session_ttl`` is in seconds; ``clock`` (wall-clock Unix seconds, because session expiry is
    persisted and must survive a reboot) is injectable so tests can expire sessions without
    sleeping. ``monotonic`` measures the in-memory intervals (the one-minute password cache),
    so setting the wall clock back cannot stretch them.
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        session_ttl: float = 12 * 3600.0,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.session_ttl = float(session_ttl)
        self.clock = clock
        self.monotonic = monotonic
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = self.state_dir.stat()
        if st.st_uid == os.geteuid() and st.st_mode & 0o077:
            os.chmod(self.state_dir, 0o700)
        self.auth_path = self.state_dir / "auth.json"
        self.tokens_path = self.state_dir / "tokens.json"
        self._auth = _JsonFile(self.auth_path)
        self._tokens = _JsonFile(self.tokens_path)
        self.sessions_path = self.state_dir / SESSIONS_FILE
        self._sessions = SessionTable(self.sessions_path, write_private)
        self._cache_key = secrets.token_bytes(32)
        self._verified: dict[bytes, float] = {}
        self._listeners: list[Callable[[], None]] = []

    # ------------------------------------------------------------------ change notification

    def add_listener(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener()`` after this process revoked something (logout, token revocation,
        password change); returns a function that removes it.

        Why: the server closes connections opened with a credential that just died, and a change
        made in this process should not wait for its next periodic re-check. The listener may be
        called from a worker thread (logout writes ``sessions.json`` off the event loop). Changes
        made by another process (the CLI) are not announced: the server's re-check finds them.
        """
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    def _revoked(self) -> None:
        for listener in list(self._listeners):
            listener()

    # ------------------------------------------------------------------ locking

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise read-modify-write between processes (server and CLI).

        A read-only (or full) state directory must not turn every login into a 500: the writes
        that follow fail and are handled (sessions stay in memory), so the lock falls back to an
        existing ``.lock`` opened read-only, else to the directory itself (``flock`` needs no
        write access). All processes see the same filesystem state, so they pick the same object.
        """
        path = self.state_dir / ".lock"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            if exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC):
                raise
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                fd = os.open(self.state_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # ------------------------------------------------------------------ password

    def _record(self) -> dict[str, Any] | None:
        rec = self._auth.read()
        if not isinstance(rec, dict):
            return None
        sc = rec.get("scrypt")
        if not isinstance(rec.get("user"), str) or not isinstance(sc, dict):
            return None
        try:
            n, r, p = int(sc["n"]), int(sc["r"]), int(sc["p"])
            _unb64(sc["salt"])
            _unb64(sc["hash"])
        except (KeyError, TypeError, ValueError):
            return None
        if n < 2 or n & (n - 1) or n > 2**20 or not 1 <= r <= 32 or not 1 <= p <= 16:
            return None  # refuse parameters that would eat the board's memory
        return rec

    def has_password(self) -> bool:
        return self._record() is not None

    def ensure_admin(self) -> str | None:
        """First start: create a random admin password and return it (once). Else None."""
        with self._locked():
            if self._record() is not None:
                return None
            password = generate_password()
            self._store_password(password, ADMIN_USER)
            return password

    def set_password(self, password: str, user: str = ADMIN_USER) -> None:
        """Replace the admin password (all browser sessions end)."""
        if not isinstance(password, str) or not password:
            raise AuthError("password must not be empty")
        if len(password) < MIN_PASSWORD_LENGTH:
            raise AuthError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
        if len(password) > MAX_PASSWORD_LENGTH:
            raise AuthError(f"password must be at most {MAX_PASSWORD_LENGTH} characters")
        if "\0" in password or "\n" in password or "\r" in password:
            raise AuthError("password must not contain NUL or line breaks")
        if not _USER_RE.match(user):
            raise AuthError(f"invalid user name {user!r}")
        with self._locked():
            self._store_password(password, user)
            if self._sessions.exists():
                self._sessions.save({})  # the fingerprint check would refuse them anyway
        self._revoked()

    def _store_password(self, password: str, user: str) -> None:
        salt = secrets.token_bytes(16)
        digest = hashlib.scrypt(
            _normalize(password),
            salt=salt,
            n=SCRYPT_N,
            r=SCRYPT_R,
            p=SCRYPT_P,
            maxmem=_SCRYPT_MAXMEM,
            dklen=32,
        )
        record = {
            "user": user,
            "scrypt": {
                "salt": _b64(salt),
                "n": SCRYPT_N,
                "r": SCRYPT_R,
                "p": SCRYPT_P,
                "hash": _b64(digest),
            },
        }
        self._auth.write(record)

    def verify_password(self, user: str, password: str) -> bool:
        """Check credentials (blocking: ~50 ms of scrypt; use :meth:`verify_password_async`).

        A correct pair is remembered for a minute (keyed by an HMAC with a per-process key and
        the stored hash, never the plaintext) so API clients using Basic auth on every request
        do not pay scrypt each time.
        """
        if not isinstance(user, str) or not isinstance(password, str):
            return False
        if len(password) > MAX_PASSWORD_LENGTH:
            return False
        rec = self._record()
        if rec is None:
            return False
        sc = rec["scrypt"]
        cache_key = self._cache_id(rec, user, password)
        now = self.monotonic()
        if self._verified.get(cache_key, 0.0) > now:
            return True
        expected = _unb64(sc["hash"])
        derived = hashlib.scrypt(
            _normalize(password),
            salt=_unb64(sc["salt"]),
            n=int(sc["n"]),
            r=int(sc["r"]),
            p=int(sc["p"]),
            maxmem=_SCRYPT_MAXMEM,
            dklen=len(expected),
        )
        user_ok = hmac.compare_digest(user.encode(), str(rec["user"]).encode())
        ok = hmac.compare_digest(derived, expected) and user_ok
        if ok:
            if len(self._verified) >= 16:
                self._verified.clear()
            self._verified[cache_key] = now + _VERIFIED_CACHE_SECONDS
        return ok

    def verify_cached(self, user: str, password: str) -> bool:
        """True only if this pair was verified in the last minute (no scrypt, microseconds).

        Lets Basic-auth API clients skip the thread pool and the login throttle's in-flight
        accounting on every request after the first. Why it is worth the risk: HTTP Basic sends
        the password with every request, so a script doing a few calls a second would otherwise
        pay ~50 ms of scrypt (and 16 MiB) per call, and under a guessing flood its calls would
        be shed with the guesses (``appliance.auth_gate``). The cache holds only HMACs (a random
        per-process key over user, password and the stored hash): nothing in memory reveals the
        password, a password change (new salt and hash) invalidates every entry at once, only
        correct pairs are ever added, and it is bounded (16 entries, a minute each).
        """
        if not isinstance(user, str) or not isinstance(password, str):
            return False
        if len(password) > MAX_PASSWORD_LENGTH:
            return False
        rec = self._record()
        if rec is None:
            return False
        return self._verified.get(self._cache_id(rec, user, password), 0.0) > self.monotonic()

    def _cache_id(self, rec: dict[str, Any], user: str, password: str) -> bytes:
        stored = str(rec["scrypt"]["hash"]).encode()
        return hmac.digest(
            self._cache_key, b"\0".join([user.encode(), _normalize(password), stored]), "sha256"
        )

    async def verify_password_async(self, user: str, password: str) -> bool:
        """:meth:`verify_password` in the scrypt thread pool: the event loop never waits."""
        import asyncio  # not at top level: the small CLI commands import this module

        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(_pool(), self.verify_password, user, password)

    # ------------------------------------------------------------------ tokens

    def _token_records(self) -> list[dict[str, str]]:
        data = self._tokens.read()
        if not isinstance(data, dict) or not isinstance(data.get("tokens"), list):
            return []
        return [
            t
            for t in data["tokens"]
            if isinstance(t, dict)
            and all(isinstance(t.get(k), str) for k in ("id", "name", "sha256", "created"))
        ]

    def create_token(self, name: str) -> tuple[str, str]:
        """New API token called ``name`` → (id, token). Only its SHA-256 is stored."""
        if not isinstance(name, str) or not _TOKEN_NAME_RE.match(name):
            raise AuthError(
                "token name must be 1-64 characters: letters, digits, . _ @ - "
                "(starting with a letter or digit)"
            )
        with self._locked():
            records = self._token_records()
            if any(t["name"] == name for t in records):
                raise AuthError(f"a token named {name!r} exists already")
            ids = {t["id"] for t in records}
            token_id = secrets.token_hex(4)
            while token_id in ids:
                token_id = secrets.token_hex(4)
            token = TOKEN_PREFIX + secrets.token_urlsafe(32)
            created = datetime.now(UTC).replace(microsecond=0).isoformat()
            records.append(
                {
                    "id": token_id,
                    "name": name,
                    "sha256": token_digest(token),
                    "created": created,
                }
            )
            self._tokens.write({"tokens": records})
        return token_id, token

    def list_tokens(self) -> list[TokenInfo]:
        return [TokenInfo(t["id"], t["name"], t["created"]) for t in self._token_records()]

    def revoke_token(self, id_or_name: str) -> TokenInfo | None:
        """Remove the token with this id (or else this name); None if there is none."""
        with self._locked():
            records = self._token_records()
            match = next((t for t in records if t["id"] == id_or_name), None) or next(
                (t for t in records if t["name"] == id_or_name), None
            )
            if match is None:
                return None
            self._tokens.write({"tokens": [t for t in records if t is not match]})
        self._revoked()
        return TokenInfo(match["id"], match["name"], match["created"])

    def verify_token(self, token: str) -> str | None:
        """The token's name if ``token`` is valid now (sees other processes' changes at once)."""
        if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX) or len(token) > 256:
            return None
        return self._token_name(token_digest(token))

    def _token_name(self, digest: str) -> str | None:
        found: str | None = None
        for t in self._token_records():
            if hmac.compare_digest(digest, t["sha256"]):
                found = t["name"]
        return found

    # ------------------------------------------------------------------ credentials

    def basic_credential(self) -> Credential | None:
        """The credential a Basic-auth request gets if its password checks out.

        Take it *before* checking the password: should the password change in between, the
        connection is bound to the older hash and closed, never the other way round.
        """
        fingerprint = self.password_fingerprint()
        return Credential("basic", fingerprint) if fingerprint is not None else None

    def credential_valid(self, credential: Credential) -> bool:
        """Whether ``credential`` would still authenticate a request now.

        Reads only: a ``stat`` of the file concerned (re-read only if it changed), so open
        connections can be re-checked every second for almost nothing.
        """
        if credential.kind == "session":
            return self._session_user(credential.key) is not None
        if credential.kind == "token":
            return self._token_name(credential.key) is not None
        if credential.kind == "basic":
            fingerprint = self.password_fingerprint()
            return fingerprint is not None and hmac.compare_digest(fingerprint, credential.key)
        return False

    # ------------------------------------------------------------------ sessions

    def password_fingerprint(self) -> str | None:
        """Binds sessions (and Basic-auth connections) to the current password hash: a new
        password ends them all. None when no password is set."""
        rec = self._record()
        if rec is None:
            return None
        stored = str(rec["scrypt"]["hash"]).encode()
        return hashlib.sha256(b"ipkvm-session\0" + stored).hexdigest()[:32]

    @staticmethod
    def _prune(records: dict[str, SessionRecord], now: float, fingerprint: str | None) -> None:
        """Drop expired sessions and those of an older password."""
        for digest in [
            d for d, r in records.items() if r.expires <= now or r.password != fingerprint
        ]:
            del records[digest]

    def create_session(self, user: str) -> str:
        """A new session for ``user`` (after the password was checked) → the cookie value.

        Blocking: takes the state-dir lock and writes ``sessions.json`` with fsync (use
        :meth:`create_session_async` on the event loop).
        """
        sid = secrets.token_urlsafe(32)
        with self._locked():
            fingerprint = self.password_fingerprint()
            if fingerprint is None:
                raise AuthError("no admin password is set")
            now = self.clock()
            records = self._sessions.load()
            self._prune(records, now, fingerprint)
            while len(records) >= _MAX_SESSIONS:
                del records[min(records, key=lambda d: records[d].expires)]
            records[session_digest(sid)] = SessionRecord(
                user, now, now + self.session_ttl, fingerprint
            )
            self._sessions.save(records)
        return sid

    def check_session(self, sid: str | None) -> str | None:
        """The session's user, or None if unknown, expired or from an older password.

        Expiry is fixed at login. Reads only (a ``stat`` of two small files): never writes.
        A session created in the future (the clock went back more than a few minutes, e.g. a
        board without RTC before NTP) is refused but kept, and works again once the clock is right.
        """
        if not sid or len(sid) > 256:
            return None
        return self._session_user(session_digest(sid))

    def _session_user(self, digest: str) -> str | None:
        record = self._sessions.get(digest)
        if record is None:
            return None
        now = self.clock()
        if not record.created - _CLOCK_SLACK <= now < record.expires:
            return None
        fingerprint = self.password_fingerprint()
        if fingerprint is None or not hmac.compare_digest(fingerprint, record.password):
            return None
        return record.user

    def delete_session(self, sid: str | None) -> None:
        """End one session (logout). Writes only if the session exists."""
        if not sid or len(sid) > 256:
            return
        self.delete_session_digest(session_digest(sid))

    def live_sessions(self, user: str) -> dict[str, SessionRecord]:
        """``user``'s sessions that would let a request in now, by digest (Redfish lists them as
        its SessionCollection and ends one by this key, without ever holding the cookie)."""
        return {
            digest: record
            for digest, record in self._sessions.load().items()
            if record.user == user and self._session_user(digest) == user
        }

    def delete_session_digest(self, digest: str) -> None:
        """End the session stored under ``digest`` (blocking: it writes ``sessions.json``)."""
        if self._sessions.get(digest) is None:
            return
        with self._locked():
            records = self._sessions.load()
            if records.pop(digest, None) is None:
                return
            self._prune(records, self.clock(), self.password_fingerprint())
            self._sessions.save(records)
        self._revoked()

    async def create_session_async(self, user: str) -> str:
        """:meth:`create_session` in a worker thread: the fsync never stalls the event loop."""
        import asyncio

        return await asyncio.to_thread(self.create_session, user)

    async def delete_session_async(self, sid: str | None) -> None:
        import asyncio

        await asyncio.to_thread(self.delete_session, sid)

    async def delete_session_digest_async(self, digest: str) -> None:
        import asyncio

        await asyncio.to_thread(self.delete_session_digest, digest)


@dataclass(slots=True)
class _Failures:
    count: int
    last: float
    pending: int = 0
    refused: int = 0  # attempts shed unchecked (server busy): no backoff, but less priority


class LoginThrottle:
    """Per-client exponential backoff on failed logins (also Basic-auth failures).

    ``free`` failures cost nothing; after that each attempt must wait ``base * 2**k`` seconds
    after the previous failure (1 s, 2 s, 4 s ... capped at ``cap``). Success resets. Attempts
    announced with :meth:`begin` and not yet decided count as failures, so a burst of parallel
    guesses cannot all slip past :meth:`check` while scrypt runs. An entry is
    forgotten after ``2 * cap`` seconds of quiet and memory is bounded by ``max_entries`` (oldest
    evicted). IPv6 clients count per /64, because one host usually owns a whole /64.
    """

    def __init__(
        self,
        *,
        free: int = 3,
        base: float = 1.0,
        cap: float = 300.0,
        max_entries: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free = free
        self.base = base
        self.cap = cap
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[str, _Failures] = OrderedDict()
        self.failures_total = 0
        """Failed logins (and Basic-auth failures) since start: for ``/api/metrics``."""

    @staticmethod
    def _key(addr: str | None) -> str:
        if not addr:
            return "?"
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            return addr
        if isinstance(ip, ipaddress.IPv6Address):
            if ip.ipv4_mapped is not None:
                return str(ip.ipv4_mapped)
            return str(ipaddress.IPv6Network((ip, 64), strict=False))
        return str(ip)

    def _get(self, addr: str | None) -> tuple[str, _Failures | None]:
        key = self._key(addr)
        entry = self._entries.get(key)
        if entry is not None and self.clock() - entry.last > 2 * self.cap:
            del self._entries[key]
            entry = None
        return key, entry

    def _delay(self, count: int) -> float:
        if count < self.free:
            return 0.0
        return float(min(self.cap, self.base * 2 ** min(count - self.free, 32)))

    def check(self, addr: str | None) -> float:
        """Seconds this client must still wait before another attempt (0 = go ahead)."""
        _, entry = self._get(addr)
        if entry is None:
            return 0.0
        return max(0.0, entry.last + self._delay(entry.count + entry.pending) - self.clock())

    def _entry(self, addr: str | None) -> _Failures:
        key, entry = self._get(addr)
        if entry is None:
            entry = _Failures(0, self.clock())
            self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return entry

    def begin(self, addr: str | None) -> None:
        """An attempt is being verified: it counts as a failure until decided."""
        entry = self._entry(addr)
        entry.pending += 1
        entry.last = self.clock()

    def failure(self, addr: str | None) -> None:
        self.failures_total += 1
        entry = self._entry(addr)
        entry.pending = max(0, entry.pending - 1)
        entry.count += 1
        entry.last = self.clock()

    def suspicion(self, addr: str | None) -> int:
        """How suspect this client is when password checks must be rationed: its failures,
        attempts in flight and attempts refused unchecked (0 for a client never seen)."""
        _, entry = self._get(addr)
        return 0 if entry is None else entry.count + entry.pending + entry.refused

    def refused(self, addr: str | None) -> None:
        """An attempt announced with :meth:`begin` was refused without a check (overload): no
        failure and no backoff, since the password may have been right, but it counts in
        :meth:`suspicion` so a client that keeps pushing waits behind those that do not."""
        entry = self._entry(addr)
        entry.pending = max(0, entry.pending - 1)
        entry.refused += 1

    def success(self, addr: str | None) -> None:
        key, entry = self._get(addr)
        if entry is None:
            return
        if entry.pending > 1:
            entry.pending -= 1
            entry.count = entry.refused = 0
        else:
            del self._entries[key]


def resolve_state_dir(explicit: Path | None, config: Path | None = None) -> Path:
    """Where the CLI finds the credentials: --state-dir, $IPKVM_STATE_DIR, the config file's
    ``server.state_dir`` (--config, else /etc/ipkvm/ipkvm.toml if present), /var/lib/ipkvm."""
    from appliance.config import DEFAULT_STATE_DIR, find_config, load_config

    if explicit is not None:
        return explicit
    env = os.environ.get("IPKVM_STATE_DIR")
    if env:
        return Path(env)
    path = find_config(config)
    if path is not None:
        return load_config(path).server.state_dir
    return DEFAULT_STATE_DIR
