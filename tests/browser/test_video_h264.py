"""The H.264 transports in real Chromium: WebCodecs over WebSocket and WebRTC show the demo
target's picture, and the frame stamp read back from the displayed pixels is fresh."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bench.latency import MEASURE_JS, TRANSPORTS, api_login
from tests.browser.conftest import Server, start_server


@pytest.fixture(scope="module")
def stamped_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("state-h264"), config="[demo]\nstamp = true\n")
    yield srv
    srv.stop()


@pytest.mark.parametrize("transport", ["webcodecs", "webcodecs-canvas", "webrtc"])
def test_transport_shows_fresh_stamped_frames(
    browser: Any, stamped_server: Server, transport: str
) -> None:
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        assert api_login(page, stamped_server.url, stamped_server.password) == 200
        module, name, options = TRANSPORTS[transport]
        result = page.evaluate(MEASURE_JS, [module, name, 5, options, True])
    finally:
        page.close()
    assert not errors, errors
    assert "error" not in result, result["error"]
    assert result["size"] == {"width": 1280, "height": 720}
    samples = result["samples"]
    assert len(samples) >= 20, f"only {len(samples)} distinct frames shown in ~3.5 s"
    ordered = sorted(samples)
    assert ordered[len(ordered) // 2] < 1000, (
        f"stale picture: median age {ordered[len(ordered) // 2]} ms"
    )


def test_webrtc_answer_asks_chromium_to_render_at_once(
    browser: Any, stamped_server: Server
) -> None:
    """Chromium offers the playout-delay extension; our answer takes it (min = max = 0 in every
    packet, tests/test_rtp_playout.py), so Chromium shows frames without its smoothing delay."""
    page = browser.new_page()
    try:
        assert api_login(page, stamped_server.url, stamped_server.password) == 200
        sdp = page.evaluate(
            """async () => {
              const { WebRtcTransport } = await import("/static/js/transport-webrtc.js");
              let t;
              const playing = new Promise((resolve) => {
                t = new WebRtcTransport({ onStatus: (s) => s === "playing" && resolve() });
              });
              const box = document.createElement("div");
              document.body.replaceChildren(box);
              t.start(box, {});
              await Promise.race([playing, new Promise((r) => setTimeout(r, 10000))]);
              const sdp = t.pc && t.pc.remoteDescription ? t.pc.remoteDescription.sdp : null;
              t.stop();
              return sdp;
            }"""
        )
    finally:
        page.close()
    assert sdp is not None, "not playing within 10 s"
    assert "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay" in sdp
