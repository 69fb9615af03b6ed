"""The image store: one directory of image files, uploads into it, and what is in use.

Layout of the directory (``media.dir``, on the data partition)::

    NAME                 a complete image (only ever created by a rename: never half written)
    .NAME.part           an upload or download in progress or interrupted (the "incomplete"
                         marker: it becomes NAME only once every byte is written and synced)
    .NAME.sha256         "HEX SIZE MTIME_NS": the checksum, valid while size and mtime match

Why a rename: a crash, a power cut or a dropped connection leaves a ``.part`` file — listed as
``incomplete``, resumable from its size — and never a file under the final name that looks
complete but is not. The data are ``fdatasync``ed every :data:`SYNC_EVERY` bytes and before the
rename, and the directory after it.

Names are checked by :func:`appliance.media.names.check_name` (one component, no leading dot), and
every file is opened with ``O_NOFOLLOW`` and checked with ``lstat``: a symbolic link someone put
in the directory is refused, never followed out of it.

What is attached to the target (``attach``/``release``) or being written (a :class:`Transfer`) is
busy: it cannot be written, replaced or deleted (:class:`ImageBusy`, the API's 409).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import stat
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from appliance.media.errors import (
    ImageBusy,
    ImageNotFound,
    InvalidName,
    MediaError,
    NoSpace,
    TooLarge,
)
from appliance.media.names import check_name

ImageState = Literal["ready", "incomplete", "transferring"]

SYNC_EVERY = 32 << 20
"""Bytes written between two ``fdatasync`` calls. Also where written pages are dropped from the
page cache (``POSIX_FADV_DONTNEED``): a 512 MiB board otherwise fills its cache with a multi-GB
upload and evicts the video path's pages. 32 MiB is ~1 s of USB 2 / 100 Mbit/s Ethernet, so a
power cut loses at most about a second of a resumable upload."""

WRITE_BLOCK = 1 << 20
"""Bytes gathered from the network before one write in the thread pool: one thread hop per MiB
(a hop costs ~50 µs; per 64 KiB network chunk that would be ~5% of a Pi's CPU at 40 MB/s)."""

HASH_BLOCK = 1 << 20


@dataclass(frozen=True, slots=True)
class ImageInfo:
    name: str
    size: int
    """Bytes on disk: the whole image, or what has arrived of an incomplete one."""
    state: ImageState
    sha256: str | None
    """Known once the image is complete (null while it is computed after a resumed upload)."""
    attached: bool
    modified: float

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "size": self.size,
            "state": self.state,
            "sha256": self.sha256,
            "attached": self.attached,
            "modified": round(self.modified, 3),
        }


class OffsetMismatch(MediaError):
    """A resumed upload that does not start where the incomplete image ends."""

    status = 409


def _is_link(path: Path) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def _regular_size(path: Path) -> os.stat_result | None:
    """The lstat of *path* when it is a regular file; None when missing; refused when a link."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        raise InvalidName(f"{path.name} is a symbolic link: refused")
    if not stat.S_ISREG(st.st_mode):
        raise InvalidName(f"{path.name} is not a regular file")
    return st


class ImageStore:
    """One directory of images (``root``) with uploads capped at ``max_size`` bytes and
    ``reserve`` bytes of the file system always left free."""

    def __init__(self, root: Path, *, max_size: int, reserve: int = 64 << 20) -> None:
        self.root = root
        self.max_size = max_size
        self.reserve = reserve
        self._attached: set[str] = set()
        self._active: dict[str, Transfer] = {}
        self._hashing: dict[str, asyncio.Task[None]] = {}
        self.on_change: Callable[[], None] = lambda: None

    # ------------------------------------------------------------------ paths
    def prepare(self) -> None:
        """Create the directory (mode 0700) if needed; refuse one that is a symbolic link."""
        if _is_link(self.root):
            raise MediaError(f"media directory {self.root} is a symbolic link: refused")
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        """Where the complete image *name* lives (whether or not it exists)."""
        return self.root / check_name(name)

    def _part(self, name: str) -> Path:
        return self.root / f".{name}.part"

    def _sum(self, name: str) -> Path:
        return self.root / f".{name}.sha256"

    def image_path(self, name: str) -> Path:
        """The path of the complete image *name*, for attaching (ImageNotFound otherwise)."""
        path = self.path(name)
        if _regular_size(path) is None:
            if self.partial_size(name) is not None:
                raise ImageBusy(f"image {name!r} is incomplete (upload or download not finished)")
            raise ImageNotFound(f"no image named {name!r}")
        return path

    def name_of(self, path: Path | str) -> str | None:
        """The store's name for *path* when it is an image of this store, else None."""
        p = Path(path)
        if p.parent != self.root:
            return None
        try:
            return check_name(p.name)
        except InvalidName:
            return None

    # ------------------------------------------------------------------ queries
    def partial_size(self, name: str) -> int | None:
        st = _regular_size(self._part(check_name(name)))
        return None if st is None else st.st_size

    def info(self, name: str) -> ImageInfo | None:
        check_name(name)
        st = _regular_size(self.path(name))
        if st is not None:
            return ImageInfo(
                name,
                st.st_size,
                "ready",
                self._known_sum(name, st),
                name in self._attached,
                st.st_mtime,
            )
        st = _regular_size(self._part(name))
        if st is None:
            return None
        state: ImageState = "transferring" if name in self._active else "incomplete"
        size = self._active[name].offset if name in self._active else st.st_size
        return ImageInfo(name, size, state, None, False, st.st_mtime)

    def list(self) -> list[ImageInfo]:
        """Every image and incomplete upload, by name (links and odd files are skipped)."""
        names: set[str] = set()
        try:
            entries = list(os.scandir(self.root))
        except FileNotFoundError:
            return []
        for entry in entries:
            n = entry.name
            if n.startswith(".") and n.endswith(".part"):
                n = n[1:-5]
            elif n.startswith("."):
                continue
            try:
                names.add(check_name(n))
            except InvalidName:
                continue
        out = []
        for n in sorted(names):
            try:
                info = self.info(n)
            except MediaError:
                continue  # a symbolic link or a directory: not an image
            if info is not None:
                out.append(info)
        return out

    def _known_sum(self, name: str, st: os.stat_result) -> str | None:
        try:
            text = self._sum(name).read_text(encoding="ascii").split()
        except (OSError, UnicodeDecodeError):
            return None
        if len(text) == 3 and text[1:] == [str(st.st_size), str(st.st_mtime_ns)]:
            return text[0]
        return None

    def _write_sum(self, name: str, digest: str) -> None:
        st = os.lstat(self.path(name))
        tmp = self.root / f".{name}.sha256.tmp"
        tmp.write_text(f"{digest} {st.st_size} {st.st_mtime_ns}\n", encoding="ascii")
        os.replace(tmp, self._sum(name))

    def free_space(self) -> int:
        """Bytes a new upload may still take: free space less the reserve and what running
        uploads have announced but not yet written."""
        vfs = os.statvfs(self.root)
        pending = sum(t.remaining for t in self._active.values())
        return vfs.f_bavail * vfs.f_frsize - self.reserve - pending

    # ------------------------------------------------------------------ busy marks
    def busy(self, name: str) -> str | None:
        """Why *name* cannot be written or removed now (None: it can)."""
        if name in self._attached:
            return f"image {name!r} is attached to the target: detach it first"
        if name in self._active:
            return f"image {name!r} is being transferred"
        return None

    def attach(self, name: str) -> None:
        self._attached.add(name)
        self.on_change()

    def release(self, name: str) -> None:
        self._attached.discard(name)
        self.on_change()

    @property
    def attached(self) -> frozenset[str]:
        return frozenset(self._attached)

    # ------------------------------------------------------------------ changes
    def delete(self, name: str) -> None:
        check_name(name)
        reason = self.busy(name)
        if reason:
            raise ImageBusy(reason)
        found = False
        for path in (self.path(name), self._part(name)):
            if _regular_size(path) is not None:
                path.unlink()
                found = True
        with contextlib.suppress(FileNotFoundError):
            self._sum(name).unlink()
        if not found:
            raise ImageNotFound(f"no image named {name!r}")
        self.on_change()

    def begin(
        self, name: str, *, start: int = 0, total: int | None = None, what: str = "upload"
    ) -> Transfer:
        """Open a transfer into ``.NAME.part`` from byte *start* (0: a new upload, which
        replaces an incomplete one; more: resume, which must start at the part's size).
        *total*, when known, is checked against the limit and the free space up front."""
        check_name(name)
        reason = self.busy(name)
        if reason:
            raise ImageBusy(reason)
        if _regular_size(self.path(name)) is not None:
            raise ImageBusy(f"image {name!r} exists: delete it first")
        if total is not None and total > self.max_size:
            raise TooLarge(f"{total} bytes is over the limit of {self.max_size} bytes per image")
        have = self.partial_size(name)
        if start and start != (have or 0):
            raise OffsetMismatch(
                f"the incomplete image has {have or 0} bytes: resume from there",
                offset=have or 0,
            )
        self.prepare()
        if total is not None:
            need = total - start
            free = self.free_space()
            if need > free:
                raise NoSpace(
                    f"not enough space: the image needs {need} more bytes, {max(free, 0)} are free",
                    free=max(free, 0),
                )
        part = self._part(name)
        flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(part, flags, 0o600)
        except OSError as exc:
            raise MediaError(f"cannot write {name!r}: {exc.strerror}") from exc
        if not start:
            os.ftruncate(fd, 0)
        transfer = Transfer(self, name, fd, start, total, what=what, hasher=None)
        if not start:
            transfer.hasher = hashlib.sha256()
        self._active[name] = transfer
        self.on_change()
        return transfer

    def _end(self, transfer: Transfer) -> None:
        if self._active.get(transfer.name) is transfer:
            del self._active[transfer.name]
        self.on_change()

    # ------------------------------------------------------------------ checksums
    async def checksum(self, name: str) -> str:
        """The image's SHA-256, computed in the thread pool when not known (and then kept)."""
        path = self.image_path(name)
        st = os.lstat(path)
        known = self._known_sum(name, st)
        if known:
            return known
        digest = await asyncio.to_thread(_hash_file, path)
        if os.lstat(path).st_mtime_ns == st.st_mtime_ns:
            self._write_sum(name, digest)
        return digest

    def checksum_later(self, name: str) -> None:
        """Compute the checksum in the background (after a resumed upload); list shows null
        until then."""
        if name in self._hashing:
            return

        async def run() -> None:
            try:
                with contextlib.suppress(MediaError, OSError):
                    await self.checksum(name)
            finally:
                self._hashing.pop(name, None)
                self.on_change()

        self._hashing[name] = asyncio.create_task(run(), name=f"sha256-{name}")

    async def close(self) -> None:
        for task in list(self._hashing.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _hash_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while block := f.read(HASH_BLOCK):
            h.update(block)
    return h.hexdigest()


@dataclass(eq=False)
class Transfer:
    """Bytes arriving for one image: written in order from ``offset``, synced now and then;
    ended by :meth:`finish` (rename to the final name), :meth:`suspend` (keep the part for a
    resume) or :meth:`abort` (remove it)."""

    store: ImageStore
    name: str
    fd: int
    offset: int
    total: int | None
    what: str = "upload"
    hasher: hashlib._Hash | None = None
    started_at: int = 0
    _unsynced: int = 0
    _closed: bool = field(default=False)

    def __post_init__(self) -> None:
        self.started_at = self.offset

    @property
    def remaining(self) -> int:
        return 0 if self.total is None else max(self.total - self.offset, 0)

    @property
    def complete(self) -> bool:
        return self.total is not None and self.offset >= self.total

    def _check(self, n: int) -> None:
        end = self.offset + n
        if self.total is not None and end > self.total:
            raise TooLarge(f"more data than the announced {self.total} bytes")
        if end > self.store.max_size:
            raise TooLarge(f"over the limit of {self.store.max_size} bytes per image")

    def _write(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        try:
            while view:
                n = os.pwrite(self.fd, view, self.offset)
                if self.hasher is not None:
                    self.hasher.update(view[:n])
                self.offset += n
                self._unsynced += n
                view = view[n:]
        except OSError as exc:
            if exc.errno in (28, 122):  # ENOSPC, EDQUOT
                raise NoSpace(
                    f"the disk is full after {self.offset} bytes of {self.name!r}: "
                    "free space and resume",
                    offset=self.offset,
                ) from exc
            raise MediaError(f"cannot write {self.name!r}: {exc.strerror}") from exc
        if self._unsynced >= SYNC_EVERY:
            self._sync()

    def _sync(self) -> None:
        os.fdatasync(self.fd)
        # Written and synced pages are not needed again: let the kernel drop them now.
        os.posix_fadvise(self.fd, 0, 0, os.POSIX_FADV_DONTNEED)
        self._unsynced = 0

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        self._check(len(data))
        await asyncio.to_thread(self._write, data)

    async def pump(
        self,
        chunks: AsyncIterable[bytes],
        limit: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        """Write everything *chunks* yields (at most *limit* bytes more), gathered into blocks
        of :data:`WRITE_BLOCK`; what arrived before an error is written before it propagates."""
        buf = bytearray()
        end = None if limit is None else self.offset + limit
        try:
            async for chunk in chunks:
                if end is not None and self.offset + len(buf) + len(chunk) > end:
                    raise TooLarge(f"more data than the {limit} bytes announced")
                self._check(len(buf) + len(chunk))
                buf += chunk
                if len(buf) >= WRITE_BLOCK:
                    data, buf = buf, bytearray()
                    await self.write(data)
                    if progress is not None:
                        progress(self.offset)
        finally:
            if buf:
                await self.write(buf)
                if progress is not None:
                    progress(self.offset)

    async def finish(self) -> ImageInfo:
        """Sync, close and rename into place; the checksum is kept (or computed later)."""
        await asyncio.to_thread(self._finish)
        store, name = self.store, self.name
        store._end(self)
        if self.hasher is not None:
            store._write_sum(name, self.hasher.hexdigest())
        else:
            store.checksum_later(name)
        info = store.info(name)
        assert info is not None
        return info

    def _finish(self) -> None:
        os.fdatasync(self.fd)
        self._close()
        final = self.store.path(self.name)
        os.rename(self.store._part(self.name), final)
        dirfd = os.open(self.store.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dirfd)
        finally:
            os.close(dirfd)

    def _close(self) -> None:
        if not self._closed:
            self._closed = True
            os.close(self.fd)

    async def suspend(self) -> None:
        """Keep what arrived (synced) as the incomplete image, for a resume."""
        try:
            await asyncio.to_thread(self._suspend)
        finally:
            self.store._end(self)

    def _suspend(self) -> None:
        if self._closed:
            return
        try:
            os.fdatasync(self.fd)
        finally:
            self._close()

    async def abort(self) -> None:
        """Remove the part (a refused or failed transfer that cannot be resumed)."""
        self._close()
        with contextlib.suppress(FileNotFoundError):
            self.store._part(self.name).unlink()
        self.store._end(self)
