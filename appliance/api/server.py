"""Start the web server around a built appliance: the one way ``ipkvm serve``, the tests and the
benchmarks bring the service up, so they all run the same wiring (auth, connection limits,
time-outs, shutdown order).

``ipkvm serve`` adds what only a process needs (signals, the systemd watchdog, the start-up
banner); tests start the same thing on ``127.0.0.1:0`` and read the port back from
:attr:`RunningServer.url`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from appliance.api.app import create_app
from appliance.api.connlimits import (
    ConnectionLimits,
    GuardedSite,
    resolve_max_connections,
    runner_kwargs,
)
from appliance.runtime import Appliance, build_appliance

if TYPE_CHECKING:
    from ssl import SSLContext

    from appliance.auth import AuthStore
    from appliance.config import Config

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT = 3.0
"""Streams end at shutdown (on_shutdown); this is a backstop for anything else
(tests/test_serve.py checks shutdown beats it)."""


@dataclass
class RunningServer:
    appliance: Appliance
    app: web.Application
    runner: web.AppRunner
    site: GuardedSite
    url: str
    """``scheme://host:port`` actually bound (port 0 in the config → the port the OS chose)."""
    max_connections: int

    async def close(self) -> None:
        """Shut down: streams end, keys are released, the socket closes."""
        await self.runner.cleanup()


async def start_server(
    config: Config, store: AuthStore, *, ssl_context: SSLContext | None = None
) -> RunningServer:
    """Build the appliance for *config*, serve it on ``server.listen`` and return once listening."""
    appliance = build_appliance(config)
    app = create_app(appliance, store, secure_cookies=ssl_context is not None)
    limits = ConnectionLimits(
        header_timeout=config.server.header_timeout,
        keepalive_timeout=config.server.keepalive_timeout,
        max_connections=config.server.max_connections,
    )
    runner = web.AppRunner(
        app,
        handle_signals=False,
        access_log=None,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
        **runner_kwargs(limits),
    )
    await runner.setup()
    cap = resolve_max_connections(limits, config.webrtc.max_peers)
    host, port = config.server.host, config.server.port
    site = GuardedSite(runner, host, port, limits, cap, ssl_context=ssl_context)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    bound = runner.addresses[0][1] if runner.addresses else port
    scheme = "https" if ssl_context else "http"
    shown = f"[{host}]" if ":" in host else host
    log.info(
        "connections: at most %d, headers within %g s, idle keep-alive %g s",
        cap,
        limits.header_timeout,
        limits.keepalive_timeout,
    )
    return RunningServer(appliance, app, runner, site, f"{scheme}://{shown}:{bound}", cap)
