"""The CD-ROM size cap: refused or served whole depending on the loaded usb_f_mass_storage.

The module's sysfs directory and the LUN are plain temp dirs laid out as the kernel's
(``/sys/module/usb_f_mass_storage/parameters/large_cdrom`` from the image's patched build,
``functions/mass_storage.usb0/lun.0/{file,cdrom,ro}`` in configfs).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.config.media import CdromCap
from appliance.targets.facets import ActionRefused, MediaSpec
from appliance.targets.lun import LunMedia, cdrom_cap_lifted

BIG = 5 << 30


def lun_dir(tmp_path: Path) -> Path:
    lun = tmp_path / "gadget" / "functions" / "mass_storage.usb0" / "lun.0"
    lun.mkdir(parents=True)
    for attr, value in (("file", ""), ("cdrom", "0"), ("ro", "0"), ("removable", "1")):
        (lun / attr).write_text(value + "\n")
    return lun


def module_dir(tmp_path: Path, large_cdrom: str | None) -> Path:
    """The module's sysfs dir; *large_cdrom* None: a mainline module (no such parameter)."""
    module = tmp_path / "sys" / "usb_f_mass_storage"
    (module / "parameters").mkdir(parents=True)
    if large_cdrom is not None:
        (module / "parameters" / "large_cdrom").write_text(large_cdrom + "\n")
    return module


def image(tmp_path: Path, size: int) -> Path:
    path = tmp_path / "win.iso"
    with path.open("wb") as f:  # sparse
        f.truncate(size)
    return path


def test_the_signal_is_the_patched_modules_parameter(tmp_path: Path) -> None:
    assert cdrom_cap_lifted(module_dir(tmp_path / "a", "Y")) is True
    assert cdrom_cap_lifted(module_dir(tmp_path / "b", "N")) is False  # loaded large_cdrom=0
    assert cdrom_cap_lifted(module_dir(tmp_path / "c", None)) is False  # mainline
    assert cdrom_cap_lifted(tmp_path / "not-loaded") is None


@pytest.mark.parametrize(
    ("cap", "large_cdrom", "refused"),
    [
        ("auto", "Y", None),
        ("auto", "N", "mainline CD-ROM size cap"),
        ("auto", None, "mainline CD-ROM size cap"),
        ("auto", "missing", "is not loaded"),
        ("on", "Y", 'cdrom_size_cap = "on"'),
        ("off", None, None),
    ],
)
async def test_a_5gib_cd_attach(
    tmp_path: Path, cap: CdromCap, large_cdrom: str | None, refused: str | None
) -> None:
    lun = lun_dir(tmp_path)
    module = (
        tmp_path / "sys" / "usb_f_mass_storage"
        if large_cdrom == "missing"
        else module_dir(tmp_path, large_cdrom)
    )
    path = image(tmp_path, BIG)
    media = LunMedia(lun, cdrom_cap=cap, module=module)
    if refused:
        with pytest.raises(ActionRefused) as err:
            await media.insert(MediaSpec(path, "cdrom", True, "win.iso"))
        assert "1151999 sectors" in str(err.value) and refused in str(err.value)
        assert (lun / "file").read_text().strip() == ""
    else:
        await media.insert(MediaSpec(path, "cdrom", True, "win.iso"))
        assert (lun / "file").read_text().strip() == str(path)
        assert (lun / "cdrom").read_text().strip() == "1"


async def test_a_cd_under_the_cap_and_flash_never_ask(tmp_path: Path) -> None:
    """A 2 GB ISO fits every kernel; a flash drive has no cap: the module is not consulted."""
    lun = lun_dir(tmp_path)
    media = LunMedia(lun, cdrom_cap="on", module=tmp_path / "not-loaded")
    small = image(tmp_path, 1151999 * 2048)
    await media.insert(MediaSpec(small, "cdrom", True, "small.iso"))
    assert (lun / "file").read_text().strip() == str(small)
    await media.eject()
    big = image(tmp_path, BIG)
    await media.insert(MediaSpec(big, "flash", True, "win.iso"))
    assert (lun / "file").read_text().strip() == str(big)


def test_the_option_reads_auto_on_off_and_the_old_booleans() -> None:
    from appliance.config import ConfigError, build_config

    def cap(value: object) -> str:
        return build_config({"media": {"cdrom_size_cap": value}}).media.cdrom_size_cap

    assert build_config({}).media.cdrom_size_cap == "auto"
    assert [cap(v) for v in ("auto", "on", "off", True, False)] == [
        "auto",
        "on",
        "off",
        "on",
        "off",
    ]
    with pytest.raises(ConfigError, match="cdrom_size_cap"):
        cap("maybe")
