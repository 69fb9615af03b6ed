"""QemuMedia: virtual media as the active guest's emulated CD-ROM (``blockdev-change-medium``).

Launched guests have an IDE CD-ROM with the qdev id ``cdrom0`` (:mod:`.command`); an attached
guest needs a CD-ROM device with that id (``-device ide-cd,id=cdrom0,...``), or the insert fails
with QEMU's own message. Only CD-ROM images: a flash drive would need a hot-plugged USB
storage device, which firmware does not always notice (not done here).
"""

from __future__ import annotations

from appliance.targets.facets import ActionRefused, FacetUnavailable, MediaSpec
from appliance.targets.qemu.command import CDROM_ID
from appliance.targets.qemu.guest import GuestOffline, QmpCommandError
from appliance.targets.qemu.rack import QemuRack


class QemuMedia:
    available = True

    def __init__(self, rack: QemuRack, device: str = CDROM_ID) -> None:
        self.rack = rack
        self.device = device
        self._inserted: dict[tuple[str, int], MediaSpec] = {}
        """By guest *life*: a relaunched QEMU starts with an empty drive."""

    def status(self) -> dict[str, object]:
        spec = self._inserted.get(self.rack.guest.life)
        found: dict[str, object] = {"available": True, "inserted": spec is not None}
        if spec is not None:
            found.update(label=spec.label, kind=spec.kind, read_only=spec.read_only)
        return found

    async def insert(self, spec: MediaSpec) -> None:
        guest = self.rack.guest
        if spec.kind != "cdrom":
            raise ActionRefused("a QEMU guest's virtual media is a CD-ROM: insert an ISO image")
        if guest.life in self._inserted:
            raise ActionRefused(f"{self._inserted[guest.life].label} is inserted: eject it first")
        try:
            await guest.execute(
                "blockdev-change-medium",
                {
                    "id": self.device,
                    "filename": str(spec.path),
                    "format": "raw",
                    "read-only-mode": "read-only",
                },
            )
        except GuestOffline as exc:
            raise FacetUnavailable(str(exc)) from None
        except QmpCommandError as exc:
            raise ActionRefused(str(exc)) from None
        self._inserted = {k: v for k, v in self._inserted.items() if k[0] != guest.name}
        self._inserted[guest.life] = spec

    async def eject(self) -> None:
        guest = self.rack.guest
        if guest.life not in self._inserted:
            return
        try:
            await guest.execute("eject", {"id": self.device, "force": True})
        except GuestOffline as exc:
            raise FacetUnavailable(str(exc)) from None
        except QmpCommandError as exc:
            raise ActionRefused(str(exc)) from None
        del self._inserted[guest.life]
