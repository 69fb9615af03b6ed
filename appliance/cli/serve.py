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
    parser.add_argument("--target", choices=("demo", "hardware", "qemu"), help="what to control")
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
    from appliance.memory import start_tracing_from_env

    start_tracing_from_env()  # IPKVM_TRACEMALLOC=<frames>: /api/debug/runtime?tracemalloc=N

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
    import signal
    import sys
    import time

    from appliance import __version__, sdnotify
    from appliance.api.connlimits import AcceptErrorLog
    from appliance.api.server import start_server
    from appliance.auth import AuthStore, StateTooNew
    from appliance.cli import CliError

    started = time.monotonic()
    # First thing: a SIGTERM during start-up must still end in a clean shutdown.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.set_exception_handler(AcceptErrorLog())  # no traceback flood at the fd limit
    state_dir = Path(config.server.state_dir)
    try:
        store = AuthStore(state_dir, session_ttl=config.server.session_ttl)
        password = store.ensure_admin()
    except StateTooNew as exc:  # a downgrade: refuse rather than rewrite newer files
        raise CliError(str(exc)) from None

    ssl_context = None
    if config.server.tls:
        from appliance.tls import default_hostnames, ensure_certificate
        from appliance.tls import ssl_context as make_context

        cert, key = config.server.cert, config.server.key
        ensure_certificate(cert, key, hostnames=default_hostnames(config.server.host))
        ssl_context = make_context(cert, key)

    server = await start_server(config, store, ssl_context=ssl_context)
    took = time.monotonic() - started
    lines = [
        f"ipkvm {__version__}: {config.target.kind} target, up in {took:.2f} s",
        f"  URL:      {server.url}/",
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
        await server.close()
