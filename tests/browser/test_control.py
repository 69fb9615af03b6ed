"""Exclusive control between two real browser sessions (two users, two Chromium contexts).

ann and ben (operators) open the console. Each sees the other in the presence list, and who is
typing. ann takes exclusive control: ben's keys no longer reach the target (his console says so)
and his control button names ann; ann's keys do. ann releases; ben types again. ann takes
control and closes her browser: control is released when the holder leaves.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Console, Server, open_console, start_server

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]
USERS = {"ann": "ann-pass-123", "ben": "ben-pass-123"}


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    state = tmp_path_factory.mktemp("state-team")
    srv = start_server(state)
    for user, password in USERS.items():
        done = subprocess.run(
            [sys.executable, "-m", "appliance", "user", "add", user, "--role", "operator",
             "--password-stdin", "--state-dir", str(state)],
            input=password + "\n", capture_output=True, text=True, cwd=ROOT, timeout=60,
        )  # fmt: skip
        if done.returncode != 0:
            srv.stop()
        assert done.returncode == 0, done.stderr
    yield srv
    srv.stop()


def sign_in(c: Console, user: str) -> None:
    page = c.page
    page.goto(f"{c.server.url}/login")
    page.fill("#user", user)
    page.fill("#password", USERS[user])
    page.press("#password", "Enter")
    page.wait_for_url(f"{c.server.url}/")
    page.wait_for_function("document.body.dataset.socket === 'open'")


def demo_text(c: Console) -> str:
    text: str = c.api("GET", "/api/demo/state")["text"]
    return text


def wait_button(c: Console, text: str) -> None:
    c.page.wait_for_function(
        "t => document.getElementById('control-btn').textContent.includes(t)", arg=text
    )


def test_exclusive_control_between_two_browsers(browser: Any, team: Server) -> None:
    a_gen = open_console(browser, team, {"width": 1280, "height": 720})
    b_gen = open_console(browser, team, {"width": 1280, "height": 720})
    a, b = next(a_gen), next(b_gen)
    try:
        sign_in(a, "ann")
        sign_in(b, "ben")
        for c, other in ((a, "ann"), (b, "ann"), (a, "ben")):
            c.page.wait_for_function(
                "u => [...document.querySelectorAll('#presence .who')]"
                ".some(e => e.dataset.user === u)",
                arg=other,
            )
        # who is typing: ann types, ben sees it
        a.page.locator("#capture").focus()
        a.page.keyboard.press("Backspace")
        b.page.wait_for_selector("#presence .who.typing[data-user='ann']")

        # ann takes exclusive control
        wait_button(a, "Take control")
        a.page.click("#control-btn")
        wait_button(a, "Release control")
        wait_button(b, "ann has control")
        assert b.page.locator("#control-btn").is_disabled()
        b.page.wait_for_selector("#presence .who.control[data-user='ann']")

        before = demo_text(a)
        b.page.locator("#capture").focus()
        b.page.keyboard.type("zz")
        b.page.wait_for_function(
            "document.getElementById('toast')?.textContent.includes('exclusive control')"
        )
        a.page.locator("#capture").focus()
        a.page.keyboard.type("ok")
        a.wait_for("ann's keys", lambda: demo_text(a) == before + "ok")
        assert "z" not in demo_text(a)  # ben's were refused

        # released: ben types again
        a.page.click("#control-btn")
        wait_button(b, "Take control")
        b.page.locator("#capture").focus()
        b.page.keyboard.type("b")
        b.wait_for("ben's key", lambda: demo_text(b).endswith("okb"))

        # the holder leaves: control is released for the others
        wait_button(a, "Take control")
        a.page.click("#control-btn")
        wait_button(b, "ann has control")
        next(a_gen, None)  # closes ann's browser context
        wait_button(b, "Take control")
    finally:
        next(a_gen, None)
        next(b_gen, None)
