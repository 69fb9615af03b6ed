"""The demo machine's virtual-media drive: it records what is inserted, like a real drive would
hold it, and reads an ISO image's volume label so the simulated machine can show it when it boots
from the CD (the whole virtual-media flow is visible with no hardware).

The file is opened only to read the label (a few sectors, in the thread pool); nothing is ever
written to it, whatever ``read_only`` says.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from appliance.media.iso9660 import volume_label
from appliance.targets.facets import ActionRefused, MediaSpec


@dataclass(frozen=True, slots=True)
class Inserted:
    spec: MediaSpec
    volume_label: str | None
    """The ISO 9660 volume label (None: not an ISO image, e.g. a flash drive image)."""


class DemoMedia:
    available = True

    def __init__(self) -> None:
        self.inserted: Inserted | None = None
        self._listeners: list[Callable[[Inserted | None], None]] = []

    def on_change(self, listener: Callable[[Inserted | None], None]) -> Callable[[], None]:
        """Call *listener* with the new medium (None: ejected); returns the unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _changed(self) -> None:
        for listener in list(self._listeners):
            listener(self.inserted)

    def status(self) -> dict[str, object]:
        out: dict[str, object] = {"available": True, "inserted": self.inserted is not None}
        if self.inserted is not None:
            spec = self.inserted.spec
            out.update(
                path=str(spec.path),
                label=spec.label,
                kind=spec.kind,
                read_only=spec.kind == "cdrom" or spec.read_only,
                volume_label=self.inserted.volume_label,
            )
        return out

    async def insert(self, spec: MediaSpec) -> None:
        if self.inserted is not None:
            raise ActionRefused("a medium is inserted: eject it first")
        label = await asyncio.to_thread(volume_label, spec.path)
        if self.inserted is not None:  # another insert won the race while we read
            raise ActionRefused("a medium is inserted: eject it first")
        self.inserted = Inserted(spec, label)
        self._changed()

    async def eject(self) -> None:
        if self.inserted is not None:
            self.inserted = None
            self._changed()
