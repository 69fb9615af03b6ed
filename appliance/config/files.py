"""Where the configuration comes from: reading and parsing the TOML file."""

from __future__ import annotations

from pathlib import Path

from appliance.config.errors import ConfigError
from appliance.config.root import Config, build_config

DEFAULT_CONFIG_PATH = Path("/etc/ipkvm/ipkvm.toml")


def load_config(path: Path | None) -> Config:
    """Read and validate ``path``; None gives the built-in defaults.

    The caller decides whether a default file applies (see :func:`find_config`): a missing file
    that was asked for is an error, never silently the defaults.
    """
    if path is None:
        return build_config({})
    import tomllib  # only when there is a file: ``serve`` without one never pays for the parser

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(None, f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(None, f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(None, f"{path}: invalid TOML: {exc}") from None
    return build_config(raw, path=path)


def find_config(explicit: Path | None) -> Path | None:
    """The file ``serve`` should load: the one given, else /etc/ipkvm/ipkvm.toml if it exists."""
    if explicit is not None:
        return explicit
    return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.is_file() else None
