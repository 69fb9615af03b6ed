"""``[media]``: the virtual-media image store and its limits.

Read by ``appliance.runtime`` (the store, built when the target has virtual media) and the media
API (upload and download limits).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from appliance.config import checks
from appliance.config.context import Context
from appliance.config.options import option


def _media_dir(context: Context) -> Path:
    """Unset: ``STATE_DIR/media``, on the appliance's data partition like the rest of the state."""
    return context.state_dir / "media"


CdromCap = Literal["auto", "on", "off"]
"""``cdrom_size_cap``: "auto" refuses a CD-ROM over 2.36 GB unless the loaded usb_f_mass_storage
says it serves it whole (appliance/targets/lun.py); "on" always refuses, "off" never does."""


def _cdrom_cap(key: str, value: Any) -> CdromCap:
    """auto|on|off; the booleans of earlier releases (true: refuse, false: do not) still read."""
    if isinstance(value, bool):
        return "on" if value else "off"
    checks.choice("auto", "on", "off")(key, value)
    return cast(CdromCap, value)


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaConfig:
    dir: Path = option(
        None,
        check=checks.optional_path,
        derive=_media_dir,
        example="/var/lib/ipkvm/media",
        doc="directory of virtual-media images; default STATE_DIR/media",
    )
    max_image_mb: int = option(
        65536,
        check=checks.int_range(1, 16 << 20),
        doc="largest image accepted (upload or URL), MiB",
    )
    reserve_mb: int = option(
        64, check=checks.int_range(0, 1 << 20), doc="free space always left on the image disk, MiB"
    )
    cdrom_size_cap: CdromCap = option(
        "auto",
        check=_cdrom_cap,
        doc="refuse CD-ROM media over 2.36 GB: auto (unless the loaded usb_f_mass_storage "
        "has large_cdrom=Y), on (always), off (never)",
    )
    fetch_timeout: float = option(
        60.0,
        check=checks.number(1, 3600),
        doc="seconds a URL download may go without data before it fails",
    )
