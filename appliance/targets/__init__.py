"""What a target is: the machine the appliance controls, seen as a set of facets.

A :class:`Target` has video (required), HID, power and media facets; a facet a kind lacks is a
null backend (:mod:`appliance.targets.facets`), never a ``None`` to check. Each kind lives in its
own module or subpackage (``demo/``, ``hardware.py``, ``qemu/``) and exposes one
``build(config) -> Target``; :func:`build_target` picks it from :data:`KINDS` by
``target.kind``, importing only the chosen kind (the hardware kind never loads the demo's
drawing code, and the demo never opens a serial port).

The video and HID backends are registries too (:data:`VIDEO_SOURCES`, :data:`HID_OUTPUTS`):
``video.source`` and ``hid.output`` name an entry, so a new backend (QEMU's display, another
serial HID chip) is one entry, not another branch in the runtime. Builders import their modules
lazily. The demo backends need the simulated machine, which the kind provides (created at most
once per target, and only when a demo backend is chosen).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from appliance.targets.boot import BootTable
from appliance.targets.facets import MediaFacet, NullMedia, NullPower, PowerFacet

if TYPE_CHECKING:
    from appliance.config import Config
    from appliance.targets.demo.machine import DemoMachine
    from appliance.targets.demo.rack import DemoRack
    from capture.source import VideoSource
    from hid.output import HidOutput

# target.kind → module with ``build(config) -> Target``.
KINDS: dict[str, str] = {
    "demo": "appliance.targets.demo",
    "hardware": "appliance.targets.hardware",
    "qemu": "appliance.targets.qemu",
}


@dataclass
class Target:
    kind: str
    video: VideoSource
    hid: HidOutput
    power: PowerFacet = field(default_factory=NullPower)
    media: MediaFacet = field(default_factory=NullMedia)
    boot: BootTable = field(default_factory=BootTable)
    """Each machine's boot override (one per switch port): :mod:`appliance.targets.boot`."""

    def facets(self) -> dict[str, bool]:
        """Which facets have a real backend (the console shows only those)."""
        return {
            "video": True,
            "hid": True,
            "power": self.power.available,
            "media": self.media.available,
        }


def build_target(config: Config) -> Target:
    """The target ``target.kind`` names, built from the configuration."""
    module = importlib.import_module(KINDS[config.target.kind])
    target: Target = module.build(config)
    return target


MachineFn = Callable[[], "DemoMachine | DemoRack"]
"""The demo machine the demo backends drive: one machine, or the rack behind a demo switch."""


def _demo_video(config: Config, machine: MachineFn) -> VideoSource:
    from appliance.targets.demo.video import DemoSource

    return DemoSource(machine(), fps=config.video.fps)


def _v4l2_video(config: Config, machine: MachineFn) -> VideoSource:
    from appliance.config.video import load_edid
    from capture.v4l2 import V4l2Source

    v = config.video
    return V4l2Source(
        str(v.device),
        width=v.width,
        height=v.height,
        fps=v.fps,
        fourcc=v.format,
        edid=load_edid(v.edid),
    )


def _demo_hid(config: Config, machine: MachineFn) -> HidOutput:
    from appliance.targets.demo.hid import DemoOutput

    return DemoOutput(machine())


def _otg_hid(config: Config, machine: MachineFn) -> HidOutput:
    from hid.otg import OtgOutput

    otg = config.hid.otg
    return OtgOutput(keyboard=otg.keyboard, mouse_abs=otg.mouse, mouse_rel=otg.mouse_rel)


def _ch9329_hid(config: Config, machine: MachineFn) -> HidOutput:
    from hid.ch9329 import Ch9329Output

    return Ch9329Output(config.hid.ch9329.port, baud=config.hid.ch9329.baud)


def _qemu_only(config: Config, machine: MachineFn) -> Any:
    """The QEMU display and input need the guests, which only the qemu kind has."""
    raise ValueError('video.source / hid.output "qemu" needs target.kind = "qemu"')


VIDEO_SOURCES: dict[str, Callable[[Config, MachineFn], VideoSource]] = {
    "demo": _demo_video,
    "v4l2": _v4l2_video,
    "qemu": _qemu_only,
}
HID_OUTPUTS: dict[str, Callable[[Config, MachineFn], HidOutput]] = {
    "demo": _demo_hid,
    "otg": _otg_hid,
    "ch9329": _ch9329_hid,
    "qemu": _qemu_only,
}


def video_source(config: Config, machine: MachineFn) -> VideoSource:
    return VIDEO_SOURCES[config.video.source](config, machine)


def hid_output(config: Config, machine: MachineFn) -> HidOutput:
    return HID_OUTPUTS[config.hid.output](config, machine)
