"""The QEMU target: QEMU guests reached through QMP, as if each were a server behind the HDMI
capture, the USB gadget, the ATX header and a USB CD-ROM (docs/qemu.md).

- :mod:`.guest` — one guest: launched and supervised, or attached; its QMP connection;
- :mod:`.command` — a launched guest's command line; :mod:`.rack` — the guests and the one on
  the console (the ``qemu`` switch driver, :mod:`appliance.switch.qemu`, moves it);
- facets: :mod:`.display` (video, over :mod:`.vnc` or ``screendump``), :mod:`.hid` (input, decoded
  by :mod:`.input`), :mod:`.power`, :mod:`.media`.

The power facet starts the guests (it is the first facet the appliance starts and the last it
closes), so QEMU is up before the display looks for it and goes down after input is released.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from appliance.targets import Target, hid_output, video_source

if TYPE_CHECKING:
    from appliance.config import Config
    from appliance.targets.qemu.rack import QemuRack
    from capture.source import VideoSource

PACKAGE = "qemu-system-x86"
"""The Debian package with qemu-system-x86_64 (named in the error when it is missing)."""


class QemuMissing(FileNotFoundError):
    """The configured QEMU binary is not installed (an OSError: ``ipkvm serve`` prints it as
    one line and exits non-zero)."""


@dataclass
class QemuTarget(Target):
    rack: QemuRack | None = None


def run_dir(config: Config) -> Path:
    return Path(config.qemu.run_dir) if config.qemu.run_dir else config.server.state_dir / "qemu"


def guest_count(config: Config) -> int:
    if config.qemu.attach:
        return len(config.qemu.attach)
    return config.switch.port_count if config.switch.driver == "qemu" else 1


def make_rack(config: Config) -> QemuRack:
    from appliance.targets.qemu.command import guest_argv
    from appliance.targets.qemu.guest import QemuGuest
    from appliance.targets.qemu.rack import QemuRack

    q = config.qemu  # (attach vs switch.count is checked by the configuration loader)
    if q.attach:
        return QemuRack(
            [
                QemuGuest(f"guest{i + 1}", Path(path), timeout=q.timeout)
                for i, path in enumerate(q.attach)
            ]
        )
    if shutil.which(q.binary) is None:
        raise QemuMissing(
            f"{q.binary} is not installed: install the Debian package {PACKAGE} "
            f"(apt-get install {PACKAGE} seabios), or set qemu.binary"
        )
    where = run_dir(config)
    where.mkdir(parents=True, exist_ok=True, mode=0o700)
    names = [f"guest{i + 1}" for i in range(guest_count(config))]
    return QemuRack(
        [
            QemuGuest(
                name,
                where / f"{name}.qmp",
                guest_argv(q, name),
                restart=q.restart == "on-crash",
                timeout=q.timeout,
            )
            for name in names
        ]
    )


def build(config: Config) -> QemuTarget:
    from appliance.targets.demo import make_machine
    from appliance.targets.qemu.display import QemuSource
    from appliance.targets.qemu.hid import QemuOutput
    from appliance.targets.qemu.media import QemuMedia
    from appliance.targets.qemu.power import QemuPower

    rack = make_rack(config)
    machine = cache(lambda: make_machine(config))
    video: VideoSource
    if config.video.source == "qemu":
        video = QemuSource(rack, mode=config.qemu.display, fps=config.video.fps)
    else:  # bring-up: a capture card on the guest's real output, say
        video = video_source(config, machine)
    hid = QemuOutput(rack) if config.hid.output == "qemu" else hid_output(config, machine)
    return QemuTarget(
        kind="qemu", video=video, hid=hid, power=QemuPower(rack), media=QemuMedia(rack), rack=rack
    )
