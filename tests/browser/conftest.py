"""Browser tests: a real ``ipkvm serve --target demo`` process driven by Debian's Chromium.

Each server runs on a free loopback port with its own state directory; the admin password is
read from the banner it prints on first start. Pages collect console errors and uncaught
exceptions, and a test fails if any appear that it did not expect.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bench.appliance_proc import Appliance, start_appliance

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
MJPEG_BY_DEFAULT = """(() => {
  const key = "ipkvm.console.settings";
  try {
    const saved = JSON.parse(localStorage.getItem(key) || "{}") || {};
    if (!("transport" in saved)) {
      localStorage.setItem(key, JSON.stringify({ ...saved, transport: "mjpeg" }));
    }
  } catch (e) {}
})();"""
START_TIMEOUT = 30.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here needs Chromium: mark them, and skip them clearly when it is missing."""
    here = Path(__file__).parent
    skip = pytest.mark.skip(reason=f"{CHROMIUM} not found (apt-get install chromium)")
    for item in items:
        if Path(str(item.fspath)).parent == here:
            item.add_marker(pytest.mark.browser)
            if not CHROMIUM.exists():
                item.add_marker(skip)


Server = Appliance
"""One running appliance process (``bench.appliance_proc``: the one process launcher)."""


def start_server(
    state_dir: Path, config: str | None = None, port: int = 0, password: str = ""
) -> Server:
    """Start ``ipkvm serve``; *password* is for a restart (it is printed only on first start)."""
    try:
        return start_appliance(
            config or "", state_dir=state_dir, port=port, password=password, timeout=START_TIMEOUT
        )
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A demo appliance with the default (US) layout."""
    srv = start_server(tmp_path_factory.mktemp("state"))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def de_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A demo appliance whose simulated host uses a German keyboard layout."""
    srv = start_server(tmp_path_factory.mktemp("state-de"), config='[demo]\nlayout = "de"\n')
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@dataclass
class Console:
    """A browser page on one server, with the errors it logged."""

    page: Any
    server: Server
    errors: list[str]
    allowed: list[re.Pattern[str]]
    context: Any = None

    def allow(self, pattern: str) -> None:
        """Accept console errors matching *pattern* (e.g. the 401 of a wrong password)."""
        self.allowed.append(re.compile(pattern))

    def unexpected_errors(self) -> list[str]:
        return [e for e in self.errors if not any(a.search(e) for a in self.allowed)]

    def login(self) -> None:
        page = self.page
        page.goto(f"{self.server.url}/login")
        page.fill("#password", self.server.password)
        page.press("#password", "Enter")
        page.wait_for_url(f"{self.server.url}/")
        page.wait_for_function("document.activeElement && document.activeElement.id === 'capture'")
        # Input before the input socket is open is dropped by design (never replayed late): a
        # test that types at once on a loaded machine would race the connection.
        page.wait_for_function("document.body.dataset.socket === 'open'")

    def api(self, method: str, path: str, data: Any = None) -> Any:
        """Call the API with the page's own session cookie."""
        req = self.page.request
        url = f"{self.server.url}{path}"
        response = req.get(url) if method == "GET" else req.fetch(url, method=method, data=data)
        assert response.ok, f"{method} {path}: {response.status} {response.text()}"
        return response.json()

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Poll *check* (server state seen over HTTP) until it is truthy; fail with *what*."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            last = check()
            if last:
                return last
            self.page.wait_for_timeout(50)
        pytest.fail(f"timed out waiting for {what} (last: {last!r})")


def open_console(
    browser: Any, server: Server, viewport: dict[str, int], **options: Any
) -> Iterator[Console]:
    context = browser.new_context(viewport=viewport, accept_downloads=True, **options)
    # These tests look at MJPEG's <img>: keep it the default transport even after H.264 ones are
    # registered ahead of it (a test may still choose another in the Stream panel).
    context.add_init_script(MJPEG_BY_DEFAULT)
    page = context.new_page()
    console = Console(page=page, server=server, errors=[], allowed=[], context=context)
    page.on(
        "console",
        lambda msg: console.errors.append(f"console: {msg.text}") if msg.type == "error" else None,
    )
    page.on("pageerror", lambda exc: console.errors.append(f"pageerror: {exc}"))
    yield console
    context.close()
    assert console.unexpected_errors() == [], "errors in the browser console"


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[Server]:
    """A demo appliance for one test only (tests that stop or restart it)."""
    srv = start_server(tmp_path / "state")
    yield srv
    srv.stop()


@pytest.fixture
def own_console(browser: Any, own_server: Server) -> Iterator[Console]:
    yield from open_console(browser, own_server, {"width": 1280, "height": 720})


@pytest.fixture
def console(browser: Any, server: Server) -> Iterator[Console]:
    yield from open_console(browser, server, {"width": 1280, "height": 720})


@pytest.fixture
def de_console(browser: Any, de_server: Server) -> Iterator[Console]:
    yield from open_console(browser, de_server, {"width": 1280, "height": 720})


@pytest.fixture
def phone_console(browser: Any, server: Server) -> Iterator[Console]:
    yield from open_console(browser, server, {"width": 390, "height": 844})


@pytest.fixture
def touch_console(browser: Any, server: Server) -> Iterator[Console]:
    yield from open_console(browser, server, {"width": 1280, "height": 720}, has_touch=True)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
