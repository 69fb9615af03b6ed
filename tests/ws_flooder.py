"""A WebSocket flooder for tests/test_ws_flood.py, run as its own process so that its CPU and its
event loop are not the server's: ``python -m tests.ws_flooder URL COOKIE SOCKETS SECONDS``.

Each socket sends key presses and releases (KeyA down/up: each one a keyboard report) as fast as
the connection takes them, for SECONDS (at most 2 000 000 messages in all), then drops its TCP
connection without a closing handshake (the server may have a backlog of our messages to read
first; it releases what we hold when the connection goes). Prints
``{"sent": n, "errors": n, "closed": n}`` (messages handed to TCP, error events received,
sockets the server closed) and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys

import aiohttp

LIMIT = 2_000_000
DOWN = json.dumps({"type": "key", "code": "KeyA", "down": True})
UP = json.dumps({"type": "key", "code": "KeyA", "down": False})


async def flood(url: str, cookie: str, seconds: float, counts: list[int]) -> None:
    headers = {"Cookie": f"ipkvm_session={cookie}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        ws = await session.ws_connect(f"{url}/api/ws")
        print("ready", flush=True)

        async def drain() -> None:
            async for message in ws:
                if message.type is aiohttp.WSMsgType.TEXT and '"error"' in message.data[:20]:
                    counts[1] += 1
            counts[2] += 1

        reader = asyncio.create_task(drain())
        with contextlib.suppress(TimeoutError, ConnectionError):
            async with asyncio.timeout(seconds):
                while counts[0] < LIMIT:
                    await ws.send_str(DOWN)
                    await ws.send_str(UP)
                    counts[0] += 2
        reader.cancel()
        transport = ws._response.connection.transport if ws._response.connection else None
        if transport is not None:
            transport.abort()


async def main(url: str, cookie: str, sockets: int, seconds: float) -> None:
    counts = [0, 0, 0]
    await asyncio.gather(
        *(flood(url, cookie, seconds, counts) for _ in range(sockets)), return_exceptions=True
    )
    print(json.dumps({"sent": counts[0], "errors": counts[1], "closed": counts[2]}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
