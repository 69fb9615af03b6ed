"""The browser console against a real demo appliance, as a user would use it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Console, start_server

pytestmark = pytest.mark.browser

# Backspace presses that empty the demo's Asset Tag field (it holds at most 32 characters).
CLEAR_FIELD = " ".join(["backspace"] * 34)


def demo(c: Console) -> dict[str, Any]:
    state: dict[str, Any] = c.api("GET", "/api/demo/state")
    return state


def state(c: Console) -> dict[str, Any]:
    s: dict[str, Any] = c.api("GET", "/api/state")
    return s


def picture_point(c: Console, px: float, py: float) -> tuple[float, float]:
    """Page coordinates of target pixel (px, py), from the displayed picture's real box."""
    c.page.wait_for_function("document.querySelector('#video-box img')?.naturalWidth > 0")
    left, top, width, height = c.page.evaluate(
        "(() => { const r = document.querySelector('#video-box img').getBoundingClientRect();"
        " return [r.left, r.top, r.width, r.height]; })()"
    )
    d = demo(c)
    scale = min(width / d["width"], height / d["height"])
    pic_left = left + (width - d["width"] * scale) / 2
    pic_top = top + (height - d["height"] * scale) / 2
    return pic_left + (px + 0.5) * scale, pic_top + (py + 0.5) * scale


def tab_center(c: Console, name: str) -> tuple[float, float]:
    from appliance.targets.demo.menu import default_tabs
    from appliance.targets.demo.screen import Geometry

    d = demo(c)
    names = tuple(t.name for t in default_tabs())
    x, y, w, h = Geometry(d["width"], d["height"], names).tabs[names.index(name)]
    return picture_point(c, x + w / 2, y + h / 2)


def clear_field(c: Console) -> None:
    c.api("POST", "/api/hid/keys", {"keys": CLEAR_FIELD})
    c.wait_for("an empty Asset Tag", lambda: demo(c)["text"] == "")


def test_root_redirects_to_login_when_signed_out(console: Console) -> None:
    console.page.goto(f"{console.server.url}/")
    console.page.wait_for_url("**/login")
    assert console.page.locator("#user").input_value() == "admin"


def test_wrong_password_shows_error_then_right_one_opens_console(console: Console) -> None:
    page = console.page
    console.allow(r"401")  # the refused login request is logged by Chromium
    page.goto(f"{console.server.url}/login")
    assert page.evaluate("document.activeElement.id") == "password"
    page.fill("#password", "not-the-password")
    page.press("#password", "Enter")
    error = page.locator("#login-error")
    error.wait_for(state="visible")
    assert "wrong user or password" in error.inner_text().lower()
    assert page.url.endswith("/login")
    page.fill("#password", console.server.password)
    page.click("#login-submit")
    page.wait_for_url(f"{console.server.url}/")
    page.wait_for_function("document.activeElement?.id === 'capture'")
    page.locator("#hid-status", has_text="HID").wait_for()
    assert "offline" not in page.locator("#hid-status").inner_text()


def test_logout_returns_to_login(console: Console) -> None:
    console.login()
    console.page.click("#logout-btn")
    console.page.wait_for_url("**/login")
    console.page.goto(f"{console.server.url}/")
    console.page.wait_for_url("**/login")  # the session is really gone


def test_video_shows_frames_with_the_right_aspect(console: Console, artifacts: Path) -> None:
    console.login()
    page = console.page
    page.wait_for_function("document.querySelector('#video-box img')?.naturalWidth > 0")
    size = page.evaluate(
        "(() => { const i = document.querySelector('#video-box img');"
        " return [i.naturalWidth, i.naturalHeight]; })()"
    )
    video = state(console)["video"]
    assert size == [video["width"], video["height"]]
    page.locator("#stats", has_text="fps").wait_for()
    page.locator("#stats", has_text="RTT").wait_for()
    page.wait_for_function("/RTT \\d+ ms/.test(document.getElementById('stats').textContent)")
    # The received bitrate, counted from the stream's bytes.
    page.wait_for_function(
        "/\\d+(\\.\\d)? [kM]bit\\/s/.test(document.getElementById('stats').textContent)"
    )
    assert page.locator("#banner").is_hidden()
    page.screenshot(path=str(artifacts / "console.png"))


def test_typed_keys_reach_the_target_including_shift(console: Console) -> None:
    console.login()
    clear_field(console)
    page = console.page
    page.keyboard.type("hello world 42")
    page.keyboard.press("Shift+KeyH")
    page.keyboard.press("Shift+Digit1")  # "!" on the US layout
    page.keyboard.down("Shift")
    page.keyboard.type("ok")
    page.keyboard.up("Shift")
    expected = "hello world 42H!OK"
    console.wait_for(f"{expected!r} in the demo", lambda: demo(console)["text"] == expected)
    assert state(console)["hid"]["keys_held"] == []


def test_held_key_is_released_when_the_window_loses_focus(console: Console) -> None:
    console.login()
    page = console.page
    page.keyboard.down("Control")
    console.wait_for(
        "ControlLeft held", lambda: "ControlLeft" in state(console)["hid"]["keys_held"]
    )
    page.evaluate("window.dispatchEvent(new Event('blur'))")
    console.wait_for("no key held", lambda: state(console)["hid"]["keys_held"] == [])
    page.keyboard.up("Control")


def test_reload_while_a_key_is_held_leaves_no_stuck_key(console: Console) -> None:
    console.login()
    page = console.page
    page.keyboard.down("Shift")
    console.wait_for("ShiftLeft held", lambda: "ShiftLeft" in state(console)["hid"]["keys_held"])
    page.reload()
    console.wait_for("no key held", lambda: state(console)["hid"]["keys_held"] == [])
    page.keyboard.up("Shift")


def test_caps_lock_led_follows_the_target(console: Console) -> None:
    console.login()
    page = console.page
    led = page.locator("#led-caps")
    was_on = "on" in (led.get_attribute("class") or "")
    page.keyboard.press("CapsLock")
    console.wait_for("caps LED toggled", lambda: state(console)["hid"]["leds"]["caps"] != was_on)
    lit = "true" if not was_on else "false"
    page.wait_for_function(
        f"document.getElementById('led-caps').classList.contains('on') === {lit}"
    )
    page.keyboard.press("CapsLock")
    console.wait_for("caps LED back", lambda: state(console)["hid"]["leds"]["caps"] == was_on)


def test_paste_german_text_with_de_layout(de_console: Console) -> None:
    c = de_console
    c.login()
    clear_field(c)
    page = c.page
    page.click("#paste-btn")
    page.locator("#paste-layout option[value='de']").wait_for(state="attached")
    page.select_option("#paste-layout", "de")
    page.fill("#paste-text", "Grüße aus München")
    page.click("#paste-send")
    page.locator("#paste-result", has_text="Typed 17 characters").wait_for(timeout=15000)
    assert page.locator("#paste-untypable").is_hidden()
    assert page.evaluate("document.getElementById('paste-progress').value") == 1
    assert demo(c)["text"] == "Grüße aus München"


def test_paste_reports_untypable_characters(console: Console) -> None:
    console.login()
    clear_field(console)
    page = console.page
    page.click("#paste-btn")
    page.locator("#paste-layout option[value='us']").wait_for(state="attached")
    page.select_option("#paste-layout", "us")
    page.fill("#paste-text", "Preis: 5 €")
    page.click("#paste-send")
    page.locator("#paste-result", has_text="could not be typed").wait_for(timeout=15000)
    items = page.locator("#paste-untypable li").all_inner_texts()
    assert len(items) == 1 and "€" in items[0] and "U+20AC" in items[0]
    assert demo(console)["text"] == "Preis: 5 "


def test_absolute_mouse_maps_the_picture_not_the_letterbox(console: Console) -> None:
    console.login()
    page = console.page
    page.wait_for_function("document.querySelector('#video-box img')?.naturalWidth > 0")
    box = page.evaluate(
        "(() => { const r = document.getElementById('capture').getBoundingClientRect();"
        " return [r.left, r.top, r.width, r.height]; })()"
    )
    left, top, width, height = box
    d = demo(console)
    w, h = d["width"], d["height"]
    scale = min(width / w, height / h)
    pic_left = left + (width - w * scale) / 2
    pic_top = top + (height - h * scale) / 2
    # A quarter of the way into the picture, then deep inside the left letterbox bar.
    page.mouse.move(pic_left + w * scale / 4, pic_top + h * scale / 4)
    console.wait_for(
        "pointer at a quarter of the screen",
        lambda: (
            abs(demo(console)["pointer"]["x"] - w / 4) <= 3
            and abs(demo(console)["pointer"]["y"] - h / 4) <= 3
        ),
    )
    if pic_left - left > 10:
        page.mouse.move(left + 2, pic_top + h * scale / 2)
        console.wait_for("pointer at the left edge", lambda: demo(console)["pointer"]["x"] == 0)


def test_relative_mouse_mode_moves_the_pointer(console: Console) -> None:
    console.login()
    page = console.page
    console.api("POST", "/api/hid/mouse", {"x": 0.5, "y": 0.5})  # away from the edges
    page.click("#mouse-btn")
    try:
        console.wait_for("relative mode", lambda: state(console)["hid"]["mouse_mode"] == "relative")
        page.locator("#mouse-btn", has_text="relative").wait_for()
        before = demo(console)["pointer"]
        page.mouse.move(400, 300)
        page.mouse.move(500, 360, steps=10)
        console.wait_for("the pointer to move", lambda: demo(console)["pointer"] != before)
        after = demo(console)["pointer"]
        assert after["x"] > before["x"] and after["y"] > before["y"]
        page.click("#mouse-btn")
        console.wait_for("absolute mode", lambda: state(console)["hid"]["mouse_mode"] == "absolute")
    finally:
        console.api("PUT", "/api/hid/mouse_mode", {"mode": "absolute"})


def test_special_keys_menu_works_with_the_keyboard_only(console: Console) -> None:
    console.login()
    clear_field(console)
    page = console.page
    page.keyboard.type("x")
    console.wait_for("editing the Asset Tag", lambda: demo(console)["editing"])
    # Leave the capture area with the documented chord, then drive the menu with keys.
    page.keyboard.press("Control+Alt+Shift+KeyM")
    assert page.evaluate("document.activeElement.id") == "keys-btn"
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.getAttribute('role')") == "menuitem"
    page.keyboard.press("End")
    for _ in range(20):
        if page.evaluate("document.activeElement.textContent") == "Esc":
            break
        page.keyboard.press("ArrowUp")
    assert page.evaluate("document.activeElement.textContent") == "Esc"
    page.keyboard.press("Enter")
    console.wait_for("editing ended by Esc", lambda: not demo(console)["editing"])
    assert page.locator("#keys-menu").is_hidden()
    assert page.evaluate("document.activeElement.id") == "keys-btn"
    assert demo(console)["text"] == "x"


def test_target_power_off_shows_target_off(console: Console) -> None:
    console.login()
    page = console.page
    try:
        console.api("POST", "/api/demo/power", {"on": False})
        page.locator("#video-message", has_text="Target off").wait_for(timeout=10000)
    finally:
        console.api("POST", "/api/demo/power", {"on": True})
    page.locator("#video-message").wait_for(state="hidden", timeout=10000)


def test_phone_width_collapses_the_toolbar(phone_console: Console, artifacts: Path) -> None:
    c = phone_console
    c.login()
    page = c.page
    assert page.locator("#tb-toggle").is_visible()
    assert page.locator("#paste-btn").is_hidden()
    page.click("#tb-toggle")
    assert page.locator("#paste-btn").is_visible()
    page.wait_for_function("document.querySelector('#video-box img')?.naturalWidth > 0")
    page.screenshot(path=str(artifacts / "console-phone.png"))


# Chromium logs refused connections while the appliance is unreachable: expected there.
OUTAGE_ERRORS = (
    r"WebSocket connection|ERR_INCOMPLETE_CHUNKED_ENCODING|ERR_INTERNET_DISCONNECTED"
    r"|ERR_CONNECTION_REFUSED|401"
)


def test_network_loss_shows_reconnecting_and_recovers(console: Console) -> None:
    console.login()
    console.allow(OUTAGE_ERRORS)
    page = console.page
    page.wait_for_function("document.querySelector('#video-box img')?.naturalWidth > 0")
    clear_field(console)
    console.context.set_offline(True)
    banner = page.locator("#banner")
    banner.wait_for(state="visible", timeout=20000)
    assert "reconnecting" in banner.inner_text().lower()
    console.context.set_offline(False)
    banner.wait_for(state="hidden", timeout=20000)
    page.wait_for_function("/RTT \\d+ ms/.test(document.getElementById('stats').textContent)")
    page.keyboard.type("back")
    console.wait_for("typing after the reconnect", lambda: demo(console)["text"] == "back")


def test_service_restart_reconnects_or_asks_to_sign_in_again(
    own_console: Console, tmp_path: Path
) -> None:
    c = own_console
    c.login()
    c.allow(OUTAGE_ERRORS)
    page = c.page
    old = c.server
    old.process.kill()  # a crash; systemd would start it again
    old.process.wait(timeout=10)
    page.locator("#banner", has_text="reconnecting").wait_for(timeout=20000)
    port = int(old.url.rsplit(":", 1)[1])
    new = start_server(tmp_path / "state", port=port, password=old.password)
    c.server = new
    try:
        # Sessions live in the service's memory: after a restart the console must notice that
        # its session is gone and return to the login page by itself (or, should sessions
        # survive restarts one day, simply reconnect).
        page.wait_for_function(
            "location.pathname === '/login' || "
            "(document.getElementById('banner').hidden && "
            "/RTT \\d+ ms/.test(document.getElementById('stats').textContent))",
            timeout=30000,
        )
        if page.url.endswith("/login"):
            c.login()
        page.wait_for_function("document.querySelector('#video-box img')?.naturalWidth > 0")
        assert page.locator("#banner").is_hidden()
        assert re.search(r"RTT", page.locator("#stats").inner_text())
    finally:
        new.stop()


def test_touch_tap_clicks_and_drag_moves(touch_console: Console) -> None:
    c = touch_console
    c.login()
    if demo(c)["tab"] != "Main":
        c.api("POST", "/api/hid/keys", {"keys": "home"})
    x, y = tab_center(c, "Advanced")
    c.page.touchscreen.tap(x, y)
    c.wait_for("the Advanced tab", lambda: demo(c)["tab"] == "Advanced")
    x, y = tab_center(c, "Main")
    c.page.touchscreen.tap(x, y)
    c.wait_for("the Main tab", lambda: demo(c)["tab"] == "Main")
    # A drag (no tap) moves the pointer under the finger without clicking.
    cdp = c.context.new_cdp_session(c.page)
    start, end = picture_point(c, 300, 500), picture_point(c, 900, 600)

    def touch(kind: str, point: tuple[float, float] | None) -> None:
        points = [] if point is None else [{"x": point[0], "y": point[1]}]
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

    touch("touchStart", start)
    for i in range(1, 11):
        touch(
            "touchMove",
            (start[0] + (end[0] - start[0]) * i / 10, start[1] + (end[1] - start[1]) * i / 10),
        )
    touch("touchEnd", None)
    c.wait_for(
        "the pointer at the end of the drag",
        lambda: abs(demo(c)["pointer"]["x"] - 900) <= 3 and abs(demo(c)["pointer"]["y"] - 600) <= 3,
    )
    assert demo(c)["tab"] == "Main"


def test_wheel_direction_moves_the_selection(console: Console) -> None:
    console.login()
    page = console.page
    clear_field(console)
    console.api("POST", "/api/hid/keys", {"keys": "esc"})
    assert demo(console)["selection"]["item"] == "Asset Tag"
    page.mouse.move(*picture_point(console, 640, 400))
    page.mouse.wheel(0, 100)  # scrolling down = wheel turned towards the user = next item
    console.wait_for("the next item", lambda: demo(console)["selection"]["item"] != "Asset Tag")
    assert demo(console)["selection"]["item"] == "System Language"
    page.mouse.wheel(0, -100)
    console.wait_for("back up", lambda: demo(console)["selection"]["item"] == "Asset Tag")


def test_on_screen_keyboard_with_sticky_shift(console: Console) -> None:
    console.login()
    clear_field(console)
    page = console.page
    page.click("#osk-btn")
    osk = page.locator("#osk")
    osk.locator("[data-code='ShiftLeft']").click()
    assert osk.locator("[data-code='ShiftLeft']").get_attribute("aria-pressed") == "true"
    osk.locator("[data-code='KeyA']").click()
    assert osk.locator("[data-code='ShiftLeft']").get_attribute("aria-pressed") == "false"
    osk.locator("[data-code='KeyB']").click()
    osk.locator("[data-code='Digit1']").click()
    console.wait_for("'Ab1' in the demo", lambda: demo(console)["text"] == "Ab1")
    assert state(console)["hid"]["keys_held"] == []


def test_snapshot_downloads_a_picture(console: Console) -> None:
    console.login()
    page = console.page
    with page.expect_download() as info:
        page.click("#snapshot-btn")
    download = info.value
    assert download.suggested_filename.startswith("ipkvm-")
    data = Path(download.path()).read_bytes()
    assert data[:2] == b"\xff\xd8" or data[:8] == b"\x89PNG\r\n\x1a\n"


def test_paste_shows_progress_and_can_be_cancelled(console: Console) -> None:
    console.login()
    clear_field(console)
    page = console.page
    page.click("#paste-btn")
    page.locator("#paste-layout option[value='us']").wait_for(state="attached")
    page.select_option("#paste-layout", "us")
    page.fill("#paste-pacing", "25")
    page.dispatch_event("#paste-pacing", "change")
    text = "abcdefghij" * 15
    page.fill("#paste-text", text)
    page.click("#paste-send")
    # The bar moves while typing goes on (progress events over the WebSocket).
    page.wait_for_function(
        "(() => { const p = document.getElementById('paste-progress');"
        " return p.max > 1 && p.value > 0 && p.value < p.max; })()",
        timeout=15000,
    )
    assert page.evaluate("document.activeElement.id") == "paste-cancel"
    page.click("#paste-cancel")
    page.locator("#paste-result", has_text="Cancelled").wait_for(timeout=10000)
    assert page.locator("#paste-send").is_enabled()
    typed = demo(console)["text"]
    assert 0 < len(typed) < 32 and text.startswith(typed)
    assert state(console)["hid"]["keys_held"] == []


def test_login_throttle_says_when_to_retry(own_console: Console) -> None:
    c = own_console
    c.allow(r"40[1-9]|429")
    page = c.page
    page.goto(f"{c.server.url}/login")
    error = page.locator("#login-error")
    for attempt in range(8):
        page.fill("#password", f"wrong-{attempt}")
        page.wait_for_function("!document.getElementById('login-submit').disabled")
        page.press("#password", "Enter")
        page.wait_for_function(
            "(() => { const e = document.getElementById('login-error');"
            " return !e.hidden && e.textContent; })()"
        )
        if "too many attempts" in error.inner_text().lower():
            break
    text = error.inner_text()
    assert re.search(r"Too many attempts, try again in \d+ s", text), text
    assert page.locator("#login-submit").is_disabled()
    # The countdown ends by itself and the form works again.
    page.wait_for_function("!document.getElementById('login-submit').disabled", timeout=20000)


def test_fullscreen_hides_the_toolbar_and_keeps_keys_for_the_target(console: Console) -> None:
    console.login()
    clear_field(console)
    page = console.page
    page.click("#fullscreen-btn")
    page.wait_for_function("document.fullscreenElement !== null")
    page.wait_for_function("document.body.classList.contains('fullscreen')")
    assert page.evaluate("document.activeElement.id") == "capture"
    assert page.locator("#fullscreen-btn").inner_text() == "Exit fullscreen"
    page.keyboard.type("fs")
    console.wait_for("typing in fullscreen", lambda: demo(console)["text"] == "fs")
    # Away from the top edge the toolbar slides away (a sliver stays there to reveal it).
    page.mouse.move(640, 500)
    page.wait_for_function(
        "document.getElementById('toolbar').getBoundingClientRect().bottom <= 8", timeout=5000
    )
    page.evaluate("document.exitFullscreen()")
    page.wait_for_function("!document.body.classList.contains('fullscreen')")


def test_stream_settings_reconnect_with_new_fps_and_quality_and_persist(console: Console) -> None:
    console.login()
    page = console.page
    page.wait_for_function("document.querySelector('#video-box img')?.naturalWidth > 0")
    page.click("#settings-btn")
    assert page.locator("#transport-name").inner_text() == "MJPEG"
    with page.expect_request(lambda r: "/api/stream.mjpeg" in r.url and "fps=5" in r.url):
        page.fill("#set-fps", "5")
        page.dispatch_event("#set-fps", "change")
    with page.expect_request(lambda r: "/api/stream.mjpeg" in r.url and "quality=40" in r.url):
        page.fill("#set-quality", "40")
        page.dispatch_event("#set-quality", "change")
    assert page.locator("#set-fps-out").inner_text() == "5"
    with page.expect_request(
        lambda r: "/api/stream.mjpeg" in r.url and "fps=5" in r.url and "quality=40" in r.url
    ):
        page.reload()
    page.wait_for_function("document.querySelector('#video-box img')?.naturalWidth > 0")
    page.evaluate("localStorage.clear()")


def test_hidden_tab_releases_keys_and_pauses_the_stream(console: Console) -> None:
    console.login()
    page = console.page
    page.wait_for_function("document.querySelector('#video-box img')?.naturalWidth > 0")
    page.keyboard.down("Shift")
    console.wait_for("ShiftLeft held", lambda: "ShiftLeft" in state(console)["hid"]["keys_held"])
    # Headless pages are always visible: pretend the user switched tabs.
    page.evaluate(
        "Object.defineProperty(document, 'visibilityState', {value: 'hidden', configurable: true});"
        "document.dispatchEvent(new Event('visibilitychange'))"
    )
    console.wait_for("no key held", lambda: state(console)["hid"]["keys_held"] == [])
    # Shown again: the stream, paused while hidden, starts anew.
    with page.expect_request(lambda r: "/api/stream.mjpeg" in r.url):
        page.evaluate(
            "Object.defineProperty(document, 'visibilityState', {value: 'visible',"
            " configurable: true}); document.dispatchEvent(new Event('visibilitychange'))"
        )
    page.keyboard.up("Shift")


PARSER_CHECK = """async () => {
  const { MultipartParser } = await import('/static/js/transport-mjpeg.js');
  const enc = new TextEncoder();
  const body = (n, seed) => new Uint8Array(n).map((_, i) => (i * 7 + seed) & 255);
  const results = [];
  for (const withLength of [true, false]) {
    const pieces = [];
    for (const [n, seed] of [[10, 1], [3000, 2], [5, 3]]) {
      const len = withLength ? `Content-Length: ${n}\\r\\n` : '';
      pieces.push(enc.encode(`--frame\\r\\nContent-Type: image/jpeg\\r\\n${len}\\r\\n`));
      pieces.push(body(n, seed), enc.encode('\\r\\n'));
    }
    pieces.push(enc.encode('--frame\\r\\n\\r\\n'));
    const all = new Uint8Array(pieces.reduce((a, p) => a + p.length, 0));
    let at = 0;
    for (const p of pieces) { all.set(p, at); at += p.length; }
    for (const chunk of [1, 13, 100000]) {
      const parser = new MultipartParser('frame');
      const parts = [];
      for (let i = 0; i < all.length; i += chunk) {
        parts.push(...parser.feed(all.subarray(i, i + chunk)));
      }
      const ok = parts.length === 3 && parts.every((p, k) =>
        p.length === [10, 3000, 5][k] && p.every((b, i) => b === ((i * 7 + k + 1) & 255)));
      results.push(ok);
    }
  }
  return results;
}"""


def test_mjpeg_parser_splits_parts_with_and_without_content_length(console: Console) -> None:
    console.login()
    assert console.page.evaluate(PARSER_CHECK) == [True] * 6


def test_transport_can_be_chosen_in_the_panel_and_the_url(console: Console) -> None:
    console.login()
    page = console.page
    page.click("#settings-btn")
    options = page.locator("#set-transport option").evaluate_all("os => os.map(o => o.value)")
    assert options[0] == "auto" and "mjpeg" in options
    assert page.locator("#set-transport").input_value() == "mjpeg"  # see conftest
    with page.expect_websocket(lambda ws: "/api/stream.h264" in ws.url):
        page.select_option("#set-transport", "auto")  # localhost is secure: WebCodecs first
    with page.expect_request(lambda r: "/api/stream.mjpeg" in r.url):
        page.select_option("#set-transport", "mjpeg")
    page.wait_for_function("document.querySelector('#video-box img')?.naturalWidth > 0")
    assert page.locator("#transport-name").inner_text() == "MJPEG"
    assert page.locator("#video-box > *").count() == 1  # the old picture element is gone
    # An unknown id in the URL falls back to automatic choice instead of breaking the page.
    page.goto(f"{console.server.url}/?transport=nonsense")
    page.wait_for_function("document.getElementById('transport-name').textContent !== '—'")
    page.wait_for_function("document.querySelector('#video-box > *') !== null")
    page.evaluate("localStorage.clear()")
