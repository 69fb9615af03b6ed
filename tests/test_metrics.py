"""``/api/metrics`` parsed with Prometheus's own parser; values move when a user does something."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Server, start_server


async def scrape(
    http: aiohttp.ClientSession,
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with http.get("/api/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=")
        text = await resp.text()
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return float(samples[(name, tuple(sorted(labels.items())))])


async def test_metrics_follow_what_users_do(server: Server) -> None:
    async with aiohttp.ClientSession(base_url=server.url) as anon:
        async with anon.get("/api/metrics") as resp:
            assert resp.status == 401
        async with anon.post("/api/auth/login", json={"user": "admin", "password": "wrong"}) as r:
            assert r.status == 401
    async with aiohttp.ClientSession(base_url=server.url, headers=server.basic()) as http:
        await asyncio.sleep(0.3)  # the first frames and the controller's first reports
        before = await scrape(http)
        assert value(before, "ipkvm_target_info", kind="demo") == 1
        assert value(before, "ipkvm_target_online") in (-1, 1)
        assert value(before, "ipkvm_login_failures_total") == 1
        assert value(before, "ipkvm_capture_width_pixels") == 1280
        assert value(before, "ipkvm_power_state", state="on") == 1
        assert value(before, "ipkvm_power_led", led="power") == 1
        assert value(before, "ipkvm_power_busy") == 0
        assert value(before, "ipkvm_viewers", transport="mjpeg") == 0
        assert value(before, "ipkvm_viewers", transport="webrtc") == 0
        assert value(before, "ipkvm_hid_queue_depth", device="keyboard") == 0
        written = value(before, "ipkvm_hid_reports_written_total", device="keyboard")

        async with http.post("/api/hid/keys", json={"keys": "a"}) as resp:
            assert resp.status == 200
        after = await scrape(http)
        # a chord is a press and a release: two keyboard reports
        assert value(after, "ipkvm_hid_reports_written_total", device="keyboard") >= written + 2
        assert value(after, "ipkvm_hid_reports_failed_total", device="keyboard") == 0

        async with http.get("/api/stream.mjpeg") as stream:
            await stream.content.readany()
            watching = await scrape(http)
            assert value(watching, "ipkvm_viewers", transport="mjpeg") == 1
            assert value(watching, "ipkvm_capture_fps") > 0

        # a powered-off target: reports fail, the power LED and state follow
        async with http.post("/api/power", json={"action": "off"}) as resp:
            assert resp.status == 200
        await asyncio.sleep(0.3)
        async with http.post("/api/hid/key", json={"code": "KeyB", "down": True}) as resp:
            pass
        await asyncio.sleep(0.3)
        off = await scrape(http)
        assert value(off, "ipkvm_power_state", state="off") == 1
        assert value(off, "ipkvm_power_led", led="power") == 0
        assert value(off, "ipkvm_target_online") == 0
        assert value(off, "ipkvm_hid_reports_failed_total", device="keyboard") >= 1


async def test_other_subsystems_add_their_metrics(server: Server) -> None:
    """The hook the KVM switch will use: a source read at scrape time, per app."""
    from prometheus_client.core import GaugeMetricFamily

    from appliance.api.metrics import add_source

    def switch(app: object) -> list[GaugeMetricFamily]:
        return [GaugeMetricFamily("ipkvm_switch_port", "Active port", value=3)]

    add_source(server.app, switch)
    async with aiohttp.ClientSession(base_url=server.url, headers=server.basic()) as http:
        assert value(await scrape(http), "ipkvm_switch_port") == 3


async def test_switch_port_and_state_follow_a_select(tmp_path: Path) -> None:
    """The KVM switch's active port and state are metrics, and a select moves the port."""
    toml = '[switch]\ndriver = "demo"\ncount = 3\n'
    srv, runner = await start_server(tmp_path, toml)
    try:
        async with aiohttp.ClientSession(base_url=srv.url, headers=srv.basic()) as http:

            async def scrape() -> dict[str, float]:
                async with http.get("/api/metrics") as resp:
                    assert resp.status == 200
                    text = await resp.text()
                values: dict[str, float] = {}
                for family in text_string_to_metric_families(text):
                    for sample in family.samples:
                        key = sample.name + "".join(f"[{v}]" for v in sample.labels.values())
                        values[key] = sample.value
                return values

            before = await scrape()
            assert before["ipkvm_switch_active_port"] == 1
            assert before["ipkvm_switch_state[online]"] == 1
            async with http.post("/api/switch/select", json={"port": 3}) as resp:
                assert resp.status == 200, await resp.text()
            after = await scrape()
            assert after["ipkvm_switch_active_port"] == 3
            assert after["ipkvm_switch_info[demo]"] == 1
    finally:
        await runner.cleanup()
