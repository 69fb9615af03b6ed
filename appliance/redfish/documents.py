"""The Redfish resources as JSON documents, built from the appliance's state on each request.

Each document declares in ``@odata.type`` the schema version it conforms to (the newest DMTF
release in shared/redfish, which ``tests/test_redfish.py`` validates every served document
against), ``@odata.id`` its own path and ``@odata.context`` the metadata fragment clients such as
Ansible's modules read. Nothing is cached: a document costs microseconds, and building it from
the live state means the ``ETag`` changes exactly when what a client sees changes.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from appliance import __version__
from appliance.redfish.media import TRANSFER_PROTOCOLS, Slot, SlotView, transfer_methods
from appliance.redfish.systems import RESET_TYPES, System, power_state, systems
from appliance.targets.boot import BOOT_ENABLED, BOOT_MODES, BOOT_SOURCES

if TYPE_CHECKING:
    from appliance.runtime import Appliance

Doc = dict[str, Any]

ROOT = "/redfish/v1"
REDFISH_VERSION = "1.20.0"
MANAGER_ID = "bmc"
SYSTEMS = f"{ROOT}/Systems"
CHASSIS = f"{ROOT}/Chassis"
MANAGERS = f"{ROOT}/Managers"
MANAGER = f"{MANAGERS}/{MANAGER_ID}"
VIRTUAL_MEDIA = f"{MANAGER}/VirtualMedia"
SESSION_SERVICE = f"{ROOT}/SessionService"
SESSIONS = f"{SESSION_SERVICE}/Sessions"

TYPES = {
    "ServiceRoot": "ServiceRoot.v1_20_0",
    "ComputerSystemCollection": "ComputerSystemCollection",
    "ComputerSystem": "ComputerSystem.v1_27_0",
    "ChassisCollection": "ChassisCollection",
    "Chassis": "Chassis.v1_28_0",
    "ManagerCollection": "ManagerCollection",
    "Manager": "Manager.v1_24_0",
    "VirtualMediaCollection": "VirtualMediaCollection",
    "VirtualMedia": "VirtualMedia.v1_6_5",
    "SessionService": "SessionService.v1_2_0",
    "SessionCollection": "SessionCollection",
    "Session": "Session.v1_8_0",
}


def resource(kind: str, path: str, **props: Any) -> Doc:
    """The OData header of a ``kind`` resource at ``path``, then its properties."""
    return {
        "@odata.id": path,
        "@odata.type": f"#{TYPES[kind]}.{kind}",
        "@odata.context": f"{ROOT}/$metadata#{kind}.{kind}",
        **props,
    }


def link(path: str) -> Doc:
    return {"@odata.id": path}


def collection(kind: str, path: str, name: str, members: list[str]) -> Doc:
    return resource(
        kind,
        path,
        Name=name,
        Members=[link(m) for m in members],
        **{"Members@odata.count": len(members)},
    )


def etag(doc: Doc) -> str:
    """A strong ETag of the document as served (16 hex digits: sushy's weak-to-strong retry
    only understands word characters between the quotes)."""
    digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
    return f'"{digest[:16]}"'


_OK = {"State": "Enabled", "Health": "OK"}


def service_root() -> Doc:
    return resource(
        "ServiceRoot",
        ROOT,
        Id="RootService",
        Name="ipkvm Redfish service",
        RedfishVersion=REDFISH_VERSION,
        Vendor="ipkvm",
        Product="ipkvm",
        Systems=link(SYSTEMS),
        Chassis=link(CHASSIS),
        Managers=link(MANAGERS),
        SessionService=link(SESSION_SERVICE),
        Links={"Sessions": link(SESSIONS)},
    )


def system_collection(appliance: Appliance) -> Doc:
    return collection(
        "ComputerSystemCollection",
        SYSTEMS,
        "Computer systems",
        [f"{SYSTEMS}/{s.id}" for s in systems(appliance)],
    )


def system(appliance: Appliance, s: System) -> Doc:
    path = f"{SYSTEMS}/{s.id}"
    o = s.boot.override
    doc = resource(
        "ComputerSystem",
        path,
        Id=s.id,
        Name=s.name,
        SystemType="Physical",
        PowerState=power_state(appliance, s),
        Status=_OK,
        Boot={
            "BootSourceOverrideTarget": o.source,
            "BootSourceOverrideTarget@Redfish.AllowableValues": list(BOOT_SOURCES),
            "BootSourceOverrideEnabled": o.enabled,
            "BootSourceOverrideEnabled@Redfish.AllowableValues": list(BOOT_ENABLED),
            "BootSourceOverrideMode": o.mode,
            "BootSourceOverrideMode@Redfish.AllowableValues": list(BOOT_MODES),
        },
        Links={
            "ManagedBy": [link(MANAGER)],
            "ManagedBy@odata.count": 1,
            "Chassis": [link(f"{CHASSIS}/{s.id}")],
            "Chassis@odata.count": 1,
        },
    )
    if appliance.target.power.available:
        doc["Actions"] = {
            "#ComputerSystem.Reset": {
                "target": f"{path}/Actions/ComputerSystem.Reset",
                "ResetType@Redfish.AllowableValues": list(RESET_TYPES),
            }
        }
    return doc


def chassis_collection(appliance: Appliance) -> Doc:
    return collection(
        "ChassisCollection",
        CHASSIS,
        "Chassis",
        [f"{CHASSIS}/{s.id}" for s in systems(appliance)],
    )


def chassis(appliance: Appliance, s: System) -> Doc:
    return resource(
        "Chassis",
        f"{CHASSIS}/{s.id}",
        Id=s.id,
        Name=s.name,
        ChassisType="RackMount",
        PowerState=power_state(appliance, s),
        Status=_OK,
        Links={
            "ComputerSystems": [link(f"{SYSTEMS}/{s.id}")],
            "ComputerSystems@odata.count": 1,
            "ManagedBy": [link(MANAGER)],
            "ManagedBy@odata.count": 1,
        },
    )


def manager_collection() -> Doc:
    return collection("ManagerCollection", MANAGERS, "Managers", [MANAGER])


def manager(appliance: Appliance) -> Doc:
    every = systems(appliance)
    media = {"VirtualMedia": link(VIRTUAL_MEDIA)} if appliance.media is not None else {}
    return resource(
        "Manager",
        MANAGER,
        Id=MANAGER_ID,
        Name="ipkvm",
        ManagerType="BMC",
        FirmwareVersion=__version__,
        Status=_OK,
        **media,
        Links={
            "ManagerForServers": [link(f"{SYSTEMS}/{s.id}") for s in every],
            "ManagerForServers@odata.count": len(every),
            "ManagerForChassis": [link(f"{CHASSIS}/{s.id}") for s in every],
            "ManagerForChassis@odata.count": len(every),
        },
    )


def session_service(timeout: int) -> Doc:
    return resource(
        "SessionService",
        SESSION_SERVICE,
        Id="SessionService",
        Name="Session service",
        ServiceEnabled=True,
        SessionTimeout=timeout,
        Status=_OK,
        Sessions=link(SESSIONS),
    )


def session(session_id: str, user: str, created: str) -> Doc:
    return resource(
        "Session",
        f"{SESSIONS}/{session_id}",
        Id=session_id,
        Name=f"Session of {user}",
        UserName=user,
        Password=None,
        CreatedTime=created,
    )


def virtual_media_collection(slots: list[Slot]) -> Doc:
    return collection(
        "VirtualMediaCollection",
        VIRTUAL_MEDIA,
        "Virtual media",
        [f"{VIRTUAL_MEDIA}/{slot.id}" for slot in slots],
    )


def virtual_media(slot: Slot, view: SlotView) -> Doc:
    path = f"{VIRTUAL_MEDIA}/{slot.id}"
    return resource(
        "VirtualMedia",
        path,
        Id=slot.id,
        Name=slot.name,
        MediaTypes=list(slot.media_types),
        Inserted=view.inserted,
        Image=view.image,
        ImageName=view.image_name,
        WriteProtected=view.write_protected,
        ConnectedVia=view.connected_via,
        TransferMethod=view.method,
        TransferProtocolType=view.protocol,
        Status=_OK,
        Actions={
            "#VirtualMedia.InsertMedia": {
                "target": f"{path}/Actions/VirtualMedia.InsertMedia",
                "TransferMethod@Redfish.AllowableValues": list(transfer_methods()),
                "TransferProtocolType@Redfish.AllowableValues": list(TRANSFER_PROTOCOLS),
            },
            "#VirtualMedia.EjectMedia": {"target": f"{path}/Actions/VirtualMedia.EjectMedia"},
        },
    )
