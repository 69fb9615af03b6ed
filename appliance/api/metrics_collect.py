"""The collector behind ``/api/metrics`` (imports prometheus-client: loaded on the first scrape).

Everything is read from the appliance when Prometheus scrapes, through its public state (the
frame hub's signal, the encoder's stats, the HID controller's per-device status, the power facet,
the login throttle): gauges for levels, counters for totals (rates are Prometheus's job —
``rate(ipkvm_h264_frames_encoded_total[1m])`` is the encoder's frame rate).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from appliance.api.auth import LOGIN_THROTTLE
from appliance.api.metrics import METRIC_SOURCES
from appliance.api.webrtc import WEBRTC
from appliance.runtime import APPLIANCE

CONTENT_TYPE = CONTENT_TYPE_LATEST


def registry(app: web.Application) -> CollectorRegistry:
    """A registry of this app's own (never the module-global default one)."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(ApplianceCollector(app))
    return reg


def exposition(reg: CollectorRegistry) -> bytes:
    return generate_latest(reg)


def _gauge(name: str, doc: str, value: float, labels: dict[str, str] | None = None) -> Metric:
    if labels is None:
        return GaugeMetricFamily(name, doc, value=value)
    family = GaugeMetricFamily(name, doc, labels=list(labels))
    family.add_metric(list(labels.values()), value)
    return family


class ApplianceCollector(Collector):
    def __init__(self, app: web.Application) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        app = self.app
        appliance = app[APPLIANCE]
        yield from self._target(appliance)
        yield from self._video(appliance)
        yield from self._viewers(appliance, app)
        yield from self._hid(appliance)
        yield from self._power(appliance)
        yield from self._switch(appliance)
        throttle = app.get(LOGIN_THROTTLE)
        if throttle is not None:
            yield CounterMetricFamily(
                "ipkvm_login_failures",
                "Failed logins and Basic-auth checks since start",
                value=throttle.failures_total,
            )
        for source in app[METRIC_SOURCES]:
            yield from source(app)

    @staticmethod
    def _target(appliance: Any) -> Iterator[Metric]:
        online = appliance.hid.online
        yield _gauge(
            "ipkvm_target_online",
            "The target takes HID reports (1), refuses them (0), or unknown (-1)",
            -1 if online is None else int(online),
        )
        yield _gauge("ipkvm_target_info", "The target kind", 1, {"kind": appliance.target.kind})

    @staticmethod
    def _video(appliance: Any) -> Iterator[Metric]:
        signal = appliance.hub.signal
        yield _gauge(
            "ipkvm_capture_signal", "Capture status (1 for the current one)", 1,
            {"status": str(signal.status)},
        )  # fmt: skip
        yield _gauge("ipkvm_capture_fps", "Capture frame rate", float(signal.fps))
        yield _gauge("ipkvm_capture_width_pixels", "Capture width", float(signal.width or 0))
        yield _gauge("ipkvm_capture_height_pixels", "Capture height", float(signal.height or 0))
        h264 = appliance.h264
        stats = h264.stats
        yield CounterMetricFamily(
            "ipkvm_h264_frames_encoded", "H.264 frames encoded", value=stats.frames_encoded
        )
        yield CounterMetricFamily("ipkvm_h264_keyframes", "H.264 keyframes", value=stats.keyframes)
        yield CounterMetricFamily(
            "ipkvm_h264_bytes", "H.264 bytes produced (rate x 8 = bitrate)", value=stats.bytes_out
        )
        yield _gauge(
            "ipkvm_h264_target_bitrate_bits",
            "Configured H.264 bitrate",
            h264.settings.bitrate * 1000,
        )
        yield _gauge("ipkvm_h264_subscribers", "Viewers of the H.264 encoder", h264.subscribers)
        yield _gauge(
            "ipkvm_h264_hardware", "1 while the hardware (V4L2 M2M) encoder is in use",
            1.0 if h264.codec_name == "h264_v4l2m2m" else 0.0,
        )  # fmt: skip
        yield from ApplianceCollector._work(appliance.hub.work)

    @staticmethod
    def _work(work: Any) -> Iterator[Metric]:
        """The pipeline's per-stage work (docs/video.md): divide by frames for 'per frame'."""
        yield CounterMetricFamily(
            "ipkvm_video_frames", "Frames published by the capture source", value=work.frames
        )
        yield CounterMetricFamily(
            "ipkvm_video_passthrough",
            "Device JPEGs sent to viewers untouched (no decode, no encode)",
            value=work.passthrough,
        )
        ops = CounterMetricFamily(
            "ipkvm_video_work",
            "Passes over a picture by stage and kind (decodes, encodes, conversions, copies)",
            labels=["stage", "kind"],
        )
        cpu = CounterMetricFamily(
            "ipkvm_video_cpu_seconds", "Thread CPU time spent per pipeline stage", labels=["stage"]
        )
        for stage, done in work.stages.items():
            for kind, count in done.counts.items():
                ops.add_metric([stage, kind], count)
            cpu.add_metric([stage], done.cpu)
        yield ops
        yield cpu

    @staticmethod
    def _viewers(appliance: Any, app: web.Application) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "ipkvm_viewers", "Video viewers by transport", labels=["transport"]
        )
        for transport, count in appliance.viewers.items():
            family.add_metric([transport], count)
        rtc = app.get(WEBRTC)
        family.add_metric(["webrtc"], len(rtc.peers) if rtc is not None else 0)
        yield family
        yield _gauge("ipkvm_websocket_clients", "Console WebSocket clients", appliance.clients)

    @staticmethod
    def _hid(appliance: Any) -> Iterator[Metric]:
        written = CounterMetricFamily(
            "ipkvm_hid_reports_written", "HID reports written", labels=["device"]
        )
        failed = CounterMetricFamily(
            "ipkvm_hid_reports_failed", "HID report writes that failed", labels=["device"]
        )
        discarded = CounterMetricFamily(
            "ipkvm_hid_reports_discarded", "HID reports dropped while offline", labels=["device"]
        )
        queued = GaugeMetricFamily("ipkvm_hid_queue_depth", "HID reports queued", labels=["device"])
        for device, status in appliance.hid.devices.items():
            written.add_metric([device.value], status.written)
            failed.add_metric([device.value], status.failed)
            discarded.add_metric([device.value], status.discarded)
            queued.add_metric([device.value], status.queued)
        yield from (written, failed, discarded, queued)

    @staticmethod
    def _switch(appliance: Any) -> Iterator[Metric]:
        switch = appliance.switch
        if switch is None:
            return
        status = switch.status()
        yield _gauge(
            "ipkvm_switch_active_port",
            "The KVM switch port on the console (1-based; 0 while unknown)",
            status["active"] or 0,
        )
        states = GaugeMetricFamily(
            "ipkvm_switch_state", "The KVM switch's state (1 for the current one)", labels=["state"]
        )
        for state in ("online", "offline", "switching"):
            states.add_metric([state], int(status["state"] == state))
        yield states
        yield _gauge("ipkvm_switch_info", "The KVM switch driver", 1, {"driver": status["driver"]})

    @staticmethod
    def _power(appliance: Any) -> Iterator[Metric]:
        power = appliance.target.power
        if not power.available:
            return
        status = power.status()
        yield _gauge(
            "ipkvm_power_state", "Power state (1 for the current one)", 1, {"state": status.state}
        )
        leds = GaugeMetricFamily(
            "ipkvm_power_led", "ATX LED lit (1) or dark (0); absent when not wired", labels=["led"]
        )
        for led, lit in status.leds.items():
            if lit is not None:
                leds.add_metric([led], int(lit))
        yield leds
        yield _gauge("ipkvm_power_busy", "An ATX press is in progress", int(status.busy))
