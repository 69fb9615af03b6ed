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
import copy
import errno
import fcntl
import hashlib
import hmac
import ipaddress
import json
import logging
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

from appliance.audit import AUDIT_FILE, AuditLog
from appliance.roles import ROLES, Role, is_role, rank
from appliance.sessions import FORMAT_VERSION as SESSIONS_FORMAT_VERSION
from appliance.sessions import SESSIONS_FILE, SessionRecord, SessionTable, session_digest
from appliance.statefiles import chown_like_dir
from appliance.users import FORMAT_VERSION as USERS_FORMAT_VERSION
from appliance.users import (
    LEGACY_AUTH_FILE,
    LEGACY_BACKUP,
    MAX_USERS,
    TOKENS_FORMAT_VERSION,
    USER_RE,
    USERS_FILE,
    StateTooNew,
    check_version,
    dump_users,
    new_record,
    parse_users,
    valid_ports,
    valid_scrypt,
)

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

__all__ = ["AuditLog", "StateTooNew"]
log = logging.getLogger(__name__)

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
_USER_RE = USER_RE
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
    user: str = ADMIN_USER
    role: Role | None = None  # None: the owner's role


@dataclass(frozen=True, slots=True)
class UserInfo:
    """What may be shown about a user: never the hash, TOTP secret or recovery codes."""

    name: str
    role: Role
    created: str
    ports: tuple[int, ...] | None
    totp: bool
    totp_required: bool
    recovery_left: int


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


def write_private(path: Path, data: bytes) -> None:
    """Atomically replace ``path`` with ``data``, mode 0600: readers never see half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)
            chown_like_dir(fd, path.parent)
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

    def read_versioned(self) -> tuple[Any, int]:
        """The content and its generation, consistent with each other."""
        with self._lock:
            return self._read_locked(), self.generation

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
    """Users (``users.json``), API tokens and sessions for one state directory.

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
        self.auth_path = self.state_dir / LEGACY_AUTH_FILE
        self.users_path = self.state_dir / USERS_FILE
        self.tokens_path = self.state_dir / "tokens.json"
        self._users_file = _JsonFile(self.users_path)
        self._parsed: tuple[int, dict[str, dict[str, Any]]] | None = None
        self._tokens = _JsonFile(self.tokens_path)
        self.sessions_path = self.state_dir / SESSIONS_FILE
        self._sessions = SessionTable(self.sessions_path, write_private)
        self._cache_key = secrets.token_bytes(32)
        self._verified: dict[bytes, float] = {}
        self._listeners: list[Callable[[], None]] = []
        self.audit = AuditLog(self.state_dir / AUDIT_FILE)
        """Who did what (``appliance.audit``): the server and the CLI append to it."""
        self._migrate()

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
            chown_like_dir(fd, self.state_dir)  # made by root's CLI: still the service's
        except OSError as exc:
            if exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC):
                raise
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except (FileNotFoundError, PermissionError):  # absent, or another user's 0600
                fd = os.open(self.state_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # ------------------------------------------------------------------ users

    def _migrate(self) -> None:
        """First start after an upgrade: ``auth.json`` (one admin) → ``users.json`` (version 2).

        The scrypt record is copied unchanged, so the session fingerprints and cached Basic
        credentials stay valid: nobody is logged out. Tokens get their owner (``admin``) and a
        version. Refuses (:class:`StateTooNew`) files from a newer version.
        """
        for path, supported in (
            (self.users_path, USERS_FORMAT_VERSION),
            (self.tokens_path, TOKENS_FORMAT_VERSION),
            (self.sessions_path, SESSIONS_FORMAT_VERSION),
        ):
            try:
                data = json.loads(path.read_bytes())
            except (OSError, ValueError):
                continue
            check_version(path, data, supported)
        if not self.auth_path.exists():
            return
        if self.users_path.exists():
            log.warning(
                "ignoring %s: %s exists (set passwords with `ipkvm user passwd`)",
                self.auth_path,
                self.users_path,
            )
            return
        with self._locked():
            if self.users_path.exists():
                return
            try:
                legacy = json.loads(self.auth_path.read_bytes())
            except (OSError, ValueError):
                return
            if not isinstance(legacy, dict) or not valid_scrypt(legacy.get("scrypt")):
                return
            name = legacy.get("user")
            if not isinstance(name, str) or not _USER_RE.match(name):
                return
            created = datetime.fromtimestamp(self.auth_path.stat().st_mtime, UTC)
            record = new_record(
                name, "admin", legacy["scrypt"], created.replace(microsecond=0).isoformat()
            )
            self._users_file.write(dump_users({name: record}))
            tokens = self._token_records()
            if self.tokens_path.exists():
                self._write_tokens(tokens)
            os.replace(self.auth_path, self.state_dir / LEGACY_BACKUP)
            log.warning(
                "migrated %s to %s (user %r, role admin; %d token(s) kept); the old file is "
                "kept as %s",
                self.auth_path,
                self.users_path,
                name,
                len(tokens),
                LEGACY_BACKUP,
            )

    def _users(self, *, for_change: bool = False) -> dict[str, dict[str, Any]]:
        """The users by name. Parsed once per change of the file (a ``stat`` otherwise: every
        request asks for the caller's role, ~1 µs instead of ~300 µs to re-validate 20 users);
        ``for_change`` gives a deep copy to modify and write back (under :meth:`_locked`)."""
        data, generation = self._users_file.read_versioned()
        if self._parsed is None or self._parsed[0] != generation:
            check_version(self.users_path, data, USERS_FORMAT_VERSION)
            self._parsed = (generation, parse_users(data))
        users = self._parsed[1]
        return copy.deepcopy(users) if for_change else users

    def _user(self, name: str) -> dict[str, Any] | None:
        if not isinstance(name, str):
            return None
        return self._users().get(name)

    def _write_users(self, users: dict[str, dict[str, Any]]) -> None:
        self._users_file.write(dump_users(users))

    def has_password(self) -> bool:
        return bool(self._users())

    def ensure_admin(self) -> str | None:
        """First start: create ``admin`` with a random password and return it (once). Else None."""
        with self._locked():
            if self._users():
                return None
            password = generate_password()
            self._write_users({ADMIN_USER: self._new_user(ADMIN_USER, password, "admin")})
            return password

    def _new_user(self, name: str, password: str, role: str) -> dict[str, Any]:
        return new_record(name, role, _scrypt_record(password), _now_iso())

    def add_user(self, name: str, password: str, role: Role = "viewer") -> UserInfo:
        if not isinstance(name, str) or not _USER_RE.match(name):
            raise AuthError(
                "user name must be 1-32 characters: letters, digits, . _ - "
                "(starting with a letter or digit)"
            )
        if not is_role(role):
            raise AuthError(f"role must be one of {', '.join(ROLES)}")
        check_password_rules(password, name)
        with self._locked():
            users = self._users(for_change=True)
            if name in users:
                raise AuthError(f"user {name!r} exists already")
            if len(users) >= MAX_USERS:
                raise AuthError(f"at most {MAX_USERS} users")
            users[name] = self._new_user(name, password, role)
            self._write_users(users)
        return _user_info(users[name])

    def remove_user(self, name: str) -> UserInfo:
        """Delete a user, their sessions and tokens (their connections close at once)."""
        with self._locked():
            users = self._users(for_change=True)
            rec = users.get(name)
            if rec is None:
                raise AuthError(f"no user {name!r}")
            if rec["role"] == "admin" and _admins(users) == 1:
                raise AuthError("cannot remove the last admin")
            del users[name]
            self._write_users(users)
            tokens = self._token_records()
            kept = [t for t in tokens if t.get("user") != name]
            if len(kept) != len(tokens):
                self._write_tokens(kept)
            records = self._sessions.load()
            if any(r.user == name for r in records.values()):
                self._sessions.save({d: r for d, r in records.items() if r.user != name})
        self._revoked()
        return _user_info(rec)

    def set_role(self, name: str, role: Role) -> UserInfo:
        """Change a user's role; their open connections obey it from their next message."""
        if not is_role(role):
            raise AuthError(f"role must be one of {', '.join(ROLES)}")
        return self._update(name, lambda rec, users: _set_role(rec, users, role))

    def set_ports(self, name: str, ports: list[int] | None) -> UserInfo:
        """Narrow a user's input and power rights to these switch ports (None: all ports)."""
        if not valid_ports(ports):
            raise AuthError("ports must be null or a list of port numbers 1-64")
        clean = sorted(set(ports)) if ports is not None else None
        return self._update(name, lambda rec, users: rec.__setitem__("ports", clean))

    def set_totp_required(self, name: str, required: bool) -> UserInfo:
        return self._update(name, lambda rec, users: rec.__setitem__("totp_required", required))

    def _update(
        self, name: str, change: Callable[[dict[str, Any], dict[str, dict[str, Any]]], None]
    ) -> UserInfo:
        with self._locked():
            users = self._users(for_change=True)
            rec = users.get(name)
            if rec is None:
                raise AuthError(f"no user {name!r}")
            change(rec, users)
            self._write_users(users)
        self._revoked()
        return _user_info(rec)

    def list_users(self) -> list[UserInfo]:
        return [_user_info(r) for _, r in sorted(self._users().items())]

    def user_info(self, name: str) -> UserInfo | None:
        rec = self._user(name)
        return _user_info(rec) if rec is not None else None

    def role_of(self, name: str) -> Role | None:
        rec = self._user(name)
        return rec["role"] if rec is not None else None

    def _owner_role(self, name: str) -> Role | None:
        """A token owner's role. Before any user exists (a token made before the first start, as
        the previous release allowed), tokens are the future ``admin``'s."""
        users = self._users()
        if name in users:
            return users[name]["role"]  # type: ignore[no-any-return]
        return "admin" if name == ADMIN_USER and not users else None

    # ------------------------------------------------------------------ password

    def set_password(self, password: str, user: str = ADMIN_USER) -> None:
        """Replace ``user``'s password (their browser sessions end; other users' stay)."""
        if not isinstance(user, str) or not _USER_RE.match(user):
            raise AuthError(f"invalid user name {user!r}")
        check_password_rules(password, user)
        with self._locked():
            users = self._users(for_change=True)
            rec = users.get(user)
            if rec is None:
                if users or user != ADMIN_USER:
                    raise AuthError(f"no user {user!r}")
                users[user] = self._new_user(user, password, "admin")
            else:
                rec["scrypt"] = _scrypt_record(password)
            self._write_users(users)
            records = self._sessions.load()
            if any(r.user == user for r in records.values()):
                self._sessions.save({d: r for d, r in records.items() if r.user != user})
        self._revoked()

    def verify_password(self, user: str, password: str) -> bool:
        """Check credentials (blocking: ~50 ms of scrypt; use :meth:`verify_password_async`).

        An unknown user costs the same scrypt as a known one (against a throw-away hash), so the
        time taken does not tell which names exist. A correct pair is remembered for a minute
        (keyed by an HMAC with a per-process key and the stored hash, never the plaintext) so API
        clients using Basic auth on every request do not pay scrypt each time.
        """
        if not isinstance(user, str) or not isinstance(password, str):
            return False
        if len(password) > MAX_PASSWORD_LENGTH:
            return False
        rec = self._user(user)
        sc = rec["scrypt"] if rec is not None else _DUMMY_SCRYPT
        if rec is not None:
            cache_key = self._cache_id(rec, user, password)
            if self._verified.get(cache_key, 0.0) > self.monotonic():
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
        ok = hmac.compare_digest(derived, expected) and rec is not None
        if ok and rec is not None:
            if len(self._verified) >= 16:
                self._verified.clear()
            self._verified[self._cache_id(rec, user, password)] = (
                self.monotonic() + _VERIFIED_CACHE_SECONDS
            )
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
        rec = self._user(user)
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

    # ------------------------------------------------------------------ two-factor (TOTP)

    def totp_enabled(self, user: str) -> bool:
        rec = self._user(user)
        return rec is not None and isinstance(rec.get("totp"), dict)

    def needs_enrolment(self, user: str) -> bool:
        """2FA is required for this user and not set up yet: only account routes are open."""
        rec = self._user(user)
        return rec is not None and bool(rec.get("totp_required")) and rec.get("totp") is None

    def totp_begin(self, user: str) -> str:
        """A new secret to enrol (pending until :meth:`totp_confirm` sees a code from it)."""
        from appliance import totp

        secret = totp.new_secret()

        def begin(rec: dict[str, Any], users: dict[str, dict[str, Any]]) -> None:
            rec["totp_pending"] = secret

        self._update(user, begin)
        return secret

    def totp_confirm(self, user: str, code: str) -> list[str]:
        """Enable 2FA with the pending secret if ``code`` is from it → new recovery codes."""
        from appliance import totp

        codes = totp.new_recovery_codes()
        with self._locked():
            users = self._users(for_change=True)
            rec = users.get(user)
            if rec is None:
                raise AuthError(f"no user {user!r}")
            pending = rec.get("totp_pending")
            if not isinstance(pending, str):
                raise AuthError("no two-factor enrolment in progress")
            step = totp.matching_step(pending, code, self.clock())
            if step is None:
                raise AuthError("wrong code: check the authenticator app's clock and try again")
            rec["totp"] = {"secret": pending, "last_step": step}
            rec["totp_pending"] = None
            rec["recovery"] = [totp.recovery_digest(c) for c in codes]
            self._write_users(users)
        return codes

    def totp_disable(self, user: str) -> UserInfo:
        def disable(rec: dict[str, Any], users: dict[str, dict[str, Any]]) -> None:
            rec["totp"] = None
            rec["totp_pending"] = None
            rec["recovery"] = []

        return self._update(user, disable)

    def totp_verify(self, user: str, code: str) -> Literal["totp", "recovery"] | None:
        """Check a second factor: a TOTP code not used before, or an unused recovery code (then
        spent). Blocking (writes ``users.json``): call it in a thread on the event loop."""
        from appliance import totp

        if not isinstance(code, str) or len(code) > 64:
            return None
        with self._locked():
            users = self._users(for_change=True)
            rec = users.get(user)
            if rec is None or not isinstance(rec.get("totp"), dict):
                return None
            state = rec["totp"]
            step = totp.matching_step(str(state.get("secret")), code, self.clock())
            last = state.get("last_step")
            if step is not None:
                if isinstance(last, int) and step <= last:
                    return None  # replay of a used code (or an older one)
                state["last_step"] = step
                self._write_users(users)
                return "totp"
            digest = totp.recovery_digest(code)
            codes = [c for c in rec.get("recovery") or [] if isinstance(c, str)]
            match = next((c for c in codes if hmac.compare_digest(c, digest)), None)
            if match is None:
                return None
            codes.remove(match)
            rec["recovery"] = codes
            self._write_users(users)
            return "recovery"

    # ------------------------------------------------------------------ tokens

    def _token_records(self) -> list[dict[str, Any]]:
        data = self._tokens.read()
        check_version(self.tokens_path, data, TOKENS_FORMAT_VERSION)
        if not isinstance(data, dict) or not isinstance(data.get("tokens"), list):
            return []
        out: list[dict[str, Any]] = []
        for t in data["tokens"]:
            if not isinstance(t, dict) or not all(
                isinstance(t.get(k), str) for k in ("id", "name", "sha256", "created")
            ):
                continue
            # version 1 tokens belonged to the one admin
            user = t.get("user", ADMIN_USER)
            role = t.get("role")
            if not isinstance(user, str) or not (role is None or is_role(role)):
                continue
            out.append({**t, "user": user, "role": role})
        return out

    def _write_tokens(self, records: list[dict[str, Any]]) -> None:
        self._tokens.write({"version": TOKENS_FORMAT_VERSION, "tokens": records})

    def create_token(
        self, name: str, user: str = ADMIN_USER, role: Role | None = None
    ) -> tuple[str, str]:
        """New API token called ``name`` for ``user`` → (id, token). Only its SHA-256 is stored.

        ``role`` narrows it (a token never has more rights than its owner has now)."""
        if not isinstance(name, str) or not _TOKEN_NAME_RE.match(name):
            raise AuthError(
                "token name must be 1-64 characters: letters, digits, . _ @ - "
                "(starting with a letter or digit)"
            )
        if role is not None and not is_role(role):
            raise AuthError(f"role must be one of {', '.join(ROLES)}")
        with self._locked():
            owner_role = self._owner_role(user)
            if owner_role is None:
                raise AuthError(f"no user {user!r}")
            if role is not None and rank(role) > rank(owner_role):
                raise AuthError(f"a token cannot have more rights than its user ({owner_role})")
            records = self._token_records()
            if any(t["name"] == name for t in records):
                raise AuthError(f"a token named {name!r} exists already")
            ids = {t["id"] for t in records}
            token_id = secrets.token_hex(4)
            while token_id in ids:
                token_id = secrets.token_hex(4)
            token = TOKEN_PREFIX + secrets.token_urlsafe(32)
            records.append(
                {
                    "id": token_id,
                    "name": name,
                    "sha256": token_digest(token),
                    "created": _now_iso(),
                    "user": user,
                    "role": role,
                }
            )
            self._write_tokens(records)
        return token_id, token

    def list_tokens(self, user: str | None = None) -> list[TokenInfo]:
        return [
            TokenInfo(t["id"], t["name"], t["created"], t["user"], t["role"])
            for t in self._token_records()
            if user is None or t["user"] == user
        ]

    def revoke_token(self, id_or_name: str, user: str | None = None) -> TokenInfo | None:
        """Remove the token with this id (or else this name), of ``user`` if given; None if
        there is none."""
        with self._locked():
            records = [t for t in self._token_records() if user is None or t["user"] == user]
            match = next((t for t in records if t["id"] == id_or_name), None) or next(
                (t for t in records if t["name"] == id_or_name), None
            )
            if match is None:
                return None
            self._write_tokens([t for t in self._token_records() if t["id"] != match["id"]])
        self._revoked()
        return TokenInfo(match["id"], match["name"], match["created"], match["user"], match["role"])

    def verify_token(self, token: str) -> str | None:
        """The token's name if ``token`` is valid now (sees other processes' changes at once)."""
        found = self.token_identity(token)
        return found.name if found is not None else None

    def token_identity(self, token: str) -> TokenInfo | None:
        """The valid token ``token`` is (its owner exists), else None."""
        if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX) or len(token) > 256:
            return None
        return self._token_by_digest(token_digest(token))

    def _token_by_digest(self, digest: str) -> TokenInfo | None:
        found: dict[str, Any] | None = None
        for t in self._token_records():
            if hmac.compare_digest(digest, t["sha256"]):
                found = t
        if found is None or self._owner_role(found["user"]) is None:
            return None
        return TokenInfo(found["id"], found["name"], found["created"], found["user"], found["role"])

    # ------------------------------------------------------------------ credentials

    def basic_credential(self, user: str = ADMIN_USER) -> Credential | None:
        """The credential a Basic-auth request gets if its password checks out.

        Take it *before* checking the password: should the password change in between, the
        connection is bound to the older hash and closed, never the other way round.
        """
        fingerprint = self.password_fingerprint(user)
        return Credential("basic", f"{user}:{fingerprint}") if fingerprint is not None else None

    def credential_valid(self, credential: Credential) -> bool:
        """Whether ``credential`` would still authenticate a request now.

        Reads only: a ``stat`` of the file concerned (re-read only if it changed), so open
        connections can be re-checked every second for almost nothing.
        """
        if credential.kind == "session":
            return self._session_user(credential.key) is not None
        if credential.kind == "token":
            return self._token_by_digest(credential.key) is not None
        if credential.kind == "basic":
            user, _, key = credential.key.partition(":")
            fingerprint = self.password_fingerprint(user)
            return fingerprint is not None and hmac.compare_digest(fingerprint, key)
        return False

    # ------------------------------------------------------------------ sessions

    def password_fingerprint(self, user: str = ADMIN_USER) -> str | None:
        """Binds sessions (and Basic-auth connections) to the user's current password hash: a
        new password ends them all. None when the user does not exist."""
        rec = self._user(user)
        if rec is None:
            return None
        return _fingerprint(rec)

    def _prune(self, records: dict[str, SessionRecord], now: float) -> None:
        """Drop expired sessions and those of an older password or a removed user."""
        users = self._users()
        for digest in [
            d
            for d, r in records.items()
            if r.expires <= now or r.user not in users or r.password != _fingerprint(users[r.user])
        ]:
            del records[digest]

    def create_session(self, user: str) -> str:
        """A new session for ``user`` (after the password was checked) → the cookie value.

        Blocking: takes the state-dir lock and writes ``sessions.json`` with fsync (use
        :meth:`create_session_async` on the event loop).
        """
        sid = secrets.token_urlsafe(32)
        with self._locked():
            fingerprint = self.password_fingerprint(user)
            if fingerprint is None:
                raise AuthError(f"no user {user!r}")
            now = self.clock()
            records = self._sessions.load()
            self._prune(records, now)
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
        fingerprint = self.password_fingerprint(record.user)
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
            self._prune(records, self.clock())
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


def _fingerprint(rec: dict[str, Any]) -> str:
    stored = str(rec["scrypt"]["hash"]).encode()
    return hashlib.sha256(b"ipkvm-session\0" + stored).hexdigest()[:32]


def _admins(users: dict[str, dict[str, Any]]) -> int:
    return sum(1 for r in users.values() if r["role"] == "admin")


def _set_role(rec: dict[str, Any], users: dict[str, dict[str, Any]], role: Role) -> None:
    if rec["role"] == "admin" and role != "admin" and _admins(users) == 1:
        raise AuthError("cannot demote the last admin")
    rec["role"] = role


def _user_info(rec: dict[str, Any]) -> UserInfo:
    return UserInfo(
        name=rec["name"],
        role=rec["role"],
        created=str(rec.get("created", "")),
        ports=tuple(rec["ports"]) if rec.get("ports") is not None else None,
        totp=isinstance(rec.get("totp"), dict),
        totp_required=bool(rec.get("totp_required")),
        recovery_left=len(rec.get("recovery") or []),
    )


def _now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def _scrypt_record(password: str) -> dict[str, Any]:
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
    return {"salt": _b64(salt), "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P, "hash": _b64(digest)}


_DUMMY_SCRYPT: dict[str, Any] = {
    "salt": _b64(b"\0" * 16),
    "n": SCRYPT_N,
    "r": SCRYPT_R,
    "p": SCRYPT_P,
    "hash": _b64(b"\0" * 32),
}


def check_password_rules(password: str, user: str | None = None) -> None:
    """The minimum rules: 8-1024 characters, no NUL or line breaks, not the user name, not one
    character repeated. (Length beats composition rules: NIST SP 800-63B.)"""
    if not isinstance(password, str) or not password:
        raise AuthError("password must not be empty")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AuthError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AuthError(f"password must be at most {MAX_PASSWORD_LENGTH} characters")
    if "\0" in password or "\n" in password or "\r" in password:
        raise AuthError("password must not contain NUL or line breaks")
    if user is not None and password.casefold() == user.casefold():
        raise AuthError("password must not be the user name")
    if len(set(password)) == 1:
        raise AuthError("password must not be one character repeated")


@dataclass(slots=True)
class _Failures:
    count: int
    last: float
    pending: int = 0
    refused: int = 0  # attempts shed unchecked (server busy): no backoff, but less priority
    reported: float = -1e18  # when a refused (locked) attempt was last written to the audit log


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

    def report_lock(self, addr: str | None, interval: float = 10.0) -> bool:
        """Whether a throttled attempt from ``addr`` should go to the audit log now: at most one
        per ``interval`` seconds per client, so a client hammering while locked out cannot flush
        the (size-bounded) audit log with "locked" lines."""
        _, entry = self._get(addr)
        if entry is None:
            return True
        now = self.clock()
        if now - entry.reported < interval:
            return False
        entry.reported = now
        return True

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
