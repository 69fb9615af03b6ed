"""The Account page in Chromium: two-factor enrolment with the server-rendered QR code, the
recovery codes, signing in with a code; the admin's user list and audit view."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance import totp
from tests.browser.conftest import Console, Server, open_console, start_server

pytestmark = pytest.mark.browser
STATE: list[Path] = []  # the module server's state directory (for the CLI)


@pytest.fixture(scope="module")
def acct_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    state = tmp_path_factory.mktemp("state-acct")
    STATE[:] = [state]
    srv = start_server(state)
    yield srv
    srv.stop()


@pytest.fixture
def acct(browser: Any, acct_server: Server) -> Iterator[Console]:
    yield from open_console(browser, acct_server, {"width": 1280, "height": 900})


def test_admin_adds_a_user_who_enrols_in_two_factor_login(browser: Any, acct: Console) -> None:
    c = acct
    c.login()
    page = c.page
    page.click("#account-link")
    page.wait_for_url(f"{c.server.url}/account")
    page.wait_for_selector("#users tr[data-user='admin']")
    page.fill("#ua-name", "zoe")
    page.fill("#ua-pw", "zoe-pass-123")
    page.select_option("#ua-role", "operator")
    page.click("#user-add button[type=submit]")
    page.wait_for_selector("#users tr[data-user='zoe']")
    assert page.locator("#users tr[data-user='zoe'] select").input_value() == "operator"
    page.click("#audit-refresh")
    page.wait_for_selector("#audit tr:has-text('user.add')")

    # zoe, in a browser of her own, enrols
    for z in open_console(browser, c.server, {"width": 1280, "height": 900}):
        zp = z.page
        zp.goto(f"{c.server.url}/login")
        zp.fill("#user", "zoe")
        zp.fill("#password", "zoe-pass-123")
        zp.press("#password", "Enter")
        zp.wait_for_url(f"{c.server.url}/")
        zp.goto(f"{c.server.url}/account")
        zp.wait_for_function("document.getElementById('whoami').textContent.includes('zoe')")
        assert zp.locator("#admin").is_hidden()  # not an admin
        zp.click("#totp-setup")
        zp.wait_for_selector("#totp-qr svg")
        box = zp.locator("#totp-qr svg").bounding_box()
        assert box is not None and box["width"] > 100  # a visible QR code
        secret = zp.locator("#totp-secret").inner_text()
        zp.fill("#totp-code", totp.code_at(secret, time.time()))
        zp.click("#totp-form button[type=submit]")
        zp.wait_for_selector("#totp-codes:not([hidden]) li")
        codes = zp.locator("#totp-code-list li").all_inner_texts()
        assert len(codes) == 10
        zp.wait_for_function("document.getElementById('totp-state').textContent.includes('is on')")
        # sign in again: the page asks for the code after the password
        zp.context.clear_cookies()
        zp.goto(f"{c.server.url}/login")
        zp.fill("#user", "zoe")
        zp.fill("#password", "zoe-pass-123")
        z.allow("401")  # the first attempt's answer asks for the code
        zp.press("#password", "Enter")
        zp.wait_for_selector("#code-row:not([hidden])")
        zp.fill("#code", codes[0])
        zp.press("#code", "Enter")
        zp.wait_for_url(f"{c.server.url}/")
    page.reload()
    page.wait_for_selector("#users tr[data-user='zoe']:has-text('on (9 codes)')")


def test_required_enrolment_sends_the_console_to_the_account_page(
    browser: Any, acct_server: Server
) -> None:
    cli = [sys.executable, "-m", "appliance", "user", "add", "yan", "--role", "viewer",
           "--require-2fa", "--password-stdin", "--state-dir", str(STATE[0])]  # fmt: skip
    done = subprocess.run(cli, input="yan-pass-123\n", capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    for y in open_console(browser, acct_server, {"width": 1280, "height": 900}):
        yp = y.page
        yp.goto(f"{acct_server.url}/login")
        yp.fill("#user", "yan")
        yp.fill("#password", "yan-pass-123")
        yp.press("#password", "Enter")
        yp.wait_for_url(f"{acct_server.url}/account")
        assert yp.locator("#enrol-notice").is_visible()
