"""The auth middleware and routes on a real aiohttp server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import ssl
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from appliance.api.auth import AUTH_STORE, SESSION_COOKIE, USER, get_auth, setup_auth
from appliance.auth import AuthStore, LoginThrottle
from appliance.tls import ensure_certificate, ssl_context

ROOT = Path(__file__).resolve().parent.parent
# The middleware stores the identity under typed web.RequestKey keys: a plain string key would
# warn, and here the warning fails the request (500) and so the test.
pytestmark = pytest.mark.filterwarnings("error::aiohttp.web.NotAppKeyWarning")
PASSWORD = "right-password"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_app(
    store: AuthStore, *, secure: bool = False, throttle: LoginThrottle | None = None
) -> web.Application:
    app = web.Application()
    setup_auth(
        app,
        store,
        public_paths={"/login", "/api/health"},
        public_prefixes=("/static/",),
        secure_cookies=secure,
        throttle=throttle,
    )

    async def private(request: web.Request) -> web.Response:
        auth = get_auth(request)
        assert auth is not None
        return web.json_response({"user": request[USER], "via": auth.via})

    async def page(request: web.Request) -> web.Response:
        return web.Response(text="<h1>console</h1>", content_type="text/html")

    async def public(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def ws(request: web.Request) -> web.WebSocketResponse:
        sock = web.WebSocketResponse()
        await sock.prepare(request)
        await sock.send_str(f"hello {request[USER]}")
        await sock.close()
        return sock

    app.router.add_get("/api/private", private)
    app.router.add_post("/api/private", private)
    app.router.add_get("/", page)
    app.router.add_get("/login", page)
    app.router.add_get("/api/health", public)
    app.router.add_get("/api/ws", ws)
    return app


Client = TestClient[web.Request, web.Application]
ClientFactory = Callable[..., Awaitable[Client]]


@pytest.fixture
async def make_client() -> AsyncIterator[ClientFactory]:
    clients: list[TestClient[web.Request, web.Application]] = []

    async def factory(
        store: AuthStore, **kwargs: object
    ) -> TestClient[web.Request, web.Application]:
        client: Client = TestClient(TestServer(make_app(store, **kwargs), host="127.0.0.1"))  # type: ignore[arg-type]
        await client.start_server()
        clients.append(client)
        return client

    yield factory
    for c in clients:
        await c.close()


def who(body: dict[str, Any]) -> dict[str, Any]:
    """The identity part of ``/api/auth/me`` (it also lists role, rights, 2FA state)."""
    return {"user": body["user"], "via": body["via"]}


def basic_auth(password: str, user: str = "admin") -> dict[str, str]:
    return {"Authorization": aiohttp.encode_basic_auth(user, password)}


def store_with_password(tmp_path: Path, **kwargs: object) -> AuthStore:
    store = AuthStore(tmp_path / "state", **kwargs)  # type: ignore[arg-type]
    store.set_password(PASSWORD)
    return store


async def login(
    client: TestClient[web.Request, web.Application], password: str = PASSWORD
) -> aiohttp.ClientResponse:
    return await client.post("/api/auth/login", json={"user": "admin", "password": password})


async def cli(*args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    """Run ``python -m appliance ...`` as a separate process (without blocking the server)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "appliance",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    async with asyncio.timeout(60):
        out, err = await proc.communicate(stdin)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_generated_password_logs_in_with_strict_cookie(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    store = AuthStore(tmp_path / "state")
    password = store.ensure_admin()
    assert password is not None
    client = await make_client(store)
    resp = await client.get("/api/private")
    assert resp.status == 401
    assert await resp.json() == {"error": "authentication required"}
    resp = await login(client, password)
    assert resp.status == 200
    assert await resp.json() == {"user": "admin", "enrolment_needed": False}
    cookie = resp.headers["Set-Cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Max-Age=43200" in cookie
    assert "Path=/" in cookie and "Secure" not in cookie
    resp = await client.get("/api/auth/me")
    assert who(await resp.json()) == {"user": "admin", "via": "session"}
    assert resp.headers["X-Frame-Options"] == "DENY"


async def test_wrong_password_then_throttled_with_growing_retry_after(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    clock = FakeClock()
    client = await make_client(store_with_password(tmp_path), throttle=LoginThrottle(clock=clock))
    for _ in range(3):
        resp = await login(client, "wrong-password")
        assert resp.status == 401
        assert await resp.json() == {"error": "wrong user or password"}
    retry_afters = []
    for _ in range(3):
        resp = await login(client, PASSWORD)  # even the right password waits
        assert resp.status == 429
        body = await resp.json()
        retry_afters.append(int(resp.headers["Retry-After"]))
        assert body["retry_after"] == retry_afters[-1]
        clock.advance(retry_afters[-1])
        assert (await login(client, "wrong-again")).status == 401
    assert retry_afters == [1, 2, 4]
    clock.advance(8)
    assert (await login(client)).status == 200
    assert (await login(client, "wrong-password")).status == 401  # success reset the count


async def test_login_rejects_malformed_bodies(tmp_path: Path, make_client: ClientFactory) -> None:
    client = await make_client(store_with_password(tmp_path))
    resp = await client.post("/api/auth/login", data=b"{not json")
    assert resp.status == 400 and "malformed JSON" in (await resp.json())["error"]
    bodies: list[object] = [{"user": "admin"}, {"password": PASSWORD}, {"user": 1}, []]
    for body in bodies:
        resp = await client.post("/api/auth/login", json=body)
        assert resp.status == 400
        assert "'user' and 'password'" in (await resp.json())["error"]
    assert (
        await client.post("/api/auth/login", json={"user": "root", "password": PASSWORD})
    ).status == 401


async def test_session_expires(tmp_path: Path, make_client: ClientFactory) -> None:
    clock = FakeClock()
    client = await make_client(store_with_password(tmp_path, session_ttl=600, clock=clock))
    resp = await login(client)
    assert "Max-Age=600" in resp.headers["Set-Cookie"]
    assert (await client.get("/api/private")).status == 200
    clock.advance(599)
    assert (await client.get("/api/private")).status == 200
    clock.advance(2)
    resp = await client.get("/api/private")
    assert resp.status == 401
    assert "Max-Age=0" in resp.headers.get("Set-Cookie", "")  # the dead cookie is cleared


async def test_logout_invalidates_the_session(tmp_path: Path, make_client: ClientFactory) -> None:
    client = await make_client(store_with_password(tmp_path))
    await login(client)
    sid = client.session.cookie_jar.filter_cookies(client.make_url("/"))[SESSION_COOKIE].value
    resp = await client.post("/api/auth/logout")
    assert resp.status == 200 and await resp.json() == {}
    assert "Max-Age=0" in resp.headers["Set-Cookie"]
    assert (await client.get("/api/private")).status == 401
    # replaying the old cookie does not work either
    resp = await client.get("/api/private", headers={"Cookie": f"{SESSION_COOKIE}={sid}"})
    assert resp.status == 401


async def test_unauthenticated_pages_redirect_and_api_challenge(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    client = await make_client(store_with_password(tmp_path))
    resp = await client.get("/", headers={"Accept": "text/html"}, allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "/login"
    resp = await client.get("/api/private")
    assert resp.status == 401 and resp.headers["WWW-Authenticate"].startswith('Basic realm="ipkvm"')
    resp = await client.get("/api/private", headers={"Sec-Fetch-Mode": "cors"})
    assert resp.status == 401 and "WWW-Authenticate" not in resp.headers  # no browser dialog
    assert (await client.get("/api/health")).status == 200
    assert (await client.get("/login")).status == 200
    assert (await client.get("/static/app.js")).status == 404  # public, just not there


async def test_token_from_cli_accepted_at_once_then_revoked(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    store = store_with_password(tmp_path)
    client = await make_client(store)
    state = str(store.state_dir)
    code, out, err = await cli("token", "create", "ci-runner", "--state-dir", state)
    assert code == 0, err
    token = out.strip()
    assert token.startswith("ipk_") and out.count("\n") == 1  # only the token on stdout
    auth = {"Authorization": f"Bearer {token}"}
    resp = await client.get("/api/auth/me", headers=auth)
    assert resp.status == 200
    body = await resp.json()
    assert who(body) == {"user": "admin", "via": "token"}  # the token's owner
    assert body["token"] == "ci-runner" and body["role"] == "admin"
    code, out, _ = await cli("token", "list", "--state-dir", state)
    assert code == 0 and "ci-runner" in out and token not in out
    code, _, err = await cli("token", "revoke", "ci-runner", "--state-dir", state)
    assert code == 0, err
    resp = await client.get("/api/private", headers=auth)
    assert resp.status == 401
    assert await resp.json() == {"error": "invalid or revoked token"}
    code, _, err = await cli("token", "revoke", "ci-runner", "--state-dir", state)
    assert code == 1 and "no token" in err


async def test_basic_auth(tmp_path: Path, make_client: ClientFactory) -> None:
    client = await make_client(store_with_password(tmp_path))
    resp = await client.get("/api/auth/me", headers=basic_auth(PASSWORD))
    assert resp.status == 200
    assert who(await resp.json()) == {"user": "admin", "via": "basic"}
    assert SESSION_COOKIE not in resp.cookies  # Basic makes no session
    resp = await client.get("/api/private", headers=basic_auth("nope-nope"))
    assert resp.status == 401 and "Basic" in resp.headers["WWW-Authenticate"]
    resp = await client.get("/api/private", headers={"Authorization": "Basic !!!"})
    assert resp.status == 401


async def test_origin_checks(tmp_path: Path, make_client: ClientFactory) -> None:
    store = store_with_password(tmp_path)
    client = await make_client(store)
    host = f"127.0.0.1:{client.port}"
    evil = {"Origin": "https://evil.example"}
    same = {"Origin": f"http://{host}"}
    # login itself is origin-checked (no login CSRF)
    resp = await client.post(
        "/api/auth/login", json={"user": "admin", "password": PASSWORD}, headers=evil
    )
    assert resp.status == 403
    assert "cross-origin" in (await resp.json())["error"]
    assert (await login(client)).status == 200
    resp = await client.post("/api/private", headers=evil)
    assert resp.status == 403
    assert (await client.post("/api/private", headers=same)).status == 200
    assert (await client.post("/api/private")).status == 200  # no Origin: not a browser form
    other_port = {"Origin": f"http://127.0.0.1:{(client.port or 0) + 1}"}
    assert (await client.post("/api/private", headers=other_port)).status == 403
    assert (await client.post("/api/private", headers={"Origin": "null"})).status == 403
    assert (await client.get("/api/private", headers=evil)).status == 200  # reads are fine
    # Basic credentials are attached by browsers too: checked
    fresh = await make_client(store)
    assert (
        await fresh.post("/api/private", headers={**basic_auth(PASSWORD), **evil})
    ).status == 403
    # a bearer token is never attached by a browser on its own
    _, token = store.create_token("script")
    bearer = {"Authorization": f"Bearer {token}", **evil}
    assert (await fresh.post("/api/private", headers=bearer)).status == 200


async def test_websocket_origin(tmp_path: Path, make_client: ClientFactory) -> None:
    store = store_with_password(tmp_path)
    client = await make_client(store)
    await login(client)
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await client.ws_connect("/api/ws", origin="https://evil.example")
    assert info.value.status == 403
    _, token = store.create_token("ws")
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await client.ws_connect(
            "/api/ws", origin="https://evil.example", headers={"Authorization": f"Bearer {token}"}
        )
    assert info.value.status == 403
    ws = await client.ws_connect("/api/ws", origin=f"http://127.0.0.1:{client.port}")
    assert await ws.receive_str() == "hello admin"
    await ws.close()
    fresh = await make_client(store)
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await fresh.ws_connect("/api/ws")
    assert info.value.status == 401


async def test_passwd_cli_changes_password_of_running_server(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    store = store_with_password(tmp_path)
    client = await make_client(store)
    assert (await login(client)).status == 200
    code, _, err = await cli(
        "passwd", "--stdin", "--state-dir", str(store.state_dir), stdin=b"brand-new-secret\n"
    )
    assert code == 0, err
    assert (await client.get("/api/private")).status == 401  # sessions ended
    assert (await login(client, PASSWORD)).status == 401
    assert (await login(client, "brand-new-secret")).status == 200
    code, _, err = await cli(
        "passwd", "--stdin", "--state-dir", str(store.state_dir), stdin=b"short\n"
    )
    assert code == 1 and "at least 8" in err
    assert (await login(client, "brand-new-secret")).status == 200


async def test_https_with_generated_certificate(tmp_path: Path) -> None:
    store = store_with_password(tmp_path)
    cert, key = tmp_path / "tls" / "cert.pem", tmp_path / "tls" / "key.pem"
    ensure_certificate(cert, key, ["kvm.test"])
    runner = web.AppRunner(make_app(store, secure=True))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context(cert, key))
    await site.start()
    try:
        port = runner.addresses[0][1]
        client_ctx = ssl.create_default_context(cafile=str(cert))
        client_ctx.verify_flags |= ssl.VERIFY_X509_STRICT
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as session:
            base = f"https://127.0.0.1:{port}"
            async with session.get(f"{base}/api/health", ssl=client_ctx) as resp:
                assert resp.status == 200
            async with session.post(
                f"{base}/api/auth/login",
                json={"user": "admin", "password": PASSWORD},
                ssl=client_ctx,
            ) as resp:
                assert resp.status == 200
                cookie = resp.headers["Set-Cookie"]
                assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
            async with session.get(f"{base}/api/auth/me", ssl=client_ctx) as resp:
                assert who(await resp.json()) == {"user": "admin", "via": "session"}
            # a client that does not trust the certificate refuses it
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                async with session.get(f"{base}/api/health", ssl=ssl.create_default_context()):
                    pass
    finally:
        await runner.cleanup()


async def test_basic_failures_are_throttled_and_parallel_guesses_do_not_slip_through(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    clock = FakeClock()
    client = await make_client(store_with_password(tmp_path), throttle=LoginThrottle(clock=clock))
    for _ in range(3):
        assert (await client.get("/api/private", headers=basic_auth("guess-1234"))).status == 401
    resp = await client.get("/api/private", headers=basic_auth(PASSWORD))
    assert resp.status == 429 and resp.headers["Retry-After"] == "1"
    clock.advance(1)
    assert (await client.get("/api/private", headers=basic_auth(PASSWORD))).status == 200

    # ten guesses at once: only the free three are checked, the rest wait
    async def guess(i: int) -> int:
        resp = await client.post(
            "/api/auth/login", json={"user": "admin", "password": f"guess-{i:04}"}
        )
        return resp.status

    statuses = await asyncio.gather(*(guess(i) for i in range(10)))
    assert sorted(statuses) == [401] * 3 + [429] * 7


async def test_token_cli_uses_env_state_dir_and_passwd_needs_a_terminal(tmp_path: Path) -> None:
    import os

    state = tmp_path / "from-env"
    env = {**os.environ, "IPKVM_STATE_DIR": str(state)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "appliance",
        "token",
        "create",
        "env-token",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env=env,
    )
    async with asyncio.timeout(60):
        out, _ = await proc.communicate()
    assert proc.returncode == 0
    assert AuthStore(state).verify_token(out.decode().strip()) == "env-token"
    code, _, err = await cli("passwd", "--state-dir", str(state), stdin=b"password-123\n")
    assert code == 1 and "--stdin" in err  # a pipe is not a terminal: no silent read
    assert not AuthStore(state).has_password()


# --------------------------------------------------------------------------- sessions on disk


def session_cookie(client: Client) -> dict[str, str]:
    sid = client.session.cookie_jar.filter_cookies(client.make_url("/"))[SESSION_COOKIE].value
    return {"Cookie": f"{SESSION_COOKIE}={sid}"}


async def restarted(make_client: ClientFactory, old: Client, **kwargs: object) -> Client:
    """Stop ``old``'s server and start a new one (a fresh AuthStore) on the same state dir."""
    store = old.app[AUTH_STORE]
    await old.close()
    return await make_client(AuthStore(store.state_dir, **kwargs))  # type: ignore[arg-type]


async def test_session_survives_a_restart_and_logout_survives_it_too(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    client = await make_client(store_with_password(tmp_path))
    assert (await login(client)).status == 200
    cookie = session_cookie(client)
    client = await restarted(make_client, client)
    resp = await client.get("/api/auth/me", headers=cookie)
    assert resp.status == 200 and who(await resp.json()) == {"user": "admin", "via": "session"}
    resp = await client.post("/api/auth/logout", headers=cookie)
    assert resp.status == 200
    client = await restarted(make_client, client)
    assert (await client.get("/api/private", headers=cookie)).status == 401


async def test_password_change_while_stopped_ends_persisted_sessions(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    client = await make_client(store_with_password(tmp_path))
    assert (await login(client)).status == 200
    cookie = session_cookie(client)
    state = str(client.app[AUTH_STORE].state_dir)
    await client.close()
    code, _, err = await cli("passwd", "--stdin", "--state-dir", state, stdin=b"brand-new-secret\n")
    assert code == 0, err
    client = await make_client(AuthStore(Path(state)))
    assert (await client.get("/api/private", headers=cookie)).status == 401
    assert (await login(client, "brand-new-secret")).status == 200


async def test_persisted_session_expires_across_a_restart(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    clock = FakeClock()
    client = await make_client(store_with_password(tmp_path, session_ttl=600, clock=clock))
    assert (await login(client)).status == 200
    cookie = session_cookie(client)
    clock.advance(599)
    client = await restarted(make_client, client, session_ttl=600, clock=clock)
    assert (await client.get("/api/private", headers=cookie)).status == 200
    clock.advance(2)
    client = await restarted(make_client, client, session_ttl=600, clock=clock)
    resp = await client.get("/api/private", headers=cookie)
    assert resp.status == 401
    assert "Max-Age=0" in resp.headers.get("Set-Cookie", "")


async def test_corrupt_sessions_file_does_not_stop_the_service(
    tmp_path: Path, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    store = store_with_password(tmp_path)
    (store.state_dir / "sessions.json").write_bytes(b"\x00garbage{")
    with caplog.at_level("WARNING", logger="appliance.sessions"):
        client = await make_client(AuthStore(store.state_dir))
        assert (
            await client.get("/api/private", headers={"Cookie": "ipkvm_session=x"})
        ).status == 401
    assert any("unreadable sessions file" in r.message for r in caplog.records)
    assert (await login(client)).status == 200
    assert (await client.get("/api/private")).status == 200
    cookie = session_cookie(client)
    client = await restarted(make_client, client)
    assert (await client.get("/api/private", headers=cookie)).status == 200
