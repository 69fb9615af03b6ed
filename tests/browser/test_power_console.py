"""The console's power controls against a real demo appliance: LEDs, confirmation, off and on."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import Console

pytestmark = pytest.mark.browser


def demo(c: Console) -> dict[str, Any]:
    state: dict[str, Any] = c.api("GET", "/api/demo/state")
    return state


def choose(c: Console, action: str) -> None:
    c.page.click("#atx-btn")
    c.page.click(f"#atx-menu [data-action={action}]")


def test_power_off_asks_first_then_on_again(console: Console) -> None:
    console.login()
    page = console.page
    page.locator("#atx-wrap").wait_for(state="visible", timeout=10000)
    page.locator("#atx-led-power.on").wait_for(timeout=10000)
    assert page.locator("#atx-menu [data-action=on]").is_disabled()  # already on
    asked: list[str] = []
    try:
        # Cancelled: nothing is pressed.
        page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
        choose(console, "off")
        page.wait_for_timeout(500)
        assert demo(console)["power"] == "on"
        # Confirmed: the machine shuts down, its LED and the screen say so.
        page.once("dialog", lambda d: (asked.append(d.message), d.accept()))
        choose(console, "off")
        console.wait_for("the target off", lambda: demo(console)["power"] == "off")
        page.locator("#atx-led-power:not(.on)").wait_for(timeout=10000)
        page.locator("#atx-btn", has_text="Power: off").wait_for(timeout=10000)
        page.locator("#video-message", has_text="Target off").wait_for(timeout=10000)
        assert len(asked) == 2 and "shut the target down" in asked[0]
        # On is not destructive: no question.
        choose(console, "on")
        console.wait_for("the target on", lambda: demo(console)["power"] == "on")
        page.locator("#atx-led-power.on").wait_for(timeout=10000)
        assert len(asked) == 2
    finally:
        if demo(console)["power"] != "on":
            console.api("POST", "/api/demo/power", {"on": True})
    page.locator("#video-message").wait_for(state="hidden", timeout=10000)
