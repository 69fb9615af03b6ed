"""``ipkvm token create|list|revoke``: API tokens for scripts and fleet tools.

``create`` prints only the token on stdout (``TOKEN=$(ipkvm token create ci)``); it is shown once
and stored as a SHA-256 digest. A running server accepts or rejects tokens changed here at once,
and closes connections opened with a revoked token within a second (``appliance.api.connections``).
"""

from __future__ import annotations

import argparse
import sys

from appliance.cli.credentials import add_state_dir_options


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common = argparse.ArgumentParser(add_help=False)
    add_state_dir_options(common)
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = sub.add_parser("create", parents=[common], help="create a token, print it once")
    create.add_argument("name", metavar="NAME", help="what the token is for (unique)")
    create.add_argument("--user", default="admin", help="whose token (default: admin)")
    create.add_argument(
        "--role",
        choices=("viewer", "operator", "admin"),
        help="a narrower role than the user's (default: the user's own, as it changes)",
    )
    sub.add_parser("list", parents=[common], help="list tokens (ids, names, creation times)")
    revoke = sub.add_parser("revoke", parents=[common], help="revoke a token by id or name")
    revoke.add_argument("which", metavar="ID|NAME")


def run(args: argparse.Namespace) -> int:
    from appliance.auth import AuthError, AuthStore, StateTooNew, resolve_state_dir
    from appliance.cli import CliError
    from appliance.config import ConfigError

    try:
        store = AuthStore(resolve_state_dir(args.state_dir, args.config))
        if args.action == "create":
            token_id, token = store.create_token(args.name, args.user, args.role)
            store.audit.record(
                "token.create", user="cli", token=args.name, owner=args.user, role=args.role
            )
            print(token)
            print(f"created token {token_id} ({args.name}); it is shown only once", file=sys.stderr)
        elif args.action == "list":
            tokens = store.list_tokens()
            if not tokens:
                print("no tokens", file=sys.stderr)
            for t in tokens:
                role = t.role or "(user's)"
                print(f"{t.id}  {t.created}  {t.user:<16} {role:<9} {t.name}")
        else:
            info = store.revoke_token(args.which)
            if info is None:
                raise CliError(f"no token with id or name {args.which!r}")
            store.audit.record("token.revoke", user="cli", token=info.name, owner=info.user)
            print(f"revoked token {info.id} ({info.name})")
    except (AuthError, ConfigError, StateTooNew) as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"{exc.filename or 'state dir'}: {exc.strerror or exc}") from None
    return 0
