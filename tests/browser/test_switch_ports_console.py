"""The console's Wake button and Power menu follow the KVM switch's active port in Chromium: the
button wakes the active port's machine (a magic packet caught on loopback) and hides on a port
without a MAC; the Power menu says "unavailable" (with the reason) on a port without ATX wiring
and acts on each wired port's own simulated board."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import Console, Server, open_console, start_server

pytestmark = pytest.mark.browser

MAC_A = "52:54:00:00:00:0a"


def config(udp_port: int) -> str:
    return f"""
[target]
kind = "hardware"
[video]
source = "demo"
[hid]
output = "demo"
[atx]
chip = "sim"
[wol]
address = "127.0.0.1"
port = {udp_port}
[switch]
driver = "hotkey"
hotkey_gap_ms = 20
[[switch.ports]]
name = "a"
wol_mac = "{MAC_A}"
atx = "default"
[[switch.ports]]
name = "c"
"""


@pytest.fixture(scope="module")
def listener() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10)
    yield sock
    sock.close()


@pytest.fixture(scope="module")
def ports_server(
    tmp_path_factory: pytest.TempPathFactory, listener: socket.socket
) -> Iterator[Server]:
    srv = start_server(
        tmp_path_factory.mktemp("state-ports"), config=config(listener.getsockname()[1])
    )
    yield srv
    srv.stop()


@pytest.fixture
def ports(browser: Any, ports_server: Server) -> Iterator[Console]:
    yield from open_console(browser, ports_server, {"width": 1280, "height": 900})


def test_wake_and_power_follow_the_active_port(ports: Console, listener: socket.socket) -> None:
    c = ports
    c.login()
    page = c.page
    wake, power = page.locator("#wol-btn"), page.locator("#atx-btn")
    # No port selected yet (a hotkey switch cannot be asked): nothing to wake, nothing to press.
    page.locator("#atx-wrap").wait_for(state="visible", timeout=10000)
    assert wake.is_hidden()

    c.api("POST", "/api/switch/select", {"port": "a"})
    wake.wait_for(state="visible", timeout=10000)
    assert MAC_A in (wake.get_attribute("title") or "")
    page.locator("#atx-btn[data-state=off]").wait_for(timeout=10000)
    wake.click()
    page.locator(".toast", has_text=f"Wake-on-LAN packet sent to {MAC_A}").wait_for(timeout=10000)
    data, _ = listener.recvfrom(1024)
    assert data == b"\xff" * 6 + bytes.fromhex(MAC_A.replace(":", "")) * 16
    power.click()
    page.click("#atx-menu [data-action=on]")
    page.locator("#atx-btn[data-state=on]").wait_for(timeout=10000)

    c.api("POST", "/api/switch/select", {"port": "c"})
    wake.wait_for(state="hidden", timeout=10000)
    page.locator("#atx-btn", has_text="Power: unavailable").wait_for(timeout=10000)
    assert "port 2 (c) has no ATX wiring" in (power.get_attribute("title") or "")
    for action in ("on", "off", "off_hard", "reset"):
        assert page.locator(f"#atx-menu [data-action={action}]").is_disabled()

    c.api("POST", "/api/switch/select", {"port": "a"})
    page.locator("#atx-btn[data-state=on]").wait_for(timeout=10000)  # a's own board
    wake.wait_for(state="visible", timeout=10000)


def test_local_passthrough_pill(ports: Console, browser: Any, tmp_path: Any) -> None:
    """No passthrough configured: no pill. Enabled (this machine has no local keyboard the
    appliance may grab): "Local: none" with the reason as its tooltip."""
    c = ports
    c.login()
    c.page.locator("#hid-status").wait_for(timeout=10000)
    assert c.page.locator("#local-status").is_hidden()
    srv = start_server(tmp_path / "state", config="[passthrough]\nenabled = true\n")
    try:
        for local in open_console(browser, srv, {"width": 1280, "height": 900}):
            local.login()
            pill = local.page.locator("#local-status")
            pill.wait_for(state="visible", timeout=10000)
            state = local.api("GET", "/api/state")["passthrough"]
            assert state["enabled"] is True
            if state["devices"]:  # a machine with input devices: named in the tooltip
                assert state["devices"][0]["name"] in (pill.get_attribute("title") or "")
            else:
                assert pill.text_content() == "Local: none"
                assert "No local keyboard" in (pill.get_attribute("title") or "")
    finally:
        srv.stop()
