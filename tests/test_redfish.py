"""``/redfish/v1`` against the real server: every resource conforms to the DMTF schema it names,
logins and errors are Redfish's, the boot override is stored, reported and used up by a boot,
Reset drives the demo machine's power, and a switch port's System selects its port.

The Ironic sequence through sushy (virtual media, boot from CD) is in
``tests/test_redfish_ironic.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import Server, basic_header, start_server
from tests.redfish_schemas import problems

ROOT = "/redfish/v1"


@pytest.fixture
async def http(server: Server) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=server.url, headers=server.basic()) as session:
        yield session


async def get(http: aiohttp.ClientSession, path: str, **kw: Any) -> tuple[int, Any, Any]:
    async with http.get(path, **kw) as resp:
        return resp.status, await resp.json(), resp.headers


def links(doc: Any) -> set[str]:
    """Every ``@odata.id`` inside ``doc`` (not the document's own)."""
    found: set[str] = set()
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key == "@odata.id" and isinstance(value, str):
                found.add(value)
            else:
                found |= links(value)
    elif isinstance(doc, list):
        for item in doc:
            found |= links(item)
    return found


def conforms(doc: Any) -> None:
    wrong = problems(doc)
    assert not wrong, f"{doc.get('@odata.id', doc)}:\n" + "\n".join(wrong)


async def test_every_resource_reachable_from_the_root_conforms_to_its_schema(
    http: aiohttp.ClientSession,
) -> None:
    seen: set[str] = set()
    todo = [ROOT]
    types: set[str] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        status, doc, headers = await get(http, path)
        assert status == 200, (path, doc)
        assert headers["OData-Version"] == "4.0"
        assert headers["ETag"].startswith('"')
        assert doc["@odata.id"] == path
        assert doc["@odata.context"].startswith(f"{ROOT}/$metadata#")
        conforms(doc)
        types.add(doc["@odata.type"].rsplit(".", 1)[-1])
        todo += sorted(links(doc) - seen)
    assert {
        "ServiceRoot",
        "ComputerSystemCollection",
        "ComputerSystem",
        "ChassisCollection",
        "Chassis",
        "ManagerCollection",
        "Manager",
        "SessionService",
        "SessionCollection",
    } <= types, types


async def test_the_system_says_what_sushy_and_ironic_look_for(http: aiohttp.ClientSession) -> None:
    _, system, _ = await get(http, f"{ROOT}/Systems/1")
    assert system["PowerState"] == "On"
    reset = system["Actions"]["#ComputerSystem.Reset"]
    assert reset["target"] == f"{ROOT}/Systems/1/Actions/ComputerSystem.Reset"
    assert {"On", "ForceOff", "ForceRestart", "GracefulShutdown"} <= set(
        reset["ResetType@Redfish.AllowableValues"]
    )
    boot = system["Boot"]
    assert "Cd" in boot["BootSourceOverrideTarget@Redfish.AllowableValues"]
    assert boot["BootSourceOverrideEnabled@Redfish.AllowableValues"] == [
        "Disabled",
        "Once",
        "Continuous",
    ]
    manager = system["Links"]["ManagedBy"][0]["@odata.id"]
    _, mgr, _ = await get(http, manager)
    assert {"@odata.id": f"{ROOT}/Systems/1"} in mgr["Links"]["ManagerForServers"]


async def test_the_root_is_public_and_the_rest_needs_a_login(server: Server) -> None:
    async with aiohttp.ClientSession(base_url=server.url) as anon:
        for path in ("/redfish", ROOT, ROOT + "/"):
            async with anon.get(path) as resp:
                assert resp.status == 200, path
        async with anon.get(f"{ROOT}/Systems", headers={"Accept": "text/html"}) as resp:
            assert resp.status == 401  # not the console's redirect to /login
            assert resp.headers["WWW-Authenticate"].startswith("Basic")
            body = await resp.json()
        conforms(body)
        assert body["error"]["code"] == "Base.1.22.NoValidSession"
        wrong = basic_header("admin", server.password + "x")
        async with anon.get(f"{ROOT}/Systems", headers=wrong) as resp:
            assert resp.status == 401
            conforms(await resp.json())
        async with anon.get(f"{ROOT}/Systems", headers={"X-Auth-Token": "nope"}) as resp:
            assert resp.status == 401
            conforms(await resp.json())


async def test_a_session_logs_in_works_and_logs_out(server: Server) -> None:
    async with aiohttp.ClientSession(base_url=server.url) as anon:
        login = {"UserName": "admin", "Password": server.password}
        async with anon.post(f"{ROOT}/SessionService/Sessions", json=login) as resp:
            assert resp.status == 201
            token = resp.headers["X-Auth-Token"]
            location = resp.headers["Location"]
            doc = await resp.json()
        conforms(doc)
        assert doc["UserName"] == "admin" and doc["Password"] is None
        assert location == doc["@odata.id"]
        auth = {"X-Auth-Token": token}
        async with anon.get(f"{ROOT}/SessionService/Sessions", headers=auth) as resp:
            assert {"@odata.id": location} in (await resp.json())["Members"]
        async with anon.get(location, headers=auth) as resp:
            assert resp.status == 200
        async with anon.delete(location, headers=auth) as resp:
            assert resp.status == 204
        async with anon.get(f"{ROOT}/Systems", headers=auth) as resp:
            assert resp.status == 401
        bad = {"UserName": "admin", "Password": "wrong-password"}
        async with anon.post(f"{ROOT}/SessionService/Sessions", json=bad) as resp:
            assert resp.status == 401
            assert "X-Auth-Token" not in resp.headers
            conforms(await resp.json())


async def test_errors_are_redfish_errors(http: aiohttp.ClientSession) -> None:
    status, body, _ = await get(http, f"{ROOT}/Systems/9")
    assert status == 404
    conforms(body)
    assert body["error"]["code"] == "Base.1.22.ResourceNotFound"
    status, body, _ = await get(http, f"{ROOT}/NoSuchThing")
    assert status == 404
    conforms(body)
    reset = f"{ROOT}/Systems/1/Actions/ComputerSystem.Reset"
    async with http.post(reset, json={"ResetType": "Explode"}) as resp:
        assert resp.status == 400
        body = await resp.json()
    conforms(body)
    info = body["error"]["@Message.ExtendedInfo"][0]
    assert info["MessageId"] == "Base.1.22.ActionParameterValueNotInList"
    assert info["MessageArgs"] == ["Explode", "ResetType", "ComputerSystem.Reset"]
    async with http.post(reset, json={}) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["code"] == "Base.1.22.ActionParameterMissing"
    async with http.post(reset, data=b"{nope") as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["code"] == "Base.1.22.MalformedJSON"
    async with http.delete(f"{ROOT}/Systems/1") as resp:
        assert resp.status == 405
        conforms(await resp.json())


async def test_boot_override_is_patched_with_etags_and_used_up_by_one_boot(
    server: Server, http: aiohttp.ClientSession
) -> None:
    path = f"{ROOT}/Systems/1"
    _, _, headers = await get(http, path)
    tag = headers["ETag"]
    override = {"Boot": {"BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": "Once"}}
    async with http.patch(path, json=override, headers={"If-Match": '"0000"'}) as resp:
        assert resp.status == 412
        body = await resp.json()
    conforms(body)
    assert body["error"]["code"] == "Base.1.22.PreconditionFailed"
    async with http.patch(path, json=override, headers={"If-Match": tag}) as resp:
        assert resp.status == 200, await resp.text()
        after = await resp.json()
        assert resp.headers["ETag"] != tag
    conforms(after)
    assert after["Boot"]["BootSourceOverrideTarget"] == "Pxe"
    assert after["Boot"]["BootSourceOverrideEnabled"] == "Once"
    async with http.patch(path, json=override, headers={"If-Match": tag}) as resp:
        assert resp.status == 412  # the old ETag no longer matches
    bad = {"Boot": {"BootSourceOverrideEnabled": "Sometimes"}, "PowerState": "Off"}
    async with http.patch(path, json=bad) as resp:
        assert resp.status == 400
        body = await resp.json()
    ids = [m["MessageId"] for m in body["error"]["@Message.ExtendedInfo"]]
    assert ids == ["Base.1.22.PropertyNotWritable", "Base.1.22.PropertyValueNotInList"]
    # A reset is a boot: the Once override is used, then reverts.
    machine = server.appliance.target.single  # type: ignore[attr-defined]
    async with http.post(
        f"{path}/Actions/ComputerSystem.Reset", json={"ResetType": "ForceRestart"}
    ) as resp:
        assert resp.status == 204
    assert machine.boot.last == "Pxe"
    _, now, _ = await get(http, path)
    assert now["Boot"]["BootSourceOverrideEnabled"] == "Disabled"
    assert now["Boot"]["BootSourceOverrideTarget"] == "Pxe"
    assert now["PowerState"] == "On"


async def test_reset_switches_the_demo_machine(server: Server, http: aiohttp.ClientSession) -> None:
    reset = f"{ROOT}/Systems/1/Actions/ComputerSystem.Reset"
    machine = server.appliance.target.single  # type: ignore[attr-defined]
    async with http.post(reset, json={"ResetType": "GracefulShutdown"}) as resp:
        assert resp.status == 204
    assert not machine.power
    _, doc, _ = await get(http, f"{ROOT}/Systems/1")
    assert doc["PowerState"] == "Off"  # the action answered once the LED said so
    async with http.post(reset, json={"ResetType": "GracefulShutdown"}) as resp:
        assert resp.status == 204  # already off: nothing to do, not an error
    async with http.post(reset, json={"ResetType": "On"}) as resp:
        assert resp.status == 204
    assert machine.power
    assert (await get(http, f"{ROOT}/Systems/1"))[1]["PowerState"] == "On"


SWITCH = '[switch]\ndriver = "demo"\ncount = 3\n[[switch.ports]]\nname = "db1"\n'


async def test_with_a_switch_each_port_is_a_system_and_its_reset_selects_it(
    tmp_path: Path,
) -> None:
    srv, runner = await start_server(tmp_path, SWITCH)
    try:
        async with aiohttp.ClientSession(base_url=srv.url, headers=srv.basic()) as http:
            _, systems, _ = await get(http, f"{ROOT}/Systems")
            assert systems["Members@odata.count"] == 3
            _, first, _ = await get(http, f"{ROOT}/Systems/1")
            assert first["Name"] == "db1"
            _, third, _ = await get(http, f"{ROOT}/Systems/3")
            conforms(third)
            assert third["PowerState"] is None  # not on the console: its LED is not ours
            rack = srv.appliance.target.rack  # type: ignore[attr-defined]
            reset = f"{ROOT}/Systems/3/Actions/ComputerSystem.Reset"
            async with http.post(reset, json={"ResetType": "GracefulShutdown"}) as resp:
                assert resp.status == 204, await resp.text()
            assert rack.active == 2
            assert not rack.machines[2].power and rack.machines[0].power
            switch = srv.appliance.switch  # type: ignore[attr-defined]
            assert switch.active == 3
            _, third, _ = await get(http, f"{ROOT}/Systems/3")
            assert third["PowerState"] == "Off"
    finally:
        await runner.cleanup()


def test_messages_are_the_base_registrys() -> None:
    """Clients match on MessageId and show Message: both must be the registry's, not ours."""
    import json

    from appliance.redfish import messages
    from tests.redfish_schemas import schema_dir

    registry = json.loads((schema_dir().parent / "registries" / "Base.1.22.1.json").read_text())
    assert registry["Id"].startswith(messages.REGISTRY + ".")
    for message_id, (text, severity, resolution) in messages._BASE.items():
        entry = registry["Messages"][message_id]
        assert (text, severity, resolution) == (
            entry["Message"],
            entry["MessageSeverity"],
            entry["Resolution"],
        ), message_id
    assert set(messages.STATUS_MESSAGES.values()) <= set(messages._BASE)


async def test_insert_media_refuses_what_it_cannot_honour(
    server: Server, http: aiohttp.ClientSession
) -> None:
    cd = f"{ROOT}/Managers/bmc/VirtualMedia/Cd"
    insert = f"{cd}/Actions/VirtualMedia.InsertMedia"
    from appliance.media.nbd import streaming_available

    url = "http://127.0.0.1:1/x.iso"  # a closed port: the download fails at once
    can_stream = streaming_available() is None
    stream_refused = (
        (502, "CouldNotEstablishConnection")
        if can_stream
        else (400, "ActionParameterValueNotInList")
    )
    not_streamable = (
        (400, "ActionParameterValueError") if can_stream else (400, "ActionParameterValueNotInList")
    )
    cases = [
        ({}, 400, "ActionParameterMissing"),
        ({"Image": "ftp://host/x.iso"}, 400, "ActionParameterValueFormatError"),
        ({"Image": "http://[::1/x.iso"}, 400, "ActionParameterValueFormatError"),
        ({"Image": 7}, 400, "ActionParameterValueFormatError"),
        # Streaming needs nbdkit, nbd-client and the nbd module (the appliance image has them).
        ({"Image": url, "TransferMethod": "Stream"}, *stream_refused),
        ({"Image": url, "TransferMethod": "Stream", "Inserted": False}, *not_streamable),
        ({"Image": url, "TransferProtocolType": "HTTPS"}, 400, "ActionParameterValueNotInList"),
        ({"Image": url, "WriteProtected": False}, 400, "ActionParameterValueError"),
        ({"Image": url, "Inserted": "yes"}, 400, "ActionParameterValueTypeError"),
        ({"Image": url, "Password": "secret"}, 400, "ActionParameterNotSupported"),
        ({"Image": url, "Colour": "blue"}, 400, "ActionParameterUnknown"),
        ({"Image": url}, 502, "CouldNotEstablishConnection"),
    ]
    for body, status, message_id in cases:
        async with http.post(insert, json=body) as resp:
            answer = await resp.json()
            assert resp.status == status, (body, answer)
        conforms(answer)
        ids = [m["MessageId"] for m in answer["error"]["@Message.ExtendedInfo"]]
        assert ids == [f"Base.1.22.{message_id}"], (body, answer)
    _, slot, _ = await get(http, cd)
    assert slot["Inserted"] is False and slot["Image"] is None
    assert server.appliance.media.store.list() == []  # type: ignore[attr-defined]
    async with http.post(f"{cd}/Actions/VirtualMedia.EjectMedia") as resp:
        assert resp.status == 204  # nothing inserted: nothing to do
    status, body, _ = await get(http, f"{ROOT}/Managers/bmc/VirtualMedia/Floppy")
    assert status == 404
    conforms(body)


async def test_a_port_system_boots_the_cd_on_its_own_machine(tmp_path: Path) -> None:
    """With a switch, the drive follows the console port: a reset of port 2's System selects
    port 2 first, so machine 2 (and only it) boots from the CD Redfish inserted."""
    from aiohttp import web

    from appliance.media.iso9660 import tiny_iso

    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "rescue.iso").write_bytes(tiny_iso("RESCUE_PORT2"))
    images = web.Application()
    images.router.add_static("/", tmp_path / "www")
    image_runner = web.AppRunner(images)
    await image_runner.setup()
    site = web.TCPSite(image_runner, "127.0.0.1", 0)
    await site.start()
    port = image_runner.addresses[0][1]
    srv, runner = await start_server(tmp_path, SWITCH)
    try:
        async with aiohttp.ClientSession(base_url=srv.url, headers=srv.basic()) as http:
            insert = f"{ROOT}/Managers/bmc/VirtualMedia/Cd/Actions/VirtualMedia.InsertMedia"
            image = f"http://127.0.0.1:{port}/rescue.iso"
            async with http.post(insert, json={"Image": image}) as resp:
                assert resp.status == 204, await resp.text()
            boot = {"Boot": {"BootSourceOverrideTarget": "Cd", "BootSourceOverrideEnabled": "Once"}}
            async with http.patch(f"{ROOT}/Systems/2", json=boot) as resp:
                assert resp.status == 200
            reset = f"{ROOT}/Systems/2/Actions/ComputerSystem.Reset"
            async with http.post(reset, json={"ResetType": "ForceRestart"}) as resp:
                assert resp.status == 204, await resp.text()
            _, slot, _ = await get(http, f"{ROOT}/Managers/bmc/VirtualMedia/Cd")
            assert (slot["Inserted"], slot["Image"], slot["ConnectedVia"]) == (True, image, "URI")
        rack = srv.appliance.target.rack  # type: ignore[attr-defined]
        assert rack.active == 1
        assert [m.state()["booted_cd"] for m in rack.machines] == [None, "RESCUE_PORT2", None]
    finally:
        await runner.cleanup()
        await image_runner.cleanup()
