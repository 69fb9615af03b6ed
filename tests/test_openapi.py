"""``GET /api/openapi.json`` describes exactly the routes the app serves, for each kind of target.

The document is built from the router (``appliance.api.openapi_doc``), so these tests read the
router independently — ``app.router.routes()`` as aiohttp has it — and compare both ways: a route
the app serves but the document lacks (a handler without ``@describe``) fails, and so does a
documented operation the app does not serve. Routes depend on facets, hence a demo target (power,
``/api/demo/*``) and a bare hardware target (neither).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.conftest import Server, start_server

HARDWARE = (
    '[target]\nkind = "hardware"\n[video]\nsource = "demo"\n'
    '[hid.otg]\nkeyboard = "{d}/kbd"\nmouse = "{d}/abs"\nmouse_rel = "{d}/rel"\n'
)
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


@pytest.fixture(params=["demo", "hardware"])
async def any_server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Server]:
    toml = "" if request.param == "demo" else HARDWARE.format(d=tmp_path)
    srv, runner = await start_server(tmp_path, toml)
    try:
        yield srv
    finally:
        await runner.cleanup()


def served(app: web.Application) -> set[tuple[str, str]]:
    """(method, OpenAPI path) of every route: HEAD counts as part of its GET (aiohttp adds one
    for each GET), the static directory as ``/static/{filename}``."""
    routes: set[tuple[str, str]] = set()
    for route in app.router.routes():
        resource = route.resource
        assert resource is not None
        path = (
            "/static/{filename}" if isinstance(resource, web.StaticResource) else resource.canonical
        )
        routes.add((route.method, path))
    heads = {(m, p) for m, p in routes if m == "HEAD"}
    assert all(("GET", p) in routes for _, p in heads), "a HEAD route without its GET"
    return routes - heads


async def fetch_document(srv: Server) -> dict[str, Any]:
    async with aiohttp.ClientSession(base_url=srv.url, headers=srv.basic()) as http:
        async with http.get("/api/openapi.json") as resp:
            assert resp.status == 200
            assert resp.content_type == "application/json"
            doc: dict[str, Any] = await resp.json()
            return doc


def documented(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in doc["paths"].items()
        for method in item
        if method in METHODS
    }


async def test_document_lists_exactly_the_served_routes(any_server: Server) -> None:
    doc = await fetch_document(any_server)
    routes = served(any_server.app)
    docs = documented(doc)
    assert routes - docs == set(), "served but undocumented: add @describe to the handler"
    assert docs - routes == set(), "documented but not served"
    power = ("POST", "/api/power") in routes
    demo = ("GET", "/api/demo/state") in routes
    assert power == demo  # the demo target has both; the bare hardware target neither


async def test_public_routes_are_the_ones_the_auth_middleware_lets_through(
    any_server: Server,
) -> None:
    from appliance.api.auth import AUTH_SETTINGS

    settings = any_server.app[AUTH_SETTINGS]
    doc = await fetch_document(any_server)
    for path, item in doc["paths"].items():
        concrete = path.replace("{filename}", "app.js")
        for method, op in item.items():
            public = settings.is_public(method.upper(), concrete)
            assert (op.get("security") == []) == public, f"{method.upper()} {path}"
            if not public:
                assert "401" in op["responses"], f"{method.upper()} {path}"


async def test_document_is_valid_openapi_3_1(server: Server) -> None:
    import schemathesis
    from schemathesis.core.result import Ok

    doc = await fetch_document(server)
    assert doc["openapi"] == "3.1.0"
    assert set(doc["components"]["securitySchemes"]) == {"cookie", "bearer", "basic"}
    schema = schemathesis.openapi.from_dict(doc)
    schema.validate()  # against the OpenAPI 3.1 meta-schema
    operations = list(schema.get_all_operations())
    assert operations and all(isinstance(op, Ok) for op in operations)
    # Every error answer under /api/ is the JSON error object.
    for path, item in doc["paths"].items():
        for op in item.values():
            for status, reply in op["responses"].items():
                if int(status) >= 400 and path.startswith("/api/"):
                    schema_of = reply["content"]["application/json"]["schema"]
                    assert schema_of == {"$ref": "#/components/schemas/Error"}, (path, status)


async def test_document_needs_credentials_and_is_built_once(server: Server) -> None:
    from appliance.api.openapi_doc import OPENAPI

    async with aiohttp.ClientSession(base_url=server.url) as http:
        async with http.get("/api/openapi.json") as resp:
            assert resp.status == 401
    lazy = server.app[OPENAPI]
    first = lazy.body(server.app)
    assert lazy.body(server.app) is first


def test_the_limits_in_the_document_are_the_handlers_limits() -> None:
    """Spot checks that the declarations use the constants the handlers check."""
    from appliance.api import hid, webrtc
    from appliance.api.openapi import operation_of
    from hid.reports import BUTTONS

    typing = operation_of(hid.type_text)
    assert typing is not None and typing.body is not None
    assert typing.body["properties"]["text"]["maxLength"] == hid.MAX_TYPE_CHARS
    mouse = operation_of(hid.mouse)
    assert mouse is not None and mouse.body is not None
    assert mouse.body["properties"]["button"]["enum"] == list(BUTTONS)
    offer = operation_of(webrtc.offer)
    assert offer is not None and offer.body is not None
    assert offer.body["properties"]["sdp"]["maxLength"] == webrtc.MAX_SDP
    from appliance.api import power

    act = operation_of(power.power_action)
    assert act is not None and act.body is not None
    assert act.body["properties"]["action"]["enum"] == list(power.ACTIONS)
