"""``[server]``: where the web service listens and where it keeps its secrets.

Read by ``appliance.cli.serve`` (socket, TLS, session lifetime, connection limits) and
``appliance.api.app`` (which proxies may name the client).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from appliance.config import checks
from appliance.config.checks import ProxyNetwork, parse_listen
from appliance.config.context import Context
from appliance.config.options import option

DEFAULT_STATE_DIR = Path("/var/lib/ipkvm")

ProxyHeader = Literal["x-forwarded-for", "forwarded"]


def _in_state_dir(name: str) -> Callable[[Context], Path]:
    """An unset TLS file lives in the state dir, so ``--state-dir`` moves it along."""

    def derive(context: Context) -> Path:
        return context.state_dir / "tls" / name

    return derive


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerConfig:
    listen: str = option(
        "127.0.0.1:8080",
        check=checks.listen_address,
        doc='address:port to serve on; the appliance image sets "0.0.0.0:443" (with tls)',
    )
    tls: bool = option(False, doc="serve HTTPS (self-signed certificate generated if missing)")
    state_dir: Path = option(
        DEFAULT_STATE_DIR, doc="password hash, tokens, certificate (mode 0700)"
    )
    session_ttl_hours: float = option(
        12.0,
        check=checks.number(0, 24 * 366, lo_open=True),
        doc="browser session lifetime after login",
    )
    cert: Path = option(
        None,
        check=checks.optional_path,
        derive=_in_state_dir("cert.pem"),
        example="/var/lib/ipkvm/tls/cert.pem",
        doc="TLS certificate (PEM); default STATE_DIR/tls/cert.pem",
    )
    key: Path = option(
        None,
        check=checks.optional_path,
        derive=_in_state_dir("key.pem"),
        example="/var/lib/ipkvm/tls/key.pem",
        doc="TLS private key (PEM, mode 0600); default STATE_DIR/tls/key.pem",
    )
    trusted_proxies: tuple[ProxyNetwork, ...] = option(
        (),
        check=checks.networks,
        doc="reverse proxies (IPs or CIDR networks) trusted to name the client; none by default",
    )
    """Peers whose ``proxy_header`` is believed (empty: none; the TCP peer is the client)."""
    proxy_header: ProxyHeader = option(
        "x-forwarded-for",
        doc="header a trusted proxy sets: X-Forwarded-For or Forwarded (RFC 7239)",
    )
    header_timeout: float = option(
        10.0, check=checks.number(1, 300), doc="seconds to send a request's headers"
    )
    keepalive_timeout: float = option(
        30.0, check=checks.number(1, 3600), doc="idle seconds before a close"
    )
    max_connections: int = option(
        0, check=checks.int_range(0, 65536), doc="open connections; 0: from RLIMIT_NOFILE"
    )
    """0: derived from RLIMIT_NOFILE (see :mod:`appliance.api.connlimits`)."""
    ws_rate: float = option(
        500.0,
        check=checks.number(0, 100_000),
        doc="input messages a second per /api/ws connection, sustained; 0: no limit",
    )
    """Above it the socket is read no faster (see :mod:`appliance.api.ws`): a console sends one
    pointer message per animation frame (60-144 a second, a few in a fast relative flick) plus
    keys; 500 leaves room. Three sockets flooding at 500 a second each left /api/health and another
    client's key press answered within 10 ms (tests/test_ws_flood.py)."""
    ws_burst: int = option(
        1000,
        check=checks.int_range(1, 1_000_000),
        doc="messages an /api/ws connection may send at once",
    )

    @property
    def host(self) -> str:
        """The host part of ``listen`` (IPv6 without brackets)."""
        return parse_listen("server.listen", self.listen)[0]

    @property
    def port(self) -> int:
        """The port of ``listen`` (0: the OS picks one)."""
        return parse_listen("server.listen", self.listen)[1]

    @property
    def session_ttl(self) -> float:
        """Session lifetime in seconds (what AuthStore and the cookie Max-Age take)."""
        return self.session_ttl_hours * 3600.0
