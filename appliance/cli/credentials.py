"""What the credential commands (``passwd``, ``user``, ``token``) share: where the state is, and
how a new password is read (never echoed, asked twice; one line from stdin for scripts)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_state_dir_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir",
        type=Path,
        help="credentials directory (default: $IPKVM_STATE_DIR, the config's server.state_dir, "
        "/var/lib/ipkvm)",
    )
    parser.add_argument("--config", type=Path, help="configuration file to take state_dir from")


def read_new_password(from_stdin: bool, prompt: str, stdin_flag: str) -> str:
    """The new password: one line of stdin, or asked twice on the terminal (``stdin_flag`` is
    the option a script should use, named in the error when stdin is not a terminal)."""
    from appliance.cli import CliError

    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise CliError("no password on stdin")
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise CliError(f"stdin is not a terminal: use {stdin_flag} to read the password from it")
    import getpass

    first = getpass.getpass(prompt)
    if getpass.getpass("Repeat: ") != first:
        raise CliError("the passwords do not match; nothing changed")
    return first
