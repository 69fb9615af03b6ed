"""The demo target: a whole machine simulated inside the process (screen, BIOS menus, a USB host
that decodes the HID reports, power), so every path of the appliance runs with no hardware.

- :mod:`.machine` — the machine's state and input decoding; :mod:`.menu` its menus and
  :mod:`.screen` their drawing;
- :mod:`.video` — its screen as a video source; :mod:`.hid` — the HID output that feeds it;
- :class:`DemoPower` — its ATX power and reset buttons and LEDs (a simulated motherboard);
- :mod:`.media` — its virtual-media drive (records the medium, reads an ISO's label);
- :mod:`.rack` — several machines behind the simulated KVM switch (``switch.driver = "demo"``):
  the video, HID and power backends then follow the rack's active machine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Protocol

from appliance.atx.control import AtxPower
from appliance.atx.sim import SimLines
from appliance.atx.wiring import wiring_from_config
from appliance.targets import Target, hid_output, video_source
from appliance.targets.boot import BootTable

if TYPE_CHECKING:
    from appliance.config import Config
    from appliance.targets.demo.machine import DemoMachine
    from appliance.targets.demo.media import DemoMedia
    from appliance.targets.demo.rack import DemoRack


class DemoMachineLike(Protocol):
    """What the power button needs: a machine, or a rack standing for its active machine."""

    @property
    def power(self) -> bool: ...

    def set_power(self, on: bool) -> None: ...

    def on_activity(self, callback: Callable[[], None]) -> Callable[[], None]: ...


class DemoPower(AtxPower):
    """The demo machine's power: the ATX controller over a simulated motherboard.

    The same code as real ATX wiring (press times from ``[atx]``, "on" only when the power LED is
    off, one action at a time, debounced LEDs), so the demo teaches what the appliance will do.
    The power LED follows the machine's power; the HDD LED pulses with every report it accepts.
    """

    def __init__(
        self,
        machine: DemoMachineLike,
        config: Config,
        follow: Callable[[Callable[[], None]], Callable[[], None]] | None = None,
    ) -> None:
        """*follow* subscribes to "another machine is on the console now" (a demo rack): the
        power LED then shows that machine's power."""
        wiring = wiring_from_config(config.atx)
        self._follow = follow
        self._unfollow: Callable[[], None] | None = None
        self.machine = machine
        self.sim = SimLines(machine)
        super().__init__(self.sim, wiring.times, debounce=wiring.debounce)
        self._unsubscribe: Callable[[], None] | None = None

    async def start(self) -> None:
        await super().start()
        if self._unsubscribe is None:
            self._unsubscribe = self.machine.on_activity(self.sim.activity)
        if self._follow is not None and self._unfollow is None:
            self._unfollow = self._follow(self.sim.power_changed)

    async def close(self) -> None:
        for stop in (self._unsubscribe, self._unfollow):
            if stop is not None:
                stop()
        self._unsubscribe = self._unfollow = None
        await super().close()


@dataclass
class DemoTarget(Target):
    """A target whose machine is simulated: tests and the demo routes can look inside it.

    With a demo switch (``rack`` set) :attr:`machine` is the machine on the console port now.
    """

    single: DemoMachine | None = None
    rack: DemoRack | None = None

    @property
    def machine(self) -> DemoMachine | None:
        return self.rack.machine if self.rack is not None else self.single


def make_machine(config: Config, name: str = "", layout: str | None = None) -> DemoMachine:
    from appliance.targets.demo.machine import DemoMachine

    d = config.demo
    return DemoMachine(
        width=d.width, height=d.height, layout=layout or d.layout, stamp=d.stamp, name=name
    )


def make_rack(config: Config) -> DemoRack:
    """One machine per port of the demo switch, named as ``[[switch.ports]]`` says and with the
    keyboard layout its entry gives (so a port set to "de" is a machine that expects German)."""
    from appliance.config import PortConfig
    from appliance.targets.demo.rack import DemoRack

    sw = config.switch
    entries = list(sw.ports) + [PortConfig()] * sw.port_count
    return DemoRack(
        [
            make_machine(config, entries[i].name or f"port {i + 1}", entries[i].layout)
            for i in range(sw.port_count)
        ]
    )


def _cd_in_drive(media: DemoMedia, on_console: Callable[[], bool]) -> Callable[[], str | None]:
    """What a machine finds in its CD drive as it boots: the volume label of the CD-ROM in the
    demo drive (read when it was inserted), if the machine is on the console port — the drive
    hangs off the appliance's USB port, which a KVM switch hands to the active machine only."""

    def label() -> str | None:
        inserted = media.inserted
        if inserted is None or inserted.spec.kind != "cdrom" or not on_console():
            return None
        return inserted.volume_label if inserted.volume_label is not None else ""

    return label


def _is_active(rack: DemoRack, machine: DemoMachine) -> Callable[[], bool]:
    return lambda: rack.machine is machine


def build(config: Config) -> DemoTarget:
    """The simulated machine with its own screen and HID host (or the configured real ones);
    with ``switch.driver = "demo"`` a rack of them, which the backends follow."""
    from appliance.targets.demo.media import DemoMedia

    media = DemoMedia()
    if config.switch.driver == "demo":
        rack = make_rack(config)
        get_rack = cache(lambda: rack)
        for each in rack.machines:
            each.cd_label = _cd_in_drive(media, _is_active(rack, each))
        return DemoTarget(
            kind="demo",
            video=video_source(config, get_rack),
            hid=hid_output(config, get_rack),
            power=DemoPower(rack, config, follow=rack.on_select),
            media=media,
            boot=BootTable([m.boot for m in rack.machines]),
            rack=rack,
        )
    machine = make_machine(config)
    machine.cd_label = _cd_in_drive(media, lambda: True)
    get = cache(lambda: machine)
    return DemoTarget(
        kind="demo",
        video=video_source(config, get),
        hid=hid_output(config, get),
        power=DemoPower(machine, config),
        media=media,
        boot=BootTable([machine.boot]),
        single=machine,
    )
