"""Login throttling behind a reverse proxy: ``server.trusted_proxies`` / ``server.proxy_header``.

Every test runs a real aiohttp server on 127.0.0.1 and sends real HTTP requests; the test client
plays both the proxy (its TCP address is 127.0.0.1) and, through the forwarding headers it sends,
the clients behind it. What a user notices is the status: 429 (throttled) or 200/401.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from appliance.auth import AuthStore, LoginThrottle
from appliance.config import build_config
from tests.conftest import basic_header, free_port, start_server

PASSWORD = "right-password"
WHOAMI = "/api/whoami"


class FakeClock:
    """Frozen time: a throttled client stays throttled for the whole test."""

    def __call__(self) -> float:
        return 1000.0


async def _whoami(request: web.Request) -> web.Response:
    from appliance.api.auth import client_address

    return web.json_response({"client": client_address(request)})


Post = Callable[..., Awaitable[int]]
Start = Callable[..., Awaitable[tuple[str, Post]]]


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[Start]:
    """Start an app whose auth settings come from a ``[server]`` TOML table, as on the appliance."""
    from appliance.api.auth import setup_auth

    runners: list[web.AppRunner] = []
    sessions: list[aiohttp.ClientSession] = []

    async def factory(server_toml: str = "", *, secure: bool = False) -> tuple[str, Post]:
        config = build_config({"server": tomllib.loads(server_toml)})
        store = AuthStore(tmp_path / f"state{len(runners)}")
        store.set_password(PASSWORD)
        app = web.Application()
        setup_auth(
            app,
            store,
            public_paths={WHOAMI},
            secure_cookies=secure,
            throttle=LoginThrottle(clock=FakeClock()),
            trusted_proxies=config.server.trusted_proxies,
            proxy_header=config.server.proxy_header,
        )
        app.router.add_get(WHOAMI, _whoami)
        runner = web.AppRunner(app)
        await runner.setup()
        runners.append(runner)
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        url = f"http://127.0.0.1:{port}"
        session = aiohttp.ClientSession(base_url=url)
        sessions.append(session)

        async def login(password: str, **headers: str) -> int:
            """POST a login with these headers (``X_Forwarded_For=`` → ``X-Forwarded-For``)."""
            sent = {k.replace("_", "-"): v for k, v in headers.items()}
            async with session.post(
                "/api/auth/login", json={"user": "admin", "password": password}, headers=sent
            ) as resp:
                return resp.status

        return url, login

    yield factory
    for s in sessions:
        await s.close()
    for r in runners:
        await r.cleanup()


async def fail_three_times(login: Post, **headers: str) -> None:
    """The throttle's free failures: after these, the next attempt from the same client is 429."""
    for _ in range(3):
        assert await login("wrong", **headers) == 401


async def test_without_trusted_proxies_a_spoofed_header_does_not_escape_the_throttle(
    start: Start,
) -> None:
    _, login = await start()
    for i in range(3):
        assert await login("wrong", X_Forwarded_For=f"10.0.0.{i}") == 401
    # A fresh address in either header, even with the right password: still 127.0.0.1.
    assert await login(PASSWORD, X_Forwarded_For="10.9.9.9") == 429
    assert await login(PASSWORD, Forwarded="for=10.9.9.9") == 429
    assert await login(PASSWORD) == 429


async def test_trusted_proxy_throttles_each_forwarded_client_apart(start: Start) -> None:
    _, login = await start('trusted_proxies = ["127.0.0.1"]')
    await fail_three_times(login, X_Forwarded_For="10.0.0.1")
    assert await login(PASSWORD, X_Forwarded_For="10.0.0.1") == 429
    # What the attacker writes left of the proxy's entry is never read.
    assert await login(PASSWORD, X_Forwarded_For="10.0.0.2, 10.0.0.1") == 429
    # Another client behind the same proxy, and the proxy host itself, are not locked out.
    assert await login(PASSWORD, X_Forwarded_For="10.0.0.2") == 200
    assert await login(PASSWORD) == 200
    # The attacker still is (a success elsewhere resets nothing for 10.0.0.1).
    assert await login(PASSWORD, X_Forwarded_For="10.0.0.1") == 429


async def test_basic_auth_failures_count_for_the_forwarded_client(start: Start) -> None:
    url, login = await start('trusted_proxies = ["127.0.0.0/8"]')
    async with aiohttp.ClientSession(base_url=url) as session:
        for _ in range(3):
            headers = {**basic_header("admin", "wrong"), "X-Forwarded-For": "192.0.2.7"}
            async with session.get("/api/auth/me", headers=headers) as resp:
                assert resp.status == 401
    assert await login(PASSWORD, X_Forwarded_For="192.0.2.7") == 429
    assert await login(PASSWORD, X_Forwarded_For="192.0.2.8") == 200


async def test_rightmost_untrusted_hop_is_the_client(start: Start) -> None:
    # 10.0.0.9 is a second, inner proxy: trusted, so skipped; 1.2.3.4 is the client.
    _, login = await start('trusted_proxies = ["127.0.0.1", "10.0.0.9"]')
    await fail_three_times(login, X_Forwarded_For="1.2.3.4, 10.0.0.9")
    assert await login(PASSWORD, X_Forwarded_For="1.2.3.4") == 429
    assert await login(PASSWORD, X_Forwarded_For="1.2.3.5, 10.0.0.9") == 200
    assert await login(PASSWORD, X_Forwarded_For="10.0.0.9") == 200

    # Without 10.0.0.9 trusted, it is the client: every address behind it shares one budget.
    _, login = await start('trusted_proxies = ["127.0.0.1"]')
    await fail_three_times(login, X_Forwarded_For="1.2.3.4, 10.0.0.9")
    assert await login(PASSWORD, X_Forwarded_For="1.2.3.5, 10.0.0.9") == 429
    assert await login(PASSWORD, X_Forwarded_For="1.2.3.4") == 200


async def test_malformed_header_falls_back_to_the_proxy_address(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    _, login = await start('trusted_proxies = ["127.0.0.1"]')
    with caplog.at_level(logging.DEBUG, logger="appliance.api.auth"):
        await fail_three_times(login, X_Forwarded_For="1.2.3.4, not-an-address")
    assert "malformed x-forwarded-for entry 'not-an-address' from trusted proxy" in caplog.text
    assert await login(PASSWORD) == 429  # charged to the proxy's own address
    assert await login(PASSWORD, X_Forwarded_For="1.2.3.4, ") == 429  # empty hop: malformed too
    assert await login(PASSWORD, X_Forwarded_For="1.2.3.4") == 200


async def test_forwarded_header_rfc7239_when_configured(start: Start) -> None:
    _, login = await start('trusted_proxies = ["127.0.0.1"]\nproxy_header = "forwarded"')
    client = 'for="[2001:db8:cafe::17]:4711";proto=https'
    await fail_three_times(login, Forwarded=f"for=198.51.100.1, {client}")
    assert await login(PASSWORD, Forwarded="For=2001:db8:cafe::99") == 429  # same /64
    # X-Forwarded-For is not the configured header: ignored, the client is the proxy.
    assert await login(PASSWORD, X_Forwarded_For="2001:db8:cafe::17") == 200
    assert await login(PASSWORD, Forwarded="for=198.51.100.1") == 200
    # Obfuscated identifiers name no address: the proxy's address is used.
    await fail_three_times(login, Forwarded="for=_hidden")
    assert await login(PASSWORD, Forwarded="for=unknown") == 429


@pytest.mark.parametrize(
    ("server", "headers", "expected"),
    [
        ("", {"X-Forwarded-For": "10.0.0.1"}, "127.0.0.1"),
        ("", {"Forwarded": "for=10.0.0.1"}, "127.0.0.1"),
        ('trusted_proxies = ["10.0.0.0/8"]', {"X-Forwarded-For": "1.2.3.4"}, "127.0.0.1"),
        ('trusted_proxies = ["127.0.0.1"]', {}, "127.0.0.1"),
        ('trusted_proxies = ["127.0.0.1"]', {"X-Forwarded-For": "1.2.3.4:5678"}, "1.2.3.4"),
        ('trusted_proxies = ["127.0.0.1"]', {"X-Forwarded-For": "[2001:DB8::1]:80"}, "2001:db8::1"),
        ('trusted_proxies = ["127.0.0.1"]', {"X-Forwarded-For": "::ffff:192.0.2.1"}, "192.0.2.1"),
        ('trusted_proxies = ["127.0.0.1"]', {"X-Forwarded-For": "1.2.3.4,5.6.7.8"}, "5.6.7.8"),
        # Every hop trusted: the leftmost (an admin on the proxies' own network).
        (
            'trusted_proxies = ["127.0.0.1", "10.0.0.0/8"]',
            {"X-Forwarded-For": "10.1.1.1, 10.0.0.9"},
            "10.1.1.1",
        ),
        ('trusted_proxies = ["127.0.0.1"]', {"X-Forwarded-For": "1.2.3.4:x"}, "127.0.0.1"),
        (
            'trusted_proxies = ["127.0.0.1"]\nproxy_header = "forwarded"',
            {"Forwarded": 'for="1.2.3.4, for=9.9.9.9", for=5.6.7.8;by=127.0.0.1'},
            "5.6.7.8",
        ),
        (
            'trusted_proxies = ["127.0.0.1"]\nproxy_header = "forwarded"',
            {"Forwarded": "proto=https;by=127.0.0.1"},
            "127.0.0.1",
        ),
    ],
)
async def test_client_address(
    start: Start, server: str, headers: dict[str, str], expected: str
) -> None:
    url, _ = await start(server)
    async with aiohttp.ClientSession() as session:
        async with session.get(url + WHOAMI, headers=headers) as resp:
            assert resp.status == 200
            assert (await resp.json())["client"] == expected


@pytest.mark.parametrize("secure", [False, True])
async def test_forwarded_proto_does_not_change_the_secure_cookie(
    start: Start, secure: bool
) -> None:
    """``Secure`` follows ``secure_cookies`` (the appliance's own TLS) only, as before."""
    url, _ = await start('trusted_proxies = ["127.0.0.1"]', secure=secure)
    async with aiohttp.ClientSession() as session:
        async with session.post(
            url + "/api/auth/login",
            json={"user": "admin", "password": PASSWORD},
            headers={"X-Forwarded-Proto": "https", "Forwarded": "proto=https"},
        ) as resp:
            assert resp.status == 200
            cookie = resp.headers["Set-Cookie"]
    assert ("; Secure" in cookie) is secure, cookie


async def test_appliance_reads_trusted_proxies_from_its_config(tmp_path: Path) -> None:
    srv, runner = await start_server(tmp_path, '[server]\ntrusted_proxies = ["127.0.0.1"]\n')
    try:
        async with aiohttp.ClientSession(base_url=srv.url) as session:

            async def login(password: str, client: str) -> int:
                async with session.post(
                    "/api/auth/login",
                    json={"user": "admin", "password": password},
                    headers={"X-Forwarded-For": client},
                ) as resp:
                    return resp.status

            for _ in range(3):
                assert await login("wrong-password", "10.0.0.1") == 401
            assert await login("wrong-password", "10.0.0.1") == 429
            assert await login(srv.password, "10.0.0.2") == 200
    finally:
        await runner.cleanup()
