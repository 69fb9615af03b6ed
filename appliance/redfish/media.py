"""Redfish's ``VirtualMedia`` slots (``Cd``, ``Usb``) over the appliance's one drive.

The appliance has one USB mass-storage LUN, so the two slots share it: ``Cd`` is the LUN as a
read-only CD-ROM, ``Usb`` as a flash drive (read-only unless ``WriteProtected`` is false), and
while one slot holds a medium the other refuses an insert (409) — as the console does.

``InsertMedia`` takes an HTTP(S) ``Image`` URL, honouring ``TransferMethod``:

- ``Stream``: the URL becomes a block device read with HTTP range requests (nbdkit + the kernel's
  NBD client, :meth:`appliance.mediactl.MediaControl.attach_url`), nothing stored — a 6 GB
  installer on an 8 GB card. Read-only. Offered only where this appliance can stream (the tools
  and the ``nbd`` module are there), and then tried first for a read-only medium when the client
  names no method — falling back to a download when the stream cannot be set up.
- ``Upload``: the image is downloaded into the image store (``MediaControl.fetch``: a ``.part``
  file until complete, size and free space checked first) under a name of the slot's own
  (``redfish-cd``), then attached. Each insert replaces the slot's previous download and an eject
  deletes it: a fleet tool that boots a fresh ISO per deployment does not fill the data partition.

Either way the action answers once the medium is in the drive, so a client that sets the boot
override and resets next (Ironic) boots the right image.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from appliance.media.errors import ImageNotFound, MediaError
from appliance.media.nbd import streaming_available
from appliance.redfish.messages import Message, RedfishError
from appliance.targets.facets import ActionRefused, FacetUnavailable, MediaKind

if TYPE_CHECKING:
    from appliance.mediactl import MediaControl

log = logging.getLogger(__name__)

SlotId = Literal["Cd", "Usb"]
TRANSFER_PROTOCOLS = ("HTTP", "HTTPS")
INSERT = "VirtualMedia.InsertMedia"


@dataclass(frozen=True, slots=True)
class Slot:
    id: SlotId
    name: str
    kind: MediaKind
    media_types: tuple[str, ...]

    @property
    def image(self) -> str:
        """The store image this slot downloads into."""
        return f"redfish-{self.id.lower()}"


SLOTS: dict[str, Slot] = {
    "Cd": Slot("Cd", "Virtual CD", "cdrom", ("CD", "DVD")),
    "Usb": Slot("Usb", "Virtual USB stick", "flash", ("USBStick",)),
}


def transfer_methods() -> tuple[str, ...]:
    """What ``TransferMethod`` may be on this appliance now (Stream first: the default)."""
    return ("Stream", "Upload") if streaming_available() is None else ("Upload",)


@dataclass(frozen=True, slots=True)
class Loaded:
    """What Redfish put in a slot: the URL and how, for the slot's resource to report."""

    url: str
    protocol: str
    method: str  # Stream | Upload
    inserted: bool
    write_protected: bool


@dataclass(frozen=True, slots=True)
class SlotView:
    inserted: bool
    image: str | None  # the URL
    image_name: str | None
    write_protected: bool
    connected_via: str  # NotConnected | URI | Applet
    protocol: str | None
    method: str | None = None


def _bad(detail: str, message_id: str, *args: str, related: str = "") -> RedfishError:
    return RedfishError(400, detail, [Message(message_id, args, (related,) if related else ())])


@dataclass(frozen=True, slots=True)
class InsertRequest:
    url: str
    protocol: str
    method: str
    inserted: bool
    write_protected: bool
    chosen: bool = True
    """The client named the method; else a failed stream falls back to a download."""

    @classmethod
    def parse(cls, slot: Slot, body: dict[str, Any]) -> InsertRequest:
        """The action's parameters, checked (400 with the registry message that says why)."""
        known = {"Image", "Inserted", "WriteProtected", "TransferMethod", "TransferProtocolType"}
        for key, value in body.items():
            if key in ("UserName", "Password") and value in (None, "", "none"):
                continue  # sushy's retry for BMCs that insist on credentials
            if key in ("UserName", "Password"):
                raise _bad(
                    "credentials for the image server are not supported",
                    "ActionParameterNotSupported",
                    key,
                    INSERT,
                )
            if key not in known:
                raise _bad(f"unknown parameter {key!r}", "ActionParameterUnknown", INSERT, key)
        url = body.get("Image")
        if url is None:
            raise _bad(
                "Image (an http:// or https:// URL) is required",
                "ActionParameterMissing",
                INSERT,
                "Image",
                related="#/Image",
            )
        try:
            parts = urlsplit(url) if isinstance(url, str) else None
        except ValueError:  # "http://[::1": brackets that do not close
            parts = None
        scheme = parts.scheme.upper() if parts is not None else ""
        if scheme not in TRANSFER_PROTOCOLS or parts is None or not parts.hostname:
            raise _bad(
                "Image must be an http:// or https:// URL with a host",
                "ActionParameterValueFormatError",
                str(url),
                "Image",
                INSERT,
                related="#/Image",
            )
        flags = {}
        for key in ("Inserted", "WriteProtected"):
            value = body.get(key, True)
            if not isinstance(value, bool):
                raise _bad(
                    f"{key} must be true or false",
                    "ActionParameterValueTypeError",
                    str(value),
                    key,
                    INSERT,
                    related=f"#/{key}",
                )
            flags[key] = value
        if slot.kind == "cdrom" and not flags["WriteProtected"]:
            raise _bad(
                "a CD is always write protected: use the Usb slot for a writable image",
                "ActionParameterValueError",
                "WriteProtected",
                INSERT,
                related="#/WriteProtected",
            )
        methods = transfer_methods()
        streamable = flags["Inserted"] and flags["WriteProtected"]
        method = body.get("TransferMethod", methods[0] if streamable else "Upload")
        if method not in methods:
            why = f" (streaming: {streaming_available()})" if method == "Stream" else ""
            raise _bad(
                f"TransferMethod must be one of {', '.join(methods)}{why}",
                "ActionParameterValueNotInList",
                str(method),
                "TransferMethod",
                INSERT,
                related="#/TransferMethod",
            )
        if method == "Stream" and not streamable:
            raise _bad(
                "a streamed image is always inserted and write protected: use Upload",
                "ActionParameterValueError",
                "TransferMethod",
                INSERT,
                related="#/TransferMethod",
            )
        protocol = body.get("TransferProtocolType", scheme)
        if protocol != scheme:
            raise _bad(
                f"TransferProtocolType must be {scheme}, the Image URL's scheme",
                "ActionParameterValueNotInList",
                str(protocol),
                "TransferProtocolType",
                INSERT,
                related="#/TransferProtocolType",
            )
        chosen = "TransferMethod" in body
        return cls(url, scheme, method, flags["Inserted"], flags["WriteProtected"], chosen)


class RedfishMedia:
    """The two slots over one :class:`MediaControl`, and what Redfish remembers of each."""

    def __init__(self, control: MediaControl) -> None:
        self.control = control
        self.loaded: dict[SlotId, Loaded] = {}
        self._lock = asyncio.Lock()  # one insert or eject at a time: they share the drive

    def _holds(self, slot: Slot) -> bool:
        status = self.control.status()
        return bool(status.get("inserted")) and status.get("kind") == slot.kind

    def _ours(self, slot: Slot, loaded: Loaded) -> bool:
        """Whether the drive still holds what Redfish put there."""
        if loaded.method == "Stream":
            stream = self.control.stream
            return stream is not None and stream.url == loaded.url
        return self.control.image == slot.image

    def view(self, slot: Slot) -> SlotView:
        status = self.control.status()
        holds = self._holds(slot)
        loaded = self.loaded.get(slot.id)
        if loaded is not None and loaded.inserted and not (holds and self._ours(slot, loaded)):
            del self.loaded[slot.id]  # someone detached it (the console): forget the URL
            loaded = None
        if loaded is not None:
            return SlotView(
                loaded.inserted,
                loaded.url,
                slot.image if loaded.method == "Upload" else None,
                loaded.write_protected,
                "URI" if loaded.inserted else "NotConnected",
                loaded.protocol,
                loaded.method,
            )
        if holds:  # attached from the console or the CLI
            name = status.get("image") or status.get("label")
            return SlotView(
                True,
                None,
                str(name) if name else None,
                bool(status.get("read_only")),
                "Applet",
                None,
            )
        return SlotView(False, None, None, slot.kind == "cdrom", "NotConnected", None)

    async def insert(self, slot: Slot, request: InsertRequest) -> None:
        async with self._lock:
            if self.control.status().get("inserted"):
                raise RedfishError(
                    409,
                    "the appliance's drive holds a medium: eject it first (EjectMedia)",
                    [Message("ResourceInUse")],
                )
            await self._forget(slot)
            method = request.method
            if method == "Stream":
                try:
                    await self._stream(slot, request)
                except RedfishError as exc:
                    # Not asked for by name: a server without range requests, or an NBD
                    # helper that went away (docs/media.md), still gets its image, as a
                    # download.
                    if request.chosen or exc.status == 400:
                        raise
                    log.warning("streaming %s failed (%s): downloading it", request.url, exc)
                    method = "Upload"
            if method == "Upload":
                await self._download(slot, request)
            self.loaded[slot.id] = Loaded(
                request.url,
                request.protocol,
                method,
                request.inserted,
                request.write_protected,
            )

    async def _stream(self, slot: Slot, request: InsertRequest) -> None:
        try:
            await self.control.attach_url(request.url, slot.kind, True, transfer="stream")
        except MediaError as exc:
            raise _media_error(exc, request.url) from exc
        except (ActionRefused, FacetUnavailable) as exc:
            raise RedfishError(409, str(exc), [Message("ResourceInUse")]) from exc

    async def _download(self, slot: Slot, request: InsertRequest) -> None:
        try:
            job = self.control.fetch(request.url, slot.image)
        except MediaError as exc:
            raise _media_error(exc, request.url) from exc
        await self.control.jobs.wait(job)
        if job.status != "done":
            raise RedfishError(
                502,
                f"could not download {request.url}: {job.error or job.status}",
                [Message("CouldNotEstablishConnection", (request.url,))],
            )
        if request.inserted:
            try:
                await self.control.attach(slot.image, slot.kind, request.write_protected)
            except (MediaError, ActionRefused, FacetUnavailable) as exc:
                raise RedfishError(409, str(exc), [Message("ResourceInUse")]) from exc

    async def eject(self, slot: Slot) -> None:
        async with self._lock:
            if self._holds(slot):
                await self.control.detach()
            await self._forget(slot)

    async def _forget(self, slot: Slot) -> None:
        """Drop the slot's URL and delete its previous download (never a medium in the drive)."""
        self.loaded.pop(slot.id, None)
        if slot.image in self.control.store.attached:
            return
        try:
            # On the loop, as the media API does: an unlink, and the store's change callback
            # publishes state events, which needs the loop (found by the system test).
            self.control.store.delete(slot.image)
        except ImageNotFound:
            pass
        except MediaError as exc:  # being downloaded by someone else
            raise RedfishError(409, str(exc), [Message("ResourceInUse")]) from exc


def _media_error(exc: MediaError, url: str) -> RedfishError:
    if exc.status == 400:
        return _bad(
            str(exc), "ActionParameterValueFormatError", url, "Image", INSERT, related="#/Image"
        )
    if exc.status == 409:
        return RedfishError(409, str(exc), [Message("ResourceInUse")])
    if exc.status == 502:
        return RedfishError(502, str(exc), [Message("CouldNotEstablishConnection", (url,))])
    return RedfishError(exc.status, str(exc), [Message("GeneralError")])
