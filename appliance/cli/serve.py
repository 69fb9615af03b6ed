"""``ipkvm serve``: load and check the configuration, make sure an admin password exists, start the
appliance and the web server, and shut everything down cleanly (keys released) on SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_CONFIG = Path("/etc/ipkvm/ipkvm.toml")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, help=f"TOML configuration (default {DEFAULT_CONFIG} if it exists)"
    )
    parser.add_argument("--listen", metavar="HOST:PORT", help="address to listen on")
    parser.add_argument("--state-dir", type=Path, help="where passwords, tokens and keys live")
    parser.add_argument("--target", choices=("demo", "hardware"), help="what to control")
    tls = parser.add_mutually_exclusive_group()
    tls.add_argument("--tls", dest="tls", action="store_true", default=None, help="serve HTTPS")
    tls.add_argument("--no-tls", dest="tls", action="store_false", help="serve plain HTTP")
    parser.add_argument(
        "--log-level", default="info", choices=("debug", "info", "warning", "error")
    )


def run(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from appliance.cli import CliError
    from appliance.config import ConfigError, load_config

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    path = args.config
    if path is None and DEFAULT_CONFIG.exists():
        path = DEFAULT_CONFIG
    try:
        config = load_config(path).with_overrides(
            listen=args.listen, state_dir=args.state_dir, target=args.target, tls=args.tls
        )
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"cannot read configuration: {exc}") from None
    try:
        asyncio.run(serve(config))
    except OSError as exc:
        raise CliError(str(exc)) from None
    return 0


async def serve(config) -> None:  # type: ignore[no-untyped-def]
    import asyncio
    import contextlib
    import logging
    import signal
    import sys
    import time

    from aiohttp import web

    from appliance import __version__, sdnotify
    from appliance.api.app import create_app
    from appliance.api.connlimits import (
        AcceptErrorLog,
        ConnectionLimits,
        GuardedSite,
        resolve_max_connections,
        runner_kwargs,
    )
    from appliance.auth import AuthStore
    from appliance.runtime import build_appliance

    started = time.monotonic()
    # First thing: a SIGTERM during start-up must still end in a clean shutdown.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.set_exception_handler(AcceptErrorLog())  # no traceback flood at the fd limit
    state_dir = Path(config.server.state_dir)
    store = AuthStore(state_dir, session_ttl=config.server.session_ttl)
    password = store.ensure_admin()

    ssl_context = None
    if config.server.tls:
        from appliance.tls import default_hostnames, ensure_certificate
        from appliance.tls import ssl_context as make_context

        cert, key = config.server.cert, config.server.key
        ensure_certificate(cert, key, hostnames=default_hostnames(config.server.host))
        ssl_context = make_context(cert, key)

    appliance = build_appliance(config)
    app = create_app(appliance, store, secure_cookies=ssl_context is not None)
    # Streams end at shutdown (on_shutdown); the timeout is a backstop for anything else
    # (tests/test_serve.py checks shutdown beats it).
    limits = ConnectionLimits(
        header_timeout=config.server.header_timeout,
        keepalive_timeout=config.server.keepalive_timeout,
        max_connections=config.server.max_connections,
    )
    runner = web.AppRunner(
        app, handle_signals=False, access_log=None, shutdown_timeout=3.0, **runner_kwargs(limits)
    )
    await runner.setup()
    cap = resolve_max_connections(limits, config.webrtc.max_peers)
    site = GuardedSite(
        runner, config.server.host, config.server.port, limits, cap, ssl_context=ssl_context
    )
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    logging.getLogger(__name__).info(
        "connections: at most %d, headers within %g s, idle keep-alive %g s",
        cap,
        limits.header_timeout,
        limits.keepalive_timeout,
    )
    scheme = "https" if ssl_context else "http"
    host = config.server.host
    shown = f"[{host}]" if ":" in host else host
    took = time.monotonic() - started
    lines = [
        f"ipkvm {__version__}: {config.target.kind} target, up in {took:.2f} s",
        f"  URL:      {scheme}://{shown}:{config.server.port}/",
        "  user:     admin",
    ]
    if password:
        lines.append(f"  password: {password}")
        lines.append("            (shown only this once; change it with `ipkvm passwd`)")
    else:
        lines.append("  password: the one set before (change it with `ipkvm passwd`)")
    print("\n".join(lines), flush=True)
    sys.stdout.flush()

    sdnotify.notify("READY=1")
    watchdog = None
    interval = sdnotify.watchdog_interval()
    if interval:
        watchdog = asyncio.create_task(sdnotify.watchdog_loop(interval))
    try:
        await stop.wait()
    finally:
        sdnotify.notify("STOPPING=1")
        if watchdog:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog
        await runner.cleanup()
