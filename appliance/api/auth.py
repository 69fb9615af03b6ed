"""Authentication for the aiohttp app: one middleware in front of every route, plus login/logout.

Everything is private unless listed as public (login page and its assets, health check). A request
proves who it is with one of:

- the ``ipkvm_session`` cookie from ``POST /api/auth/login`` (browsers; the session is kept,
  hashed, in ``STATE_DIR/sessions.json``, so a restart does not log anyone out),
- ``Authorization: Bearer ipk_...`` (API tokens from ``ipkvm token create``),
- HTTP Basic with the admin password (curl, fleet tools), throttled like logins,
- ``X-Auth-Token: <session>`` (Redfish sessions from ``POST /redfish/v1/SessionService/Sessions``:
  the same sessions as the cookie's, sent in the header Redfish clients use).

Browsers attach cookies (and cached Basic credentials) to cross-site requests, so a state-changing
request authenticated that way, and every WebSocket upgrade, must come from our own origin: an
``Origin`` header naming another host:port gets 403. Bearer tokens are never attached by a
browser on its own, so API clients using them are not origin-checked (except WebSockets).

Failed logins are throttled per client address (:func:`client_address`): the TCP peer, or —
when the peer is one of ``trusted_proxies`` — the client the proxy names in its forwarding header.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import hdrs, web

from appliance.api.httpjson import BodyTooLarge, read_body
from appliance.api.openapi import (
    BOOLEAN,
    EMPTY,
    Operation,
    Reply,
    array,
    describe,
    enum,
    integer,
    nullable,
    obj,
    ok,
    string,
)
from appliance.auth import (
    MAX_PASSWORD_LENGTH,
    SCRYPT_WORKERS,
    AuthStore,
    Credential,
    LoginThrottle,
)
from appliance.auth_gate import Overloaded, PasswordCheckGate
from appliance.jsondecode import JsonError, decode_json
from appliance.roles import PERMISSIONS, ROLE_RIGHTS, ROLES, Role, narrower

SESSION_COOKIE = "ipkvm_session"
AUTH_TOKEN_HEADER = "X-Auth-Token"
REALM = "ipkvm"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
LOGIN_PATH = "/api/auth/login"
LOGOUT_PATH = "/api/auth/logout"
ME_PATH = "/api/auth/me"
_MAX_LOGIN_BODY = 16 * 1024  # public route: far below MAX_JSON_BODY, a login is ~100 bytes
PROXY_HEADERS = ("x-forwarded-for", "forwarded")

ProxyNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AuthInfo:
    """Who made the request and how they proved it (``request[AUTH]``).

    ``credential`` names the session, token or password that was used, so a connection opened by
    this request can be closed when that credential is revoked (``appliance.api.connections``).
    """

    user: str
    via: str  # "session" | "token" | "basic"
    session_id: str | None = None
    credential: Credential | None = None
    token: str | None = None  # the token's name (via "token")
    token_role: Role | None = None  # a token's narrower role (None: the user's own)


@dataclass(frozen=True, slots=True)
class AuthSettings:
    public_paths: frozenset[str]
    public_prefixes: tuple[str, ...]
    secure_cookies: bool
    login_page: str
    trusted_proxies: tuple[ProxyNetwork, ...] = ()
    proxy_header: str = "x-forwarded-for"
    public_routes: frozenset[tuple[str, str]] = frozenset()
    """(method, path) pairs public for that method only (Redfish's login is a POST to a path
    whose GET lists sessions and needs a login)."""

    def is_public(self, method: str, path: str) -> bool:
        return (
            path in self.public_paths
            or path.startswith(self.public_prefixes)
            or (method, path) in self.public_routes
        )


AUTH_STORE: web.AppKey[AuthStore] = web.AppKey("ipkvm_auth_store", AuthStore)
LOGIN_THROTTLE: web.AppKey[LoginThrottle] = web.AppKey("ipkvm_login_throttle", LoginThrottle)
AUTH_SETTINGS: web.AppKey[AuthSettings] = web.AppKey("ipkvm_auth_settings", AuthSettings)
PASSWORD_GATE: web.AppKey[PasswordCheckGate] = web.AppKey("ipkvm_password_gate", PasswordCheckGate)
# Typed request keys (aiohttp >= 3.14): the middleware sets both on every request it lets through.
AUTH: web.RequestKey[AuthInfo | None] = web.RequestKey("auth")
"""The request's :class:`AuthInfo` (None on a public path without a session)."""
USER: web.RequestKey[str | None] = web.RequestKey("user")
"""The authenticated user name (None on a public path without a session)."""


def get_auth(request: web.Request) -> AuthInfo | None:
    """The request's identity (None on public paths without a session)."""
    auth = request.get(AUTH)
    return auth if isinstance(auth, AuthInfo) else None


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    resp = web.json_response(body, status=status, headers=headers)
    resp.headers[hdrs.CACHE_CONTROL] = "no-store"
    return resp


def _too_many(wait: float) -> web.Response:
    seconds = max(1, math.ceil(wait))
    return _json(
        429,
        {"error": f"too many failed attempts; retry in {seconds} s", "retry_after": seconds},
        {hdrs.RETRY_AFTER: str(seconds)},
    )


def _overloaded(exc: Overloaded) -> web.Response:
    """Shed before scrypt: the client may retry; nothing was checked, nothing counts against it."""
    seconds = max(1, math.ceil(exc.retry_after))
    return _json(
        503,
        {
            "error": f"too many password checks in progress; retry in {seconds} s",
            "retry_after": seconds,
        },
        {hdrs.RETRY_AFTER: str(seconds)},
    )


def _audit_login(
    request: web.Request,
    user: str | None,
    outcome: Literal["ok", "failed", "locked"],
    **details: Any,
) -> None:
    """Logins (browser and failed HTTP Basic) in the audit log; the user name as typed."""
    shown = user[:64] if isinstance(user, str) else None
    request.app[AUTH_STORE].audit.record(
        "login", user=shown, address=client_address(request), outcome=outcome, **details
    )


def _basic_challenge() -> dict[str, str]:
    return {hdrs.WWW_AUTHENTICATE: f'Basic realm="{REALM}", charset="UTF-8"'}


# --------------------------------------------------------------------------- origin check


def _split_host(value: str) -> tuple[str, int | None] | None:
    """``host[:port]`` / ``[v6][:port]`` → (host, port); default ports 80/443 count as none."""
    value = value.strip().lower()
    if not value:
        return None
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        host, rest = value[1:end], value[end + 1 :]
        port_text = rest[1:] if rest.startswith(":") else ("" if not rest else None)
    else:
        host, sep, port_text = value.partition(":")
        if ":" in port_text:
            return None
        if not sep:
            port_text = ""
    if port_text is None or (port_text and not port_text.isdigit()):
        return None
    port = int(port_text) if port_text else None
    return host, None if port in (80, 443) else port


def same_origin(request: web.Request) -> bool:
    """No ``Origin`` header, or one whose host:port is this request's ``Host``.

    Compared by host and port only (a TLS-terminating proxy changes the scheme); ``Origin: null``
    (sandboxed frames, some redirects) never matches.
    """
    origin = request.headers.get(hdrs.ORIGIN)
    if origin is None:
        return True
    scheme, sep, rest = origin.partition("://")
    if not sep or scheme.lower() not in ("http", "https") or "/" in rest:
        return False
    theirs = _split_host(rest)
    ours = _split_host(request.host)
    return theirs is not None and theirs == ours


def _is_websocket(request: web.Request) -> bool:
    return request.headers.get(hdrs.UPGRADE, "").lower() == "websocket"


# --------------------------------------------------------------------------- client address


def _parse_address(text: str) -> _Address | None:
    """An address as proxies write it: ``1.2.3.4``, ``1.2.3.4:5678``, ``2001:db8::1``,
    ``[2001:db8::1]`` or ``[2001:db8::1]:5678``. IPv4-mapped IPv6 counts as the IPv4 address
    (a dual-stack listener reports ``::ffff:10.0.0.1`` for ``10.0.0.1``)."""
    text = text.strip()
    if text.startswith("["):
        end = text.find("]")
        rest = text[end + 1 :]
        if end < 0 or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
        text = text[1:end]
    elif text.count(":") == 1:
        text, _, port = text.partition(":")
        if not port.isdigit():
            return None
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _forwarded_for(value: str) -> str | None:
    """The ``for=`` node of one RFC 7239 ``Forwarded`` element (quotes removed), None if absent."""
    for pair in value.split(";"):
        name, sep, node = pair.partition("=")
        if sep and name.strip().lower() == "for":
            node = node.strip()
            if len(node) >= 2 and node[0] == node[-1] == '"':
                node = node[1:-1]
            return node
    return None


def _hops(request: web.Request, header: str) -> list[str | None]:
    """The forwarding chain, oldest first; None marks a ``Forwarded`` element without ``for=``.

    Split on every comma, quotes or not: a quote the client opens must not swallow the element a
    trusted proxy appends after it (the walk from the right only reads the proxies' part).
    """
    elements = [e.strip() for v in request.headers.getall(header, ()) for e in v.split(",")]
    if header == "forwarded":
        return [_forwarded_for(e) for e in elements]
    return list(elements)


def client_address(request: web.Request) -> str | None:
    """The address login throttling (and anything else keyed by client) should use.

    The TCP peer, unless the peer is in ``trusted_proxies``: then the proxy's header
    (``X-Forwarded-For`` or ``Forwarded: for=``, whichever ``proxy_header`` names — the other is
    ignored, as a proxy that does not write a header passes the client's own copy through) is
    walked from the right, skipping trusted hops; the first untrusted address is the client (the
    leftmost when every hop is trusted). Entries left of it were written by the client and are
    never read. A malformed entry on the way falls back to the peer. From an untrusted peer no
    header is read at all, so a client cannot choose its address.
    """
    peer = request.remote
    settings = request.app[AUTH_SETTINGS]
    if not settings.trusted_proxies or peer is None:
        return peer
    trusted = settings.trusted_proxies
    peer_ip = _parse_address(peer)
    if peer_ip is None or not any(peer_ip in net for net in trusted):
        return peer
    client = peer_ip
    for raw in reversed(_hops(request, settings.proxy_header)):
        ip = _parse_address(raw) if raw is not None else None
        if ip is None:
            log.debug(
                "malformed %s entry %r from trusted proxy %s: using the proxy's address",
                settings.proxy_header,
                raw,
                peer,
            )
            return peer
        client = ip
        if not any(ip in net for net in trusted):
            break
    return str(client)


# --------------------------------------------------------------------------- middleware


async def _check_basic(
    request: web.Request, store: AuthStore, throttle: LoginThrottle, credentials: str
) -> AuthInfo | web.Response:
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return _json(401, {"error": "malformed Basic credentials"}, _basic_challenge())
    user, sep, password = decoded.partition(":")
    if not sep:
        return _json(401, {"error": "malformed Basic credentials"}, _basic_challenge())
    # before the check: a change in between fails closed
    credential = store.basic_credential(user)
    if store.verify_cached(user, password):
        return AuthInfo(user, "basic", credential=credential)
    ok = await throttled_verify(request, store, throttle, user, password)
    if isinstance(ok, web.Response):
        return ok
    if not ok:
        _audit_login(request, user, "failed", via="basic", reason="wrong user or password")
        return _json(401, {"error": "wrong user or password"}, _basic_challenge())
    return AuthInfo(user, "basic", credential=credential)


async def check_login(request: web.Request, user: str, password: str) -> bool | web.Response:
    """A password check for another login route (Redfish's sessions), throttled and bounded like
    the console's login; a Response is the 429 or 503 to answer instead."""
    store, throttle = request.app[AUTH_STORE], request.app[LOGIN_THROTTLE]
    result = await throttled_verify(request, store, throttle, user, password)
    if result is True:
        _audit_login(request, user, "ok", via="redfish")
    elif result is False:
        _audit_login(request, user, "failed", via="redfish", reason="wrong user or password")
    return result


async def throttled_verify(
    request: web.Request, store: AuthStore, throttle: LoginThrottle, user: str, password: str
) -> bool | web.Response:
    """scrypt in the thread pool, under the per-client backoff (429 when it says wait) and the
    global bound on checks (503 when too many are queued; see ``appliance.auth_gate``)."""
    addr = client_address(request)
    wait = throttle.check(addr)
    if wait > 0:
        if throttle.report_lock(addr):
            _audit_login(request, user, "locked", retry_after=math.ceil(wait))
        return _too_many(wait)
    if len(password) > MAX_PASSWORD_LENGTH:
        throttle.begin(addr)
        throttle.failure(addr)
        return False
    throttle.begin(addr)
    ok = False
    try:
        async with request.app[PASSWORD_GATE].admit(lambda: throttle.suspicion(addr)):
            ok = await store.verify_password_async(user, password)
    except Overloaded as exc:
        throttle.refused(addr)
        return _overloaded(exc)
    except BaseException:
        throttle.failure(addr)
        raise
    if ok:
        throttle.success(addr)
    else:
        throttle.failure(addr)
    return ok


async def _authenticate(request: web.Request) -> AuthInfo | web.Response | None:
    """Identity from the Authorization header (which wins) or the session cookie."""
    store = request.app[AUTH_STORE]
    header = request.headers.get(hdrs.AUTHORIZATION)
    token = request.headers.get(AUTH_TOKEN_HEADER)
    if header is None and token is not None:
        auth = _session_auth(store, token.strip())
        if auth is None:
            return _json(401, {"error": "invalid or expired session (X-Auth-Token)"})
        return auth
    if header is not None:
        scheme, _, credentials = header.strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer":
            token = credentials.strip()
            info = store.token_identity(token)
            if info is None:
                return _json(
                    401,
                    {"error": "invalid or revoked token"},
                    {hdrs.WWW_AUTHENTICATE: f'Bearer realm="{REALM}", error="invalid_token"'},
                )
            return AuthInfo(
                info.user,
                "token",
                credential=Credential.for_token(token),
                token=info.name,
                token_role=info.role,
            )
        if scheme == "basic":
            return await _check_basic(request, store, request.app[LOGIN_THROTTLE], credentials)
        return _json(
            401,
            {"error": "unsupported Authorization scheme (use Bearer or Basic)"},
            _basic_challenge(),
        )
    return _session_auth(store, request.cookies.get(SESSION_COOKIE))


def _session_auth(store: AuthStore, sid: str | None) -> AuthInfo | None:
    user = store.check_session(sid)
    if user is None or sid is None:
        return None
    return AuthInfo(user, "session", sid, Credential.for_session(sid))


def _wants_html(request: web.Request) -> bool:
    return (
        request.method in ("GET", "HEAD")
        and not request.path.startswith(("/api/", "/redfish"))
        and not _is_websocket(request)
        and "text/html" in request.headers.get(hdrs.ACCEPT, "")
    )


def _unauthenticated(request: web.Request, settings: AuthSettings) -> web.StreamResponse:
    """Pages redirect to the login page; API calls get 401 JSON.

    The Basic challenge (which makes browsers pop a password dialog) goes only to non-browser API
    clients: browsers send ``Sec-Fetch-Mode`` on every request, curl and scripts do not.
    """
    resp: web.StreamResponse
    if _wants_html(request):
        resp = web.Response(
            status=302, headers={hdrs.LOCATION: settings.login_page, hdrs.CACHE_CONTROL: "no-store"}
        )
    else:
        challenge = (
            request.path.startswith(("/api/", "/redfish"))
            and hdrs.SEC_FETCH_MODE not in request.headers
        )
        resp = _json(
            401, {"error": "authentication required"}, _basic_challenge() if challenge else None
        )
    if SESSION_COOKIE in request.cookies:
        _clear_cookie(resp, settings)
    return resp


def _forbidden_origin() -> web.Response:
    return _json(403, {"error": "cross-origin request refused (Origin does not match Host)"})


@web.middleware
async def auth_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    settings = request.app[AUTH_SETTINGS]
    state_changing = request.method not in SAFE_METHODS
    websocket = _is_websocket(request)
    if settings.is_public(request.method, request.path):
        if (state_changing or websocket) and not same_origin(request):
            return _forbidden_origin()
        auth = _session_auth(request.app[AUTH_STORE], request.cookies.get(SESSION_COOKIE))
        request[AUTH] = auth
        request[USER] = auth.user if auth is not None else None
        return await handler(request)  # type: ignore[no-any-return]
    result = await _authenticate(request)
    if isinstance(result, web.StreamResponse):
        return result
    if result is None:
        return _unauthenticated(request, settings)
    if (websocket or (state_changing and result.via != "token")) and not same_origin(request):
        return _forbidden_origin()
    request[AUTH] = result
    request[USER] = result.user
    return await handler(request)  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- routes


def _set_cookie(resp: web.StreamResponse, settings: AuthSettings, sid: str, ttl: float) -> None:
    resp.set_cookie(
        SESSION_COOKIE,
        sid,
        max_age=max(1, int(ttl)),
        path="/",
        httponly=True,
        samesite="Strict",
        secure=settings.secure_cookies,
    )


def _clear_cookie(resp: web.StreamResponse, settings: AuthSettings) -> None:
    resp.del_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=settings.secure_cookies,
    )


@describe(
    Operation(
        permission="public",
        summary="Log in: a session cookie for the password",
        description=f"Takes at most {_MAX_LOGIN_BODY} bytes. Failures are throttled per client "
        "address (3 free tries, then 1 s, 2 s, ... 5 min).",
        tag="auth",
        public=True,
        body=obj(
            ("user", "password"),
            user=string(),
            password=string(),
            code=string("the TOTP code or a recovery code (users with two-factor login)"),
        ),
        replies={
            200: Reply(
                "logged in",
                obj(("user",), user=string(), enrolment_needed=BOOLEAN),
                headers={"Set-Cookie": "ipkvm_session=...; HttpOnly; SameSite=Strict"},
            )
        },
        errors={
            401: "wrong user or password, or a two-factor code is needed "
            '(`"totp_required": true`) or wrong',
            429: "too many failed attempts from this address (Retry-After)",
            503: "too many password checks in progress (Retry-After); not counted as a failure",
        },
    )
)
async def login(request: web.Request) -> web.StreamResponse:
    """``{"user", "password"}`` → session cookie. 400 malformed, 401 wrong, 429 throttled."""
    store = request.app[AUTH_STORE]
    throttle = request.app[LOGIN_THROTTLE]
    settings = request.app[AUTH_SETTINGS]
    wait = throttle.check(client_address(request))
    if wait > 0:
        if throttle.report_lock(client_address(request)):
            _audit_login(request, None, "locked", retry_after=math.ceil(wait))
        return _too_many(wait)
    try:
        data = decode_json(await read_body(request, _MAX_LOGIN_BODY))
    except BodyTooLarge as exc:
        return _json(413, {"error": str(exc)})
    except JsonError as exc:
        return _json(400, {"error": f'{exc} (send {{"user": ..., "password": ...}})'})
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("user"), str)
        or not isinstance(data.get("password"), str)
    ):
        return _json(400, {"error": "fields 'user' and 'password' (strings) are required"})
    user, password = data["user"], data["password"]
    code = data.get("code")
    ok = await throttled_verify(request, store, throttle, user, password)
    if isinstance(ok, web.Response):
        return ok
    if not ok:
        _audit_login(request, user, "failed", reason="wrong user or password")
        return _json(401, {"error": "wrong user or password"})
    second = None
    if store.totp_enabled(user):
        if not isinstance(code, str) or not code.strip():
            return _json(401, {"error": "two-factor code required", "totp_required": True})
        addr = client_address(request)
        throttle.begin(addr)  # a wrong code counts like a wrong password
        second = await asyncio.to_thread(store.totp_verify, user, code)
        if second is None:
            throttle.failure(addr)
            _audit_login(request, user, "failed", reason="wrong or reused two-factor code")
            return _json(
                401, {"error": "wrong or already used two-factor code", "totp_required": True}
            )
        throttle.success(addr)
    await store.delete_session_async(request.cookies.get(SESSION_COOKIE))  # no session fixation
    sid = await store.create_session_async(user)  # persisted: survives a restart
    _audit_login(request, user, "ok", second_factor=second)
    # a user who must enrol in 2FA first: the login page sends them to /account
    resp = _json(200, {"user": user, "enrolment_needed": store.needs_enrolment(user)})
    _set_cookie(resp, settings, sid, store.session_ttl)
    return resp


@describe(
    Operation(
        permission="public",
        summary="Log out: end this browser's session and clear its cookie",
        description="Public, so an expired session can still clear its cookie. Connections "
        "the session opened are closed (WebSockets with code 4401).",
        tag="auth",
        public=True,
        replies={200: ok("logged out", EMPTY)},
    )
)
async def logout(request: web.Request) -> web.StreamResponse:
    """End this browser's session (public, so an expired session can still clear its cookie)."""
    await request.app[AUTH_STORE].delete_session_async(request.cookies.get(SESSION_COOKIE))
    resp = _json(200, {})
    _clear_cookie(resp, request.app[AUTH_SETTINGS])
    return resp


@describe(
    Operation(
        permission="account",
        summary="Who this request is authenticated as, and how",
        tag="auth",
        replies={
            200: ok(
                "the user",
                obj(
                    ("user", "via", "role", "rights"),
                    user=string(),
                    via=enum("session", "token", "basic"),
                    role=enum(*ROLES),
                    rights=array(enum(*PERMISSIONS)),
                    ports=nullable(array(integer(1))),
                    totp=BOOLEAN,
                    totp_required=BOOLEAN,
                    enrolment_needed=BOOLEAN,
                    token=nullable(string()),
                ),
            )
        },
    )
)
async def me(request: web.Request) -> web.StreamResponse:
    auth = get_auth(request)
    if auth is None:  # unreachable behind the middleware; kept for safety
        return _json(401, {"error": "authentication required"})
    store = request.app[AUTH_STORE]
    info = store.user_info(auth.user)
    role = store.role_of(auth.user) or "viewer"
    if auth.via == "token" and auth.token_role is not None:
        role = narrower(role, auth.token_role)
    return _json(
        200,
        {
            "user": auth.user,
            "via": auth.via,
            "role": role,
            "rights": sorted(ROLE_RIGHTS[role]),
            "ports": list(info.ports) if info is not None and info.ports is not None else None,
            "totp": info.totp if info is not None else False,
            "totp_required": info.totp_required if info is not None else False,
            "enrolment_needed": auth.via == "session" and store.needs_enrolment(auth.user),
            "token": auth.token,
        },
    )


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """The UI must not be framed by other sites (clickjacking a keyboard is bad)."""
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")


def setup_auth(
    app: web.Application,
    store: AuthStore,
    *,
    public_paths: set[str],
    public_prefixes: tuple[str, ...] = (),
    public_routes: Iterable[tuple[str, str]] = (),
    secure_cookies: bool,
    throttle: LoginThrottle | None = None,
    login_page: str = "/login",
    trusted_proxies: Iterable[ProxyNetwork | str] = (),
    proxy_header: str = "x-forwarded-for",
) -> None:
    """Install the middleware, the login/logout/me routes and security headers on ``app``.

    Call before other middlewares are appended that need ``request[AUTH]``. ``throttle`` is
    injectable (tests use a fake clock); the default is 3 free tries then 1 s, 2 s ... 5 min.
    ``trusted_proxies`` (``server.trusted_proxies``) and ``proxy_header`` (``server.proxy_header``)
    decide :func:`client_address`; ``secure_cookies`` alone decides the cookie's ``Secure`` flag
    (no forwarded header changes it).
    """
    if proxy_header not in PROXY_HEADERS:
        raise ValueError(f"proxy_header must be one of {PROXY_HEADERS}, not {proxy_header!r}")
    networks = tuple(ipaddress.ip_network(n) if isinstance(n, str) else n for n in trusted_proxies)
    app[AUTH_STORE] = store
    app[LOGIN_THROTTLE] = throttle if throttle is not None else LoginThrottle()
    app[PASSWORD_GATE] = PasswordCheckGate(slots=SCRYPT_WORKERS)
    app[AUTH_SETTINGS] = AuthSettings(
        public_paths=frozenset(public_paths) | {LOGIN_PATH, LOGOUT_PATH, login_page},
        public_prefixes=tuple(public_prefixes),
        public_routes=frozenset(public_routes),
        secure_cookies=secure_cookies,
        login_page=login_page,
        trusted_proxies=networks,
        proxy_header=proxy_header,
    )
    app.middlewares.append(auth_middleware)
    app.router.add_post(LOGIN_PATH, login)
    app.router.add_post(LOGOUT_PATH, logout)
    app.router.add_get(ME_PATH, me)
    app.on_response_prepare.append(_security_headers)
