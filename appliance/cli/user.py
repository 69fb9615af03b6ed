"""``ipkvm user add|list|rm|passwd|role``: user accounts (``STATE_DIR/users.json``).

Passwords come from a no-echo prompt (asked twice) or, for scripts, one line on stdin with
``--password-stdin``; never from the command line, where ``ps`` and the shell history would show
them. A running server sees every change at once: a removed user's sessions, tokens and open
connections end within a second, a new role applies to the next request or WebSocket message.
Every change is written to the audit log as done by ``cli`` (and the Unix user running it).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from appliance.cli.credentials import add_state_dir_options, read_new_password
from appliance.roles import ROLES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common = argparse.ArgumentParser(add_help=False)
    add_state_dir_options(common)
    stdin = argparse.ArgumentParser(add_help=False)
    stdin.add_argument(
        "--password-stdin", action="store_true", help="read the password as one line from stdin"
    )
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = sub.add_parser("add", parents=[common, stdin], help="add a user (asks the password)")
    add.add_argument("name", metavar="NAME")
    add.add_argument("--role", choices=ROLES, default="viewer", help="default: viewer")
    add.add_argument(
        "--ports",
        help="comma-separated switch ports the user may type into, power and select (default: all)",
    )
    add.add_argument("--require-2fa", action="store_true", help="the user must set up TOTP")
    sub.add_parser("list", parents=[common], help="list users (name, role, ports, 2FA)")
    rm = sub.add_parser("rm", parents=[common], help="remove a user (sessions and tokens end)")
    rm.add_argument("name", metavar="NAME")
    pw = sub.add_parser("passwd", parents=[common, stdin], help="set a user's password")
    pw.add_argument("name", metavar="NAME")
    role = sub.add_parser("role", parents=[common], help="change a user's role (and ports)")
    role.add_argument("name", metavar="NAME")
    role.add_argument("role", choices=ROLES)
    role.add_argument("--ports", help="comma-separated switch ports, or 'all'")


def _new_password(args: argparse.Namespace, name: str) -> str:
    return read_new_password(args.password_stdin, f"Password for {name}: ", "--password-stdin")


def _ports(text: str | None) -> list[int] | None:
    from appliance.cli import CliError

    if text is None or text.strip().lower() == "all":
        return None
    try:
        return [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise CliError(f"--ports must be comma-separated numbers or 'all', not {text!r}") from None


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"cli:uid{os.geteuid()}"


def run(args: argparse.Namespace) -> int:
    from appliance.auth import AuthError, AuthStore, StateTooNew, resolve_state_dir
    from appliance.cli import CliError
    from appliance.config import ConfigError

    try:
        store = AuthStore(resolve_state_dir(args.state_dir, args.config))
        audit = store.audit
        if args.action == "list":
            for u in store.list_users():
                shown = ",".join(map(str, u.ports)) if u.ports is not None else "all"
                totp = "2fa" if u.totp else ("2fa-required" if u.totp_required else "-")
                print(f"{u.name:<20} {u.role:<9} ports={shown:<10} {totp}")
            return 0
        name = args.name
        if args.action == "add":
            narrow = _ports(args.ports)
            password = read_new_password(
                args.password_stdin, f"Password for {name}: ", "--password-stdin"
            )
            store.add_user(name, password, args.role)
            if narrow is not None:
                store.set_ports(name, narrow)
            if args.require_2fa:
                store.set_totp_required(name, True)
            audit.record("user.add", user=_actor(), target=name, role=args.role, ports=narrow)
            print(f"added user {name} ({args.role})", file=sys.stderr)
        elif args.action == "rm":
            store.remove_user(name)
            audit.record("user.remove", user=_actor(), target=name)
            print(f"removed user {name}", file=sys.stderr)
        elif args.action == "passwd":
            if store.user_info(name) is None:
                raise CliError(f"no user {name!r}")
            store.set_password(
                read_new_password(
                    args.password_stdin, f"Password for {name}: ", "--password-stdin"
                ),
                name,
            )
            audit.record("user.change", user=_actor(), target=name, changed=["password"])
            print(f"password of {name} changed; their browser sessions ended", file=sys.stderr)
        else:
            store.set_role(name, args.role)
            changed = ["role"]
            if args.ports is not None:
                store.set_ports(name, _ports(args.ports))
                changed.append("ports")
            audit.record("user.change", user=_actor(), target=name, changed=changed)
            print(f"{name} is now {args.role}", file=sys.stderr)
    except (AuthError, ConfigError, StateTooNew) as exc:
        text = f"{exc}; nothing changed" if isinstance(exc, AuthError) else str(exc)
        raise CliError(text) from None
    except OSError as exc:
        raise CliError(f"{exc.filename or 'state dir'}: {exc.strerror or exc}") from None
    return 0
