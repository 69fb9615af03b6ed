"""Virtual media as the appliance runs it: the image store and the target's drive together.

Why a room of its own between the runtime and the targets: the store (:mod:`appliance.media`)
knows files and the drive (the target's :class:`~appliance.targets.facets.MediaFacet`) knows the
gadget or the simulated machine; attaching joins them (a name becomes a :class:`MediaSpec`, and
the image is marked busy so nobody deletes or overwrites it while the target reads it). The REST
routes, the console and Redfish all go through this one object, so they agree on what is
attached and refuse the same things.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from appliance.jobs import Job, JobFailed, JobRunner, Progress
from appliance.media.errors import ImageBusy, MediaError
from appliance.media.fetch import check_sha256, check_url, fetch, name_from_url
from appliance.media.names import check_name
from appliance.media.nbd import StreamUnavailable, UrlStream, streaming_available
from appliance.media.store import ImageStore
from appliance.targets.facets import ActionRefused, MediaFacet, MediaKind, MediaSpec

log = logging.getLogger(__name__)

FETCH_JOB = "media_fetch"

Transfer = Literal["auto", "stream", "download"]
TRANSFERS: tuple[Transfer, ...] = ("auto", "stream", "download")


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
        self.stream: UrlStream | None = None
        """The URL streamed into the drive through NBD (None: not streaming)."""
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
        out["streaming"] = streaming_available()
        if self.stream is not None:
            out["url"] = self.stream.url
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
        if self.stream is not None:
            stream, self.stream = self.stream, None
            await stream.close()
        self.changed()
        return self.status()

    async def attach_url(
        self,
        url: str,
        kind: MediaKind,
        read_only: bool = True,
        *,
        transfer: Transfer = "auto",
        sha256: str | None = None,
    ) -> Job | None:
        """Put the image at *url* in the drive.

        ``stream``: through nbdkit + the kernel's NBD client, nothing stored (read-only; the
        server must answer range requests); answers once attached (None). ``download``: fetched
        into the store under the URL's file name (an image of that name already there is used
        as it is), then attached; returns that job. ``auto``: stream where this appliance can
        (nbdkit, nbd-client and the nbd module present, and the NBD helper when not root: the
        reason is ``streaming`` in :meth:`status`), else download.
        """
        check_url(url)
        auto = transfer == "auto"
        if auto:
            # a checksum or a writable flash needs the bytes here: only a download gives them
            writable = kind == "flash" and not read_only
            streams = streaming_available() is None and sha256 is None and not writable
            transfer = "stream" if streams else "download"
        if self.drive.status().get("inserted"):
            raise ActionRefused("a medium is inserted: detach it first")
        if transfer == "stream":
            if sha256 is not None:
                raise MediaError("a streamed image cannot be verified: download it for sha256")
            if kind == "flash" and not read_only:
                raise MediaError("a streamed image is read-only: download it for a writable flash")
            try:
                stream = await UrlStream.open(url)
            except StreamUnavailable as exc:
                if not auto:
                    raise
                # the helper went away between the check and the request: download instead
                log.warning("cannot stream %s (%s): downloading it", url, exc)
            else:
                try:
                    await self.attach_spec(MediaSpec(stream.device, kind, True, url))
                except BaseException:
                    await stream.close()
                    raise
                self.stream = stream
                self.changed()
                return None
        name = name_from_url(url)
        info = self.store.info(name)
        if info is not None and info.state == "ready":
            await self.attach(name, kind, read_only)
            return None
        return self.fetch(url, name, sha256, attach_as=(kind, read_only))

    def fetch(
        self,
        url: str,
        name: str,
        sha256: str | None = None,
        *,
        attach_as: tuple[MediaKind, bool] | None = None,
    ) -> Job:
        """Start downloading *url* as image *name*: a ``media_fetch`` job (progress in bytes),
        which then attaches it when *attach_as* (kind, read-only) is given. Bad input and a name
        that is taken are refused now, before the job starts."""
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
            result = info.as_dict()
            if attach_as is not None:
                try:
                    result["drive"] = await self.attach(name, *attach_as)
                except (MediaError, ActionRefused) as exc:
                    raise JobFailed(f"downloaded, but not attached: {exc}", name=name) from exc
            return result

        return self.jobs.start(FETCH_JOB, work, tags=("media",))

    def image_path(self, name: str) -> Path:
        return self.store.image_path(name)

    async def close(self) -> None:
        """Shutdown: a streamed URL stays in the drive only while nbdkit runs, so it is
        ejected and disconnected (the host sees the medium go, not I/O errors)."""
        if self.stream is not None:
            with contextlib.suppress(Exception):
                await self.detach()
        await self.store.close()
