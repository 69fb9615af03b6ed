"""``[media]``: the virtual-media image store and its limits.

Read by ``appliance.runtime`` (the store, built when the target has virtual media) and the media
API (upload and download limits).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from appliance.config import checks
from appliance.config.context import Context
from appliance.config.options import option


def _media_dir(context: Context) -> Path:
    """Unset: ``STATE_DIR/media``, on the appliance's data partition like the rest of the state."""
    return context.state_dir / "media"


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
    cdrom_size_cap: bool = option(
        True,
        doc="refuse CD-ROM media over 2.36 GB, which the kernel's gadget cuts; false: it does not",
    )
    fetch_timeout: float = option(
        60.0,
        check=checks.number(1, 3600),
        doc="seconds a URL download may go without data before it fails",
    )
