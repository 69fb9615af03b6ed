"""The user accounts file ``STATE_DIR/users.json`` and its migration from the one-admin layout.

Format (version 2)::

    {"version": 2, "users": [{"name", "role", "created", "scrypt": {salt, n, r, p, hash},
      "ports": null | [1, 3], "totp": null | {"secret", "last_step"}, "totp_pending": null | str,
      "totp_required": false, "recovery": [sha256 hex, ...]}]}

Why a new file rather than growing ``auth.json``: the previous release reads ``auth.json`` and
would take a file it does not understand for a missing password and write a fresh one over it.
So the first start of this version copies the admin's scrypt record unchanged into ``users.json``
(same hash: every session and Basic client keeps working) and renames ``auth.json`` to
``auth.json.v1`` (kept: renaming it back is how to go back to the old release). A file whose
``version`` is newer than :data:`FORMAT_VERSION` was written by a newer ipkvm: this one refuses
to start (:class:`StateTooNew`) instead of rewriting it in an older shape.

Standard library only.
"""

from __future__ import annotations

import re
from typing import Any, Final

from appliance.roles import is_role

USERS_FILE: Final = "users.json"
LEGACY_AUTH_FILE: Final = "auth.json"
LEGACY_BACKUP: Final = "auth.json.v1"
FORMAT_VERSION: Final = 2
TOKENS_FORMAT_VERSION: Final = 2
USER_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
MAX_USERS: Final = 64
MAX_PORT: Final = 64


class StateTooNew(RuntimeError):
    """A state file written by a newer version: refuse rather than corrupt it."""

    def __init__(self, path: object, version: object, supported: int) -> None:
        super().__init__(
            f"{path} has format version {version}, written by a newer ipkvm (this one understands "
            f"up to {supported}); refusing to start rather than rewrite it. Upgrade again, or "
            "restore the state directory from the backup made before the upgrade."
        )


def check_version(path: object, data: Any, supported: int) -> None:
    if isinstance(data, dict):
        version = data.get("version")
        if isinstance(version, int) and not isinstance(version, bool) and version > supported:
            raise StateTooNew(path, version, supported)


def valid_scrypt(sc: Any) -> bool:
    import base64

    if not isinstance(sc, dict):
        return False
    try:
        n, r, p = int(sc["n"]), int(sc["r"]), int(sc["p"])
        base64.b64decode(str(sc["salt"]), validate=True)
        base64.b64decode(str(sc["hash"]), validate=True)
    except (KeyError, TypeError, ValueError):
        return False
    # refuse parameters that would eat the board's memory
    return not (n < 2 or n & (n - 1) or n > 2**20 or not 1 <= r <= 32 or not 1 <= p <= 16)


def valid_ports(ports: Any) -> bool:
    return ports is None or (
        isinstance(ports, list)
        and all(
            isinstance(p, int) and not isinstance(p, bool) and 1 <= p <= MAX_PORT for p in ports
        )
    )


def parse_users(data: Any) -> dict[str, dict[str, Any]]:
    """The valid user records of a decoded ``users.json``, by name (bad entries are skipped:
    fail closed for that user, not for everyone)."""
    if not isinstance(data, dict) or not isinstance(data.get("users"), list):
        return {}
    users: dict[str, dict[str, Any]] = {}
    for item in data["users"]:
        if not isinstance(item, dict):
            continue
        name = item.get("name")
        if not isinstance(name, str) or not USER_RE.match(name) or name in users:
            continue
        if not is_role(item.get("role")) or not valid_scrypt(item.get("scrypt")):
            continue
        if not valid_ports(item.get("ports")):
            continue
        users[name] = item
    return users


def dump_users(users: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {"version": FORMAT_VERSION, "users": [users[n] for n in sorted(users)]}


def new_record(name: str, role: str, scrypt: dict[str, Any], created: str) -> dict[str, Any]:
    return {
        "name": name,
        "role": role,
        "created": created,
        "scrypt": scrypt,
        "ports": None,
        "totp": None,
        "totp_pending": None,
        "totp_required": False,
        "recovery": [],
    }
