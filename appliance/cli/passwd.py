"""``ipkvm passwd``: set the ``admin`` password (other users: ``ipkvm user passwd NAME``).

Interactive on a terminal (asked twice, never echoed); ``--stdin`` reads one line for scripts.
A running server notices the new hash at once and ends admin's browser sessions; connections
opened with those sessions or the old password are closed within a second
(``appliance.api.connections``). Users change their own password in the console (/account).
"""

from __future__ import annotations

import argparse
import sys

from appliance.cli.credentials import add_state_dir_options, read_new_password


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_state_dir_options(parser)
    parser.add_argument(
        "--stdin", action="store_true", help="read the new password as one line from stdin"
    )


def run(args: argparse.Namespace) -> int:
    from appliance.auth import AuthError, AuthStore, StateTooNew, resolve_state_dir
    from appliance.cli import CliError
    from appliance.config import ConfigError

    try:
        state_dir = resolve_state_dir(args.state_dir, args.config)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    password = read_new_password(args.stdin, "New admin password: ", "--stdin")
    try:
        store = AuthStore(state_dir)
        store.set_password(password)
        store.audit.record("user.change", user="cli", target="admin", changed=["password"])
    except AuthError as exc:
        raise CliError(f"{exc}; nothing changed") from None
    except StateTooNew as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"cannot write {state_dir}: {exc.strerror or exc}") from None
    print(f"admin password changed in {state_dir}", file=sys.stderr)
    return 0
