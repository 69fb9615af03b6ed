"""Python client for the ipkvm REST/WebSocket API, for people who automate.

:class:`IpkvmClient` is the asyncio client (aiohttp); :class:`SyncClient` wraps it for plain scripts
by running one private event loop in a background thread. Every method is a thin layer over
:meth:`IpkvmClient.request`, so new API areas (KVM switch ports, power, virtual media) are a few
lines each. Any non-2xx answer raises :class:`IpkvmError` carrying the server's own ``error``
message, so a script's traceback says "target offline: ..." rather than "HTTP 503".

Example::

    from appliance.client import SyncClient

    with SyncClient("http://kvm.local:8080", token=TOKEN) as kvm:
        kvm.keys("ctrl+alt+delete")
        kvm.wait_for_text("Setup Utility", timeout=60)
        kvm.type_text("hunter2\\n")
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote

import aiohttp

T = TypeVar("T")
ProgressCallback = Callable[[int, int], None]
"""``progress(typed, total)`` while text is being typed."""
ScriptProgressCallback = Callable[[dict[str, Any]], None]
"""``progress(event)`` with each ``script_progress`` event of a running script."""

DEFAULT_TIMEOUT = 30.0
# Waits on the server are bounded by their own timeout; the HTTP request gets this much more.
WAIT_MARGIN = 15.0
MAX_SNAPSHOT = (7680, 4320)


class IpkvmError(Exception):
    """The appliance answered with an error (``status`` is the HTTP status), or could not be
    reached (``status`` 0). ``message`` is the server's ``error`` text; ``body`` the whole JSON."""

    def __init__(self, status: int, message: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.body = body or {}

    def __str__(self) -> str:
        return self.message


class WaitTimeout(IpkvmError):
    """A screen wait timed out (HTTP 408); ``best_score`` is how close the screen came."""

    @property
    def best_score(self) -> float | None:
        score = self.body.get("best_score")
        return float(score) if isinstance(score, int | float) else None


def basic_header(password: str, user: str = "admin") -> str:
    """``Authorization`` value for HTTP Basic (UTF-8, as the appliance decodes it)."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _error(status: int, body: Any, fallback: str) -> IpkvmError:
    data = body if isinstance(body, dict) else {}
    message = data.get("error") if isinstance(data.get("error"), str) else fallback
    cls = WaitTimeout if status == 408 else IpkvmError
    return cls(status, str(message), data)


class IpkvmClient:
    """Asyncio client. Use as ``async with IpkvmClient(url, token=...) as kvm:``.

    Authenticate with an API token (``ipkvm token create NAME``) or a user and password (HTTP
    Basic). ``verify_tls=False`` accepts the appliance's self-signed certificate.
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        user: str | None = None,
        password: str | None = None,
        verify_tls: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._headers: dict[str, str] = {}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        elif password is not None:
            self._headers["Authorization"] = basic_header(password, user or "admin")
        self._ssl: bool | None = None if verify_tls else False
        self._session: aiohttp.ClientSession | None = None

    # ------------------------------------------------------------------ plumbing
    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                connector=aiohttp.TCPConnector(ssl=self._ssl),  # type: ignore[arg-type]
            )
        return self._session

    async def _send(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> aiohttp.ClientResponse:
        """Send a request; raise IpkvmError for non-2xx answers and unreachable appliances."""
        session = self._get_session()
        limit = self.timeout if timeout is None else timeout
        try:
            resp = await session.request(
                method,
                self.url + path,
                json=json_body,
                params=params,
                timeout=aiohttp.ClientTimeout(total=None, connect=10, sock_read=limit or None),
            )
        except aiohttp.ClientConnectorError as exc:
            raise IpkvmError(0, f"cannot reach {self.url}: {exc.os_error or exc}") from None
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise IpkvmError(0, f"{self.url}{path}: no answer within {limit:g} s") from None
        except aiohttp.ClientError as exc:
            raise IpkvmError(0, f"{self.url}{path}: {exc}") from None
        if resp.status >= 400:
            try:
                body = await resp.json(content_type=None)
            except (ValueError, aiohttp.ClientError):
                body = None
            finally:
                resp.release()
            raise _error(resp.status, body, f"HTTP {resp.status} {resp.reason or ''}".strip())
        return resp

    async def request(
        self,
        method: str,
        path: str,
        json_body: Any = None,
        *,
        params: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """One API call returning the decoded JSON answer — the core every method uses."""
        resp = await self._send(method, path, json_body=json_body, params=params, timeout=timeout)
        try:
            return await resp.json(content_type=None)
        except ValueError:
            raise IpkvmError(resp.status, f"{path}: the answer is not JSON") from None
        finally:
            resp.release()

    # ------------------------------------------------------------------ state
    async def state(self) -> dict[str, Any]:
        """The appliance state document (``GET /api/state``)."""
        result: dict[str, Any] = await self.request("GET", "/api/state")
        return result

    # ------------------------------------------------------------------ KVM switch
    async def switch_state(self) -> dict[str, Any]:
        """The KVM switch: ports, active port, state (``GET /api/switch``; 404 without one)."""
        result: dict[str, Any] = await self.request("GET", "/api/switch")
        return result

    async def switch_select(self, port: int | str) -> dict[str, Any]:
        """Switch to a port by number or name; returns once the switch confirmed it."""
        result: dict[str, Any] = await self.request("POST", "/api/switch/select", {"port": port})
        return result

    async def switch_port(self, port: int, **settings: Any) -> dict[str, Any]:
        """Rename a port or change its settings (name, layout, mouse, wol_mac, atx)."""
        result: dict[str, Any] = await self.request(
            "PATCH", f"/api/switch/ports/{int(port)}", settings
        )
        return result

    # ------------------------------------------------------------------ keyboard
    async def type_text(
        self,
        text: str,
        layout: str | None = None,
        pacing_ms: float | None = None,
        progress: ProgressCallback | None = None,
    ) -> dict[str, Any]:
        """Type *text* on the target's keyboard *layout*; returns when it was all delivered.

        Returns ``{"chars", "strokes", "untypable": [...]}``. With *progress*, the text is sent as
        a background job (``"wait": false``) and ``progress(typed, total)`` is called from the
        WebSocket's progress events.
        """
        body: dict[str, Any] = {"text": text}
        if layout is not None:
            body["layout"] = layout
        if pacing_ms is not None:
            body["pacing_ms"] = pacing_ms
        if progress is None:
            result: dict[str, Any] = await self.request("POST", "/api/hid/type", body, timeout=0)
            return result
        return await self._type_with_progress(body, progress)

    async def _type_with_progress(
        self, body: dict[str, Any], progress: ProgressCallback
    ) -> dict[str, Any]:
        # Connect the WebSocket first so no progress event is missed, then start the job.
        ws = await self._ws_connect()
        try:
            started = await self.request("POST", "/api/hid/type", {**body, "wait": False})
            job = started.get("job")
            last = -1
            async for msg in ws:
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    break
                event = json.loads(msg.data)
                if event.get("type") != "type_progress" or event.get("job") != job:
                    continue
                if event.get("done"):
                    if "error" in event:
                        status = 409 if event["error"] == "cancelled" else 503
                        raise IpkvmError(status, str(event["error"]), event)
                    total = int(event.get("chars", 0))
                    if last != total:
                        progress(total, total)
                    return {
                        "chars": event.get("chars"),
                        "strokes": event.get("strokes"),
                        "untypable": event.get("untypable", []),
                    }
                typed = int(event.get("typed", 0))
                if typed != last:  # the last character is reported more than once
                    last = typed
                    progress(typed, int(event.get("total", 0)))
            raise IpkvmError(0, "the WebSocket closed before typing finished")
        finally:
            await ws.close()

    async def _ws_connect(self) -> aiohttp.ClientWebSocketResponse:
        session = self._get_session()
        try:
            return await session.ws_connect(
                self.url + "/api/ws", heartbeat=20, timeout=aiohttp.ClientWSTimeout(ws_close=5)
            )
        except aiohttp.WSServerHandshakeError as exc:
            raise IpkvmError(exc.status, f"WebSocket refused: {exc.message}") from None
        except aiohttp.ClientError as exc:
            raise IpkvmError(0, f"cannot reach {self.url}: {exc}") from None

    async def cancel_typing(self) -> int:
        """Stop every paste (and script) in progress; returns how many were cancelled."""
        result = await self.request("POST", "/api/hid/type/cancel")
        return int(result.get("cancelled", 0))

    async def keys(self, spec: str) -> list[list[str]]:
        """Press chords in turn: ``"ctrl+alt+delete"``, ``"ctrl+alt+f2 enter"``."""
        result = await self.request("POST", "/api/hid/keys", {"keys": spec})
        pressed: list[list[str]] = result.get("pressed", [])
        return pressed

    async def key(self, code: str, down: bool) -> None:
        """Press or release one key (``KeyboardEvent.code``); held until released."""
        await self.request("POST", "/api/hid/key", {"code": code, "down": down})

    async def release_all(self) -> None:
        """Release every key and mouse button."""
        await self.request("POST", "/api/hid/release")

    # ------------------------------------------------------------------ mouse
    async def mouse_abs(self, x: float, y: float) -> None:
        """Move the pointer to (*x*, *y*), fractions 0..1 of the screen."""
        await self.request("POST", "/api/hid/mouse", {"x": x, "y": y})

    async def mouse_rel(self, dx: int, dy: int) -> None:
        """Move the relative mouse by (*dx*, *dy*) counts."""
        await self.request("POST", "/api/hid/mouse", {"dx": dx, "dy": dy})

    async def click(
        self, button: str = "left", x: float | None = None, y: float | None = None
    ) -> None:
        """Click *button* (left right middle back forward), optionally after moving to (x, y)."""
        body: dict[str, Any] = {"button": button}
        if x is not None and y is not None:
            body.update(x=x, y=y)
        await self.request("POST", "/api/hid/mouse", body)

    async def wheel(self, notches: int) -> None:
        """Scroll by *notches* (positive: away from the user)."""
        await self.request("POST", "/api/hid/mouse", {"wheel": notches})

    # ------------------------------------------------------------------ video
    async def snapshot(
        self, format: str = "png", width: int | None = None, quality: int | None = None
    ) -> bytes:
        """The current screen as PNG or JPEG bytes, optionally scaled to *width* pixels."""
        if format not in ("png", "jpeg", "jpg"):
            raise ValueError(f"format must be 'png' or 'jpeg', not {format!r}")
        # Width and height are maxima that never enlarge the picture. Both are always sent
        # (the server's largest allowed values when not asked for): servers up to 0.1.0 fail
        # with HTTP 500 when only one or neither is given.
        params = {
            "format": "jpeg" if format == "jpg" else format,
            "width": str(width if width is not None else MAX_SNAPSHOT[0]),
            "height": str(MAX_SNAPSHOT[1]),
        }
        if quality is not None:
            params["quality"] = str(quality)
        resp = await self._send("GET", "/api/snapshot", params=params)
        try:
            return await resp.read()
        finally:
            resp.release()

    # ------------------------------------------------------------------ screen waits
    async def wait_for_image(
        self,
        template_png: bytes,
        timeout: float = 30.0,
        threshold: float = 0.9,
        region: tuple[int, int, int, int] | None = None,
    ) -> dict[str, Any]:
        """Wait until *template_png* appears on screen; returns ``{"x","y","w","h","score"}``.

        Raises :class:`WaitTimeout` (with ``best_score``) when it does not within *timeout* s.
        """
        body: dict[str, Any] = {
            "image": base64.b64encode(template_png).decode(),
            "timeout": timeout,
            "threshold": threshold,
        }
        if region is not None:
            body["region"] = list(region)
        return await self._wait(body, timeout)

    async def wait_for_text(
        self,
        text: str,
        timeout: float = 30.0,
        region: tuple[int, int, int, int] | None = None,
    ) -> dict[str, Any]:
        """Wait until OCR reads *text* on screen (needs tesseract on the appliance)."""
        body: dict[str, Any] = {"text": text, "timeout": timeout}
        if region is not None:
            body["region"] = list(region)
        return await self._wait(body, timeout)

    async def _wait(self, body: dict[str, Any], timeout: float) -> dict[str, Any]:
        result: dict[str, Any] = await self.request(
            "POST", "/api/screen/wait", body, timeout=timeout + WAIT_MARGIN
        )
        return result

    # ------------------------------------------------------------------ scripts
    async def run_script(
        self,
        script: str,
        templates: dict[str, bytes] | None = None,
        layout: str | None = None,
        progress: ScriptProgressCallback | None = None,
    ) -> dict[str, Any]:
        """Run a DuckyScript on the appliance; *templates* maps WAITFOR file names to PNG bytes.

        Returns ``{"commands", "elapsed"}``. A script that does not parse raises
        :class:`IpkvmError` 400 with ``body["line"]``/``body["column"]``; nothing is sent then.
        A failing line raises with ``body["line"]`` (:class:`WaitTimeout` for a timed-out wait).
        With *progress*, ``progress(event)`` gets each ``script_progress`` event (``step``,
        ``total``, ``line``, ``command``) from the WebSocket before its line runs.
        """
        body: dict[str, Any] = {
            "script": script,
            "templates": {k: base64.b64encode(v).decode() for k, v in (templates or {}).items()},
        }
        if layout is not None:
            body["layout"] = layout
        if progress is None:
            result: dict[str, Any] = await self.request("POST", "/api/scripts/run", body, timeout=0)
            return result
        ws = await self._ws_connect()
        try:
            started = await self.request("POST", "/api/scripts/run", {**body, "wait": False})
            job = started.get("job")
            async for msg in ws:
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    break
                event = json.loads(msg.data)
                if event.get("type") != "script_progress" or event.get("job") != job:
                    continue
                if not event.get("done"):
                    progress(event)
                    continue
                if "error" in event:
                    status = event.pop("status", 409 if event["error"] == "cancelled" else 503)
                    raise _error(int(status), event, str(event["error"]))
                return {k: v for k, v in event.items() if k not in ("type", "done")}
            raise IpkvmError(0, "the WebSocket closed before the script finished")
        finally:
            await ws.close()

    async def cancel_script(self) -> int:
        """Stop every script running on the appliance; returns how many were cancelled."""
        result = await self.request("POST", "/api/scripts/cancel")
        return int(result.get("cancelled", 0))

    # ------------------------------------------------------------------ power, Wake-on-LAN
    async def power_status(self) -> dict[str, Any]:
        """``{"state", "leds": {"power", "hdd"}, "busy", "action"}`` (``GET /api/power``)."""
        result: dict[str, Any] = await self.request("GET", "/api/power")
        return result

    async def power(self, action: str) -> dict[str, Any]:
        """Press for ``action`` ("on", "off", "off_hard", "reset"); returns the status once the
        button is released. A refused action (busy, already in that state) raises a 409."""
        result: dict[str, Any] = await self.request(
            "POST", "/api/power", {"action": action}, timeout=120
        )
        return result

    async def press_power(self, duration_ms: int) -> dict[str, Any]:
        """Hold the power button for ``duration_ms`` whatever the power LED says."""
        result: dict[str, Any] = await self.request(
            "POST", "/api/power", {"action": "press", "duration_ms": duration_ms}, timeout=120
        )
        return result

    async def wake(self, mac: str | None = None) -> dict[str, Any]:
        """Send a Wake-on-LAN magic packet to ``mac`` (default: the appliance's ``wol.mac``)."""
        result: dict[str, Any] = await self.request("POST", "/api/wol", {"mac": mac} if mac else {})
        return result

    # ------------------------------------------------------------------ virtual media
    async def media_status(self) -> dict[str, Any]:
        """The virtual drive: inserted or not, which image, as CD-ROM or flash."""
        result: dict[str, Any] = await self.request("GET", "/api/media")
        return result

    async def media_images(self) -> dict[str, Any]:
        """``{"images": [...], "free": bytes, "max_image_size": bytes}``."""
        result: dict[str, Any] = await self.request("GET", "/api/media/images")
        return result

    async def media_image(self, name: str) -> dict[str, Any] | None:
        """One image (None when there is none of that name)."""
        try:
            result: dict[str, Any] = await self.request("GET", f"/api/media/images/{quote(name)}")
        except IpkvmError as exc:
            if exc.status == 404:
                return None
            raise
        return result

    async def media_delete(self, name: str) -> None:
        await self.request("DELETE", f"/api/media/images/{quote(name)}")

    async def media_attach(
        self, image: str, kind: str = "cdrom", read_only: bool = True
    ) -> dict[str, Any]:
        result: dict[str, Any] = await self.request(
            "POST", "/api/media/attach", {"image": image, "kind": kind, "read_only": read_only}
        )
        return result

    async def media_detach(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("POST", "/api/media/detach")
        return result

    async def media_fetch(
        self, url: str, name: str | None = None, sha256: str | None = None
    ) -> dict[str, Any]:
        """Start downloading *url* on the appliance; returns the job (see :meth:`job`)."""
        body: dict[str, Any] = {"url": url}
        if name:
            body["name"] = name
        if sha256:
            body["sha256"] = sha256
        result: dict[str, Any] = await self.request("POST", "/api/media/fetch", body)
        return result

    async def job(self, job_id: int) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("GET", f"/api/jobs/{job_id}")
        return result

    async def media_upload(
        self,
        path: str,
        name: str,
        *,
        resume: bool = True,
        progress: Callable[[int, int], None] | None = None,
        block: int = 1 << 20,
    ) -> dict[str, Any]:
        """Upload the file *path* as image *name*, streamed (flat memory whatever its size).

        With *resume*, an incomplete image of that name continues from its size (sent as
        ``Content-Range``); ``progress(sent, total)`` is called as blocks go out."""
        import os

        total = os.stat(path).st_size
        start = 0
        if resume:
            have = await self.media_image(name)
            if have is not None and have["state"] == "incomplete" and have["size"] <= total:
                start = int(have["size"])
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Length": str(total - start),
        }
        if total:
            headers["Content-Range"] = f"bytes {start}-{total - 1}/{total}"

        async def body() -> Any:
            sent = start
            f = await asyncio.to_thread(open, path, "rb")
            try:
                f.seek(start)
                while data := await asyncio.to_thread(f.read, block):
                    sent += len(data)
                    yield data
                    if progress is not None:
                        progress(sent, total)
            finally:
                f.close()

        session = self._get_session()
        url = f"{self.url}/api/media/images/{quote(name)}"
        try:
            resp = await session.put(
                url,
                data=body(),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=None, connect=10, sock_read=None),
            )
        except aiohttp.ClientError as exc:
            raise IpkvmError(0, f"{url}: {exc}") from None
        try:
            answer = await resp.json(content_type=None)
        except ValueError:
            answer = None
        finally:
            resp.release()
        if resp.status >= 400:
            raise _error(resp.status, answer, f"HTTP {resp.status} {resp.reason or ''}".strip())
        result: dict[str, Any] = answer
        return result


class SyncClient:
    """Blocking wrapper around :class:`IpkvmClient` for scripts without asyncio.

    It runs one event loop in a daemon thread; each call blocks until the coroutine finishes.
    ``progress`` callbacks run in that thread. Close it (or use ``with``) when done.
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        user: str | None = None,
        password: str | None = None,
        verify_tls: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.client = IpkvmClient(url, token, user, password, verify_tls, timeout)

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._loop.is_closed():
            coro.close()
            raise RuntimeError("this SyncClient is closed")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._run(self.client.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def call(self, fn: Callable[[IpkvmClient], Awaitable[T]]) -> T:
        """Run any async client method: ``kvm.call(lambda c: c.request("GET", "/api/x"))``."""

        async def go() -> T:
            return await fn(self.client)

        return self._run(go())

    def request(self, method: str, path: str, json_body: Any = None) -> Any:
        return self._run(self.client.request(method, path, json_body))

    def state(self) -> dict[str, Any]:
        return self._run(self.client.state())

    def switch_state(self) -> dict[str, Any]:
        return self._run(self.client.switch_state())

    def switch_select(self, port: int | str) -> dict[str, Any]:
        return self._run(self.client.switch_select(port))

    def switch_port(self, port: int, **settings: Any) -> dict[str, Any]:
        return self._run(self.client.switch_port(port, **settings))

    def type_text(
        self,
        text: str,
        layout: str | None = None,
        pacing_ms: float | None = None,
        progress: ProgressCallback | None = None,
    ) -> dict[str, Any]:
        return self._run(self.client.type_text(text, layout, pacing_ms, progress))

    def cancel_typing(self) -> int:
        return self._run(self.client.cancel_typing())

    def keys(self, spec: str) -> list[list[str]]:
        return self._run(self.client.keys(spec))

    def key(self, code: str, down: bool) -> None:
        self._run(self.client.key(code, down))

    def release_all(self) -> None:
        self._run(self.client.release_all())

    def mouse_abs(self, x: float, y: float) -> None:
        self._run(self.client.mouse_abs(x, y))

    def mouse_rel(self, dx: int, dy: int) -> None:
        self._run(self.client.mouse_rel(dx, dy))

    def click(self, button: str = "left", x: float | None = None, y: float | None = None) -> None:
        self._run(self.client.click(button, x, y))

    def wheel(self, notches: int) -> None:
        self._run(self.client.wheel(notches))

    def snapshot(
        self, format: str = "png", width: int | None = None, quality: int | None = None
    ) -> bytes:
        return self._run(self.client.snapshot(format, width, quality))

    def wait_for_image(
        self,
        template_png: bytes,
        timeout: float = 30.0,
        threshold: float = 0.9,
        region: tuple[int, int, int, int] | None = None,
    ) -> dict[str, Any]:
        return self._run(self.client.wait_for_image(template_png, timeout, threshold, region))

    def wait_for_text(
        self, text: str, timeout: float = 30.0, region: tuple[int, int, int, int] | None = None
    ) -> dict[str, Any]:
        return self._run(self.client.wait_for_text(text, timeout, region))

    def run_script(
        self,
        script: str,
        templates: dict[str, bytes] | None = None,
        layout: str | None = None,
        progress: ScriptProgressCallback | None = None,
    ) -> dict[str, Any]:
        return self._run(self.client.run_script(script, templates, layout, progress))

    def cancel_script(self) -> int:
        return self._run(self.client.cancel_script())

    def power_status(self) -> dict[str, Any]:
        return self._run(self.client.power_status())

    def power(self, action: str) -> dict[str, Any]:
        return self._run(self.client.power(action))

    def press_power(self, duration_ms: int) -> dict[str, Any]:
        return self._run(self.client.press_power(duration_ms))

    def wake(self, mac: str | None = None) -> dict[str, Any]:
        return self._run(self.client.wake(mac))
