"""Virtual media as the appliance runs it: the image store and the target's drive together.

Why a room of its own between the runtime and the targets: the store (:mod:`appliance.media`)
knows files and the drive (the target's :class:`~appliance.targets.facets.MediaFacet`) knows the
gadget or the simulated machine; attaching joins them (a name becomes a :class:`MediaSpec`, and
the image is marked busy so nobody deletes or overwrites it while the target reads it). The REST
routes, the console and Redfish all go through this one object, so they agree on what is
attached and refuse the same things.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appliance.jobs import Job, JobFailed, JobRunner, Progress
from appliance.media.errors import ImageBusy, MediaError
from appliance.media.fetch import check_sha256, check_url, fetch
from appliance.media.names import check_name
from appliance.media.store import ImageStore
from appliance.targets.facets import ActionRefused, MediaFacet, MediaKind, MediaSpec

log = logging.getLogger(__name__)

FETCH_JOB = "media_fetch"


class MediaControl:
    """Attach, detach and fetch; what the API, the console and Redfish call."""

    def __init__(
        self,
        store: ImageStore,
        drive: MediaFacet,
        jobs: JobRunner,
        *,
        changed: Callable[[], None] = lambda: None,
        fetch_timeout: float = 60.0,
    ) -> None:
        self.store = store
        self.drive = drive
        self.jobs = jobs
        self.changed = changed
        self.fetch_timeout = fetch_timeout
        self.image: str | None = None
        """The store image in the drive (None: empty, or a path from elsewhere)."""
        store.on_change = changed

    def adopt(self) -> None:
        """At start: an image left in the drive by the previous run (the gadget keeps its
        medium across a service restart) is marked busy again."""
        path = self.drive.status().get("path")
        name = self.store.name_of(str(path)) if path else None
        if name is not None:
            self.image = name
            self.store.attach(name)

    def status(self) -> dict[str, Any]:
        out = dict(self.drive.status())
        out["image"] = self.image
        return out

    async def attach(self, name: str, kind: MediaKind, read_only: bool = True) -> dict[str, Any]:
        """Put store image *name* in the drive (a CD-ROM is always read-only)."""
        path = self.store.image_path(name)
        reason = self.store.busy(name)
        if reason and name not in self.store.attached:
            raise ImageBusy(reason)
        spec = MediaSpec(path, kind, kind == "cdrom" or read_only, name)
        await self.attach_spec(spec, image=name)
        return self.status()

    async def attach_spec(self, spec: MediaSpec, *, image: str | None = None) -> None:
        """Put *spec* in the drive; *image* names the store image it is (marked busy)."""
        if self.drive.status().get("inserted"):
            raise ActionRefused("a medium is inserted: detach it first")
        if image is not None:
            self.store.attach(image)
        try:
            await self.drive.insert(spec)
        except BaseException:
            if image is not None:
                self.store.release(image)
            raise
        self.image = image
        self.changed()

    async def detach(self) -> dict[str, Any]:
        await self.drive.eject()
        if self.image is not None:
            self.store.release(self.image)
            self.image = None
        self.changed()
        return self.status()

    def fetch(self, url: str, name: str, sha256: str | None = None) -> Job:
        """Start downloading *url* as image *name*: a ``media_fetch`` job (progress in bytes).
        Bad input and a name that is taken are refused now, before the job starts."""
        check_url(url)
        check_name(name)
        expected = check_sha256(sha256)
        reason = self.store.busy(name)
        if reason:
            raise ImageBusy(reason)
        if self.store.info(name) is not None and self.store.partial_size(name) is None:
            raise ImageBusy(f"image {name!r} exists: delete it first")

        async def work(progress: Progress) -> dict[str, Any]:
            def moved(done: int, total: int | None) -> None:
                progress(done, total, name=name, url=url)

            try:
                info = await fetch(
                    self.store,
                    url,
                    name,
                    sha256=expected,
                    timeout=self.fetch_timeout,
                    progress=moved,
                )
            except MediaError as exc:
                raise JobFailed(str(exc), name=name, **exc.info) from exc
            return info.as_dict()

        return self.jobs.start(FETCH_JOB, work, tags=("media",))

    def image_path(self, name: str) -> Path:
        return self.store.image_path(name)

    async def close(self) -> None:
        await self.store.close()
