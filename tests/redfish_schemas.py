"""Validate Redfish documents against the DMTF JSON schemas (a copy in tests/data/redfish).

Each document is checked against the schema its ``@odata.type`` names (``#ComputerSystem.v1_27_0
.ComputerSystem`` → ``ComputerSystem.v1_27_0.json#/definitions/ComputerSystem``), error bodies
against ``redfish-error.v1_0_2.json``. The validator is jsonschema-rs (schemathesis brings it).
It resolves every ``$ref`` up front, and the shared folder holds only the schemas of the resources
this service implements, so a schema that is absent (a resource we never serve, such as
``CompositionService``) is stood in for by one whose definitions accept nothing: a document that
used one of those properties would fail instead of passing unchecked.
"""

from __future__ import annotations

import json
import os
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs

BASE = "http://redfish.dmtf.org/schemas/v1/"
_REF = re.compile(r'/([\w.]+\.json)#/definitions/(\w+)"')


def schema_dir() -> Path:
    """tests/data/redfish/json-schema (or IPKVM_REDFISH_SCHEMAS: a newer bundle to try)."""
    here = Path(__file__).resolve().parents[1]
    candidates = (
        [Path(os.environ["IPKVM_REDFISH_SCHEMAS"])] if "IPKVM_REDFISH_SCHEMAS" in os.environ else []
    )
    candidates.append(here / "tests" / "data" / "redfish" / "json-schema")
    for path in candidates:
        if (path / "ServiceRoot.json").is_file():
            return path
    raise AssertionError(f"the DMTF Redfish schemas are not in any of {candidates}")


@cache
def _texts() -> dict[str, str]:
    return {p.name: p.read_text() for p in schema_dir().glob("*.json")}


@cache
def _stubs() -> dict[str, list[str]]:
    wanted: dict[str, set[str]] = {}
    for text in _texts().values():
        for name, definition in _REF.findall(text):
            wanted.setdefault(name, set()).add(definition)
    return {name: sorted(defs) for name, defs in wanted.items()}


def _retrieve(uri: str) -> Any:
    name = uri.rsplit("/", 1)[-1]
    text = _texts().get(name)
    if text is not None:
        return json.loads(text)
    return {"definitions": dict.fromkeys(_stubs().get(name, ()), False)}


@cache
def _validator(file: str, definition: str) -> Any:
    schema = {"$ref": f"{BASE}{file}.json#/definitions/{definition}"}
    return jsonschema_rs.Draft7Validator(schema, retriever=_retrieve, validate_formats=True)


def problems(doc: Any) -> list[str]:
    """What is wrong with ``doc`` by its schema (empty: it conforms)."""
    if isinstance(doc, dict) and "error" in doc and "@odata.type" not in doc:
        file, definition = "redfish-error.v1_0_2", "RedfishError"
    else:
        kind = doc["@odata.type"].lstrip("#")
        file, definition = kind.rsplit(".", 1)
    return [
        f"{'/'.join(map(str, e.instance_path)) or '(root)'}: {e.message}"
        for e in _validator(file, definition).iter_errors(doc)
    ]
