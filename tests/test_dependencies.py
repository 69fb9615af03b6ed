"""Every runtime dependency in pyproject.toml is imported by the product.

An unused dependency still costs install time and flash space on every appliance (and a CVE
to triage); one that is only used by tests belongs in the ``test`` extra.
"""

from __future__ import annotations

import ast
import re
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("appliance", "hid", "capture")


def _imported_top_level() -> set[str]:
    names: set[str] = set()
    for package in PRODUCT:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names.update(alias.name.partition(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names.add(node.module.partition(".")[0])
    return names


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_runtime_dependency_is_imported_by_the_product() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {
        _normalise(re.split(r"[\s;<>=!~\[]", req, maxsplit=1)[0]) for req in project["dependencies"]
    }
    imported = _imported_top_level()
    distributions = packages_distributions()
    used = {_normalise(dist) for module in imported for dist in distributions.get(module, ())}
    unused = sorted(declared - used)
    assert not unused, f"declared in [project] dependencies but never imported: {unused}"
