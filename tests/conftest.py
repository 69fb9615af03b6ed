"""Shared fixtures: a real appliance server on 127.0.0.1 with the demo target."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from hypothesis import settings

# Hypothesis profiles for the property tests (tests/test_properties_*.py).
#
# "ci" (the default, also what `make test` runs): derandomized and without an example database.
# CI starts from a fresh clone, so a database would never be read back there, and with random
# seeds a failure found once might not show on the next run or on a developer's machine. With
# derandomize=True every run tries the same examples, so a red CI run is red again locally with
# the same minimal example printed; the cost is that CI never explores new inputs. 60 examples per
# test keeps the whole set well under a minute on 2 cores. deadline=None: a shared, noisy CI
# machine makes per-example timing flaky, and the tests assert behaviour, not speed.
#
# "explore" (HYPOTHESIS_PROFILE=explore): random search with many more examples and the local
# database, for hunting new bugs by hand. Anything it finds goes into the test as an @example so
# the "ci" profile keeps checking it.
settings.register_profile("ci", max_examples=60, deadline=None, derandomize=True, database=None)
settings.register_profile("explore", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@dataclass
class Server:
    url: str
    password: str
    state_dir: Path
    appliance: object
    app: web.Application

    def basic(self) -> dict[str, str]:
        """HTTP Basic credentials as a header (aiohttp's ``auth=`` parameter is deprecated)."""
        return basic_header("admin", self.password)

    async def login(self) -> aiohttp.ClientSession:
        """A session logged in with the cookie, like a browser."""
        session = aiohttp.ClientSession(
            base_url=self.url, cookie_jar=aiohttp.CookieJar(unsafe=True)
        )
        async with session.post(
            "/api/auth/login", json={"user": "admin", "password": self.password}
        ) as resp:
            assert resp.status == 200, await resp.text()
        return session


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def basic_header(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def start_server(tmp_path: Path, toml: str = "") -> tuple[Server, web.AppRunner]:
    """The appliance on 127.0.0.1 (a free port) with the config *toml*, started the way
    ``ipkvm serve`` starts it (:func:`appliance.api.server.start_server`)."""
    from appliance.api.server import start_server as serve
    from appliance.auth import AuthStore
    from appliance.config import load_config

    cfg_file = tmp_path / "ipkvm.toml"
    cfg_file.write_text(toml)
    state = tmp_path / "state"
    config = load_config(cfg_file).with_overrides(
        listen="127.0.0.1:0", state_dir=state, target=None, tls=None
    )
    store = AuthStore(state)
    password = store.ensure_admin()
    assert password
    running = await serve(config, store)
    srv = Server(running.url, password, state, running.appliance, running.app)
    return srv, running.runner


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    srv, runner = await start_server(tmp_path)
    try:
        yield srv
    finally:
        await runner.cleanup()


async def until(
    subscribe: Callable[[Callable[[object], None]], Callable[[], None]],
    condition: Callable[[], bool],
    what: str,
    timeout: float = 5.0,
) -> None:
    """Wait until *condition* holds, re-checked whenever *subscribe*'s source reports a change
    (it takes a callback and returns the unsubscribe function); fails the test after *timeout*."""
    changed = asyncio.Event()
    unsubscribe = subscribe(lambda _what: changed.set())
    try:
        async with asyncio.timeout(timeout):
            while not condition():
                await changed.wait()
                changed.clear()
    except TimeoutError:
        pytest.fail(f"timed out waiting for {what}")
    finally:
        unsubscribe()


async def hid_until(
    hid: object, condition: Callable[[], bool], what: str, timeout: float = 5.0
) -> None:
    """Wait until *condition* holds, re-checking whenever the HID controller reports a change."""
    await until(hid.subscribe, condition, what, timeout)  # type: ignore[attr-defined]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the browser tests last: Playwright's sync API keeps an event loop running in the main
    thread for the whole session, and no asyncio test can run after it has started."""
    items.sort(key=lambda item: "browser" in Path(str(item.fspath)).parts)


CliRun = Callable[..., Awaitable[tuple[int, str, str]]]


def ipkvm_cli(server: Server, home: Path, token_name: str = "cli") -> CliRun:
    """``ipkvm ARGS...`` as a user runs it against ``server`` (a token of its own in the
    environment, ``home`` as HOME) → (exit code, stdout, stderr)."""
    from appliance.auth import AuthStore

    _, token = AuthStore(server.state_dir).create_token(token_name)
    env = {
        "IPKVM_URL": server.url,
        "IPKVM_TOKEN": token,
        "HOME": str(home),
        "PATH": "/usr/bin:/bin",
    }
    root = Path(__file__).resolve().parent.parent

    async def run(*args: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "appliance", *args, env=env, cwd=root,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await proc.communicate()
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()

    return run
