"""Roles and the rights they grant: the one table every route, WebSocket message and token obeys.

Why a small fixed set instead of free-form ACLs: an IP-KVM's users fall into three groups (NOC staff
who watch, operators who type and power-cycle, admins who manage media, users and settings), and a
table three rows long can be read in a review, tested exhaustively (route x role, see
``tests/test_rights.py``) and explained in one paragraph of docs/security.md.

Every route names one :data:`Permission` next to its handler (``Operation.permission`` in
``appliance.api.openapi``); the rights middleware (``appliance.api.rights``) refuses a request
whose role lacks it. Standard library only: the CLI imports this.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

Role = Literal["viewer", "operator", "admin"]
ROLES: Final[tuple[Role, ...]] = get_args(Role)

Permission = Literal[
    "public", "account", "view", "input", "switch", "power", "control", "media", "admin"
]
"""What a route needs.

- ``public``: no login (login page, health check, static assets).
- ``account``: any logged-in user, about themselves (who am I, change my password, my 2FA);
  allowed even before a required 2FA enrolment is done.
- ``view``: video and state (every role).
- ``input``: keyboard, mouse, paste, scripts (operator and admin).
- ``switch``: selecting a KVM switch port (operator and admin).
- ``power``: ATX power, Wake-on-LAN (operator and admin).
- ``control``: taking or releasing exclusive control (operator and admin); unlike ``input`` it
  stays while someone else holds control, or nobody could ever ask for it.
- ``media``: virtual media (admin).
- ``admin``: users, tokens, settings, audit log (admin).
"""
PERMISSIONS: Final[tuple[Permission, ...]] = get_args(Permission)

ROLE_RIGHTS: Final[dict[Role, frozenset[Permission]]] = {
    "viewer": frozenset({"public", "account", "view"}),
    "operator": frozenset({"public", "account", "view", "input", "switch", "power", "control"}),
    "admin": frozenset(PERMISSIONS),
}

CONTROL_RIGHTS: Final[frozenset[Permission]] = frozenset({"input", "switch", "power"})
"""The rights someone else's exclusive control takes away (they make the others viewers)."""

PORT_RIGHTS: Final[frozenset[Permission]] = frozenset({"input", "power"})
"""The rights a per-port narrowing limits to the user's switch ports (the machine on screen)."""


def is_role(value: object) -> bool:
    return isinstance(value, str) and value in ROLES


def rank(role: Role) -> int:
    return ROLES.index(role)


def narrower(a: Role, b: Role | None) -> Role:
    """The lesser of two roles (a token's role never exceeds its owner's current role)."""
    if b is None:
        return a
    return a if rank(a) <= rank(b) else b


def allows(role: Role, permission: Permission) -> bool:
    return permission in ROLE_RIGHTS[role]
