"""Redfish's ``VirtualMedia`` slots (``Cd``, ``Usb``) over the appliance's one drive.

The appliance has one USB mass-storage LUN, so the two slots share it: ``Cd`` is the LUN as a
read-only CD-ROM, ``Usb`` as a flash drive (read-only unless ``WriteProtected`` is false), and
while one slot holds a medium the other refuses an insert (409) — as the console does.

``InsertMedia`` takes an HTTP(S) ``Image`` URL: the image is downloaded into the image store
through the media layer (:meth:`appliance.mediactl.MediaControl.fetch`: a ``.part`` file until
complete, size and free space checked first) under a name of the slot's own (``redfish-cd``),
then attached; the action answers once the medium is in the drive, so a client that sets the boot
override and resets next (Ironic) boots the right image. Each insert replaces the slot's previous
download and an eject deletes it: a fleet tool that boots a fresh ISO per deployment does not
fill the data partition. ``TransferMethod`` is ``Upload`` (a local copy); ``Stream`` (range reads
without a copy) is refused until the media layer has a block-over-network engine.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from appliance.media.errors import ImageNotFound, MediaError
from appliance.redfish.messages import Message, RedfishError
from appliance.targets.facets import ActionRefused, FacetUnavailable, MediaKind

if TYPE_CHECKING:
    from appliance.mediactl import MediaControl

SlotId = Literal["Cd", "Usb"]
TRANSFER_METHODS = ("Upload",)
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


@dataclass(frozen=True, slots=True)
class Loaded:
    """What Redfish put in a slot: the URL and how, for the slot's resource to report."""

    url: str
    protocol: str
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


def _bad(detail: str, message_id: str, *args: str, related: str = "") -> RedfishError:
    return RedfishError(400, detail, [Message(message_id, args, (related,) if related else ())])


@dataclass(frozen=True, slots=True)
class InsertRequest:
    url: str
    protocol: str
    inserted: bool
    write_protected: bool

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
        scheme = urlsplit(url).scheme.upper() if isinstance(url, str) else ""
        if scheme not in TRANSFER_PROTOCOLS or not urlsplit(str(url)).hostname:
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
        method = body.get("TransferMethod", "Upload")
        if method not in TRANSFER_METHODS:
            raise _bad(
                "TransferMethod must be Upload: the image is downloaded, then attached "
                "(streaming without a copy is not available)",
                "ActionParameterValueNotInList",
                str(method),
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
        return cls(url, scheme, flags["Inserted"], flags["WriteProtected"])


class RedfishMedia:
    """The two slots over one :class:`MediaControl`, and what Redfish remembers of each."""

    def __init__(self, control: MediaControl) -> None:
        self.control = control
        self.loaded: dict[SlotId, Loaded] = {}
        self._lock = asyncio.Lock()  # one insert or eject at a time: they share the drive

    def _holds(self, slot: Slot) -> bool:
        status = self.control.status()
        return bool(status.get("inserted")) and status.get("kind") == slot.kind

    def view(self, slot: Slot) -> SlotView:
        status = self.control.status()
        holds = self._holds(slot)
        loaded = self.loaded.get(slot.id)
        if (
            loaded is not None
            and loaded.inserted
            and (not holds or self.control.image != slot.image)
        ):
            del self.loaded[slot.id]  # someone detached it (the console): forget the URL
            loaded = None
        if loaded is not None:
            return SlotView(
                loaded.inserted,
                loaded.url,
                slot.image,
                loaded.write_protected,
                "URI" if loaded.inserted else "NotConnected",
                loaded.protocol,
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
            self.loaded[slot.id] = Loaded(
                request.url, request.protocol, request.inserted, request.write_protected
            )

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
            await asyncio.to_thread(self.control.store.delete, slot.image)
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
    return RedfishError(exc.status, str(exc), [Message("GeneralError")])
