"""The demo machine boots as its boot override says: from the CD in its drive (its screen then
shows the disc's volume label, read back here by OCR) once or always, else into its setup screen.
"""

from __future__ import annotations

import pytest

from appliance.scripting.screen import find_text, ocr_words, tesseract_path
from appliance.targets.boot import BootOverride, BootSettings
from appliance.targets.demo.machine import DemoMachine

LABEL = "IPKVM_RESCUE_7"


def power_cycle(machine: DemoMachine) -> None:
    machine.set_power(False)
    machine.set_power(True)


async def screen_says(machine: DemoMachine, text: str) -> bool:
    return find_text(await ocr_words(machine.render()), text) is not None


@pytest.mark.skipif(tesseract_path() is None, reason="needs tesseract (scripts/system-deps)")
async def test_a_once_override_boots_the_cd_one_time() -> None:
    machine = DemoMachine()
    disc: list[str] = [LABEL]
    machine.cd_label = lambda: disc[0] if disc else None
    machine.boot.set(BootOverride("Cd", "Once"))
    power_cycle(machine)
    assert machine.state()["booted_cd"] == LABEL
    assert await screen_says(machine, f"Volume: {LABEL}")
    assert machine.boot.override == BootOverride("Cd", "Disabled")  # used up, device kept
    power_cycle(machine)
    assert machine.state()["booted_cd"] is None
    assert await screen_says(machine, "Demo BIOS Setup Utility")
    assert not await screen_says(machine, LABEL)


def test_continuous_boots_the_cd_every_time_and_no_cd_falls_back_to_setup() -> None:
    settings = BootSettings()
    machine = DemoMachine(boot=settings)
    disc: list[str] = [LABEL]
    machine.cd_label = lambda: disc[0] if disc else None
    settings.set(BootOverride("Cd", "Continuous"))
    for _ in range(2):
        power_cycle(machine)
        assert machine.state()["booted_cd"] == LABEL
    disc.clear()  # ejected
    power_cycle(machine)
    assert machine.state()["booted_cd"] is None
    assert settings.boots == 3 and settings.last == "Cd"
    settings.set(BootOverride("Pxe", "Disabled"))
    disc.append(LABEL)
    power_cycle(machine)
    assert machine.state()["booted_cd"] is None  # a disabled override boots the usual way
    assert settings.last == "None"
