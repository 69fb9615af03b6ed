"""The console's KVM switch selector in Chromium, on the 4-port demo switch: the port names, the
active port, switching on click (the demo video and the HID reports follow), a front-panel change
made elsewhere followed live, and errors shown as a toast."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Console, Server, open_console, start_server

pytestmark = pytest.mark.browser

RACK = (Path(__file__).resolve().parents[2] / "scripts" / "demo.toml").read_text()


@pytest.fixture(scope="module")
def rack_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("state-rack"), config=RACK)
    yield srv
    srv.stop()


@pytest.fixture
def rack(browser: Any, rack_server: Server) -> Iterator[Console]:
    yield from open_console(browser, rack_server, {"width": 1280, "height": 900})


def test_switch_ports_from_the_toolbar(rack: Console) -> None:
    c = rack
    c.login()
    page = c.page
    button = page.locator("#switch-btn")
    page.wait_for_function("document.getElementById('switch-btn').textContent.includes('web-01')")
    assert not page.locator("#switch-wrap").is_hidden()
    button.click()
    items = page.locator("#switch-menu [role=menuitem]")
    assert items.count() == 4
    assert [items.nth(i).get_attribute("aria-checked") for i in range(4)] == [
        "true", "false", "false", "false",
    ]  # fmt: skip
    assert "db-01" in items.nth(1).inner_text()
    items.nth(1).click()
    page.wait_for_function("document.getElementById('switch-btn').textContent.includes('db-01')")
    assert c.api("GET", "/api/switch")["active"] == 2
    assert c.api("GET", "/api/demo/state")["name"] == "db-01"  # the picture is db-01's screen
    # keys typed in the console reach the active machine only
    page.locator("#capture").focus()
    page.keyboard.type("hi")
    c.wait_for("text on db-01", lambda: c.api("GET", "/api/demo/state")["text"].endswith("hi"))

    # a change made elsewhere (CLI, script, another viewer) shows up without a click
    c.api("POST", "/api/switch/select", {"port": "build-01"})
    page.wait_for_function("document.getElementById('switch-btn').textContent.includes('build-01')")
    button.click()
    assert items.nth(2).get_attribute("aria-checked") == "true"
    page.keyboard.press("Escape")
    c.api("POST", "/api/switch/select", {"port": 1})
    page.wait_for_function("document.getElementById('switch-btn').textContent.includes('web-01')")
