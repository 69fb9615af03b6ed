"""Download an image from an HTTP(S) URL into the store, with progress and an optional SHA-256.

The body streams through the same :class:`~appliance.media.store.Transfer` as an upload (a
``.part`` file, periodic sync, rename only when complete), so a download that fails or is
cancelled never leaves an image that looks complete. The announced ``Content-Length`` is checked
against the size limit and the free space before the first byte is written.

aiohttp is imported here, inside the function: the store and the CLI stay light.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import unquote, urlsplit

from appliance.media.errors import InvalidName, MediaError
from appliance.media.names import check_name
from appliance.media.store import ImageInfo, ImageStore

CHUNK = 1 << 16
MAX_URL = 4096
SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}$")


class FetchFailed(MediaError):
    """The server or the network failed, or the checksum did not match."""

    status = 502


def check_url(url: str) -> str:
    """*url* when it is an absolute http(s) URL with a host, else :class:`MediaError` (400)."""
    if len(url) > MAX_URL:
        raise MediaError(f"a URL is at most {MAX_URL} characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise MediaError("the URL must be http:// or https:// with a host")
    return url


def check_sha256(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not SHA256_RE.match(value):
        raise MediaError("sha256 must be 64 hexadecimal digits")
    return value.lower()


def name_from_url(url: str) -> str:
    """The image name a URL suggests: its last path segment (``.../debian-12.iso``)."""
    segment = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    try:
        return check_name(segment)
    except InvalidName:
        raise InvalidName(f"cannot take an image name from {url!r}: give one") from None


async def fetch(
    store: ImageStore,
    url: str,
    name: str,
    *,
    sha256: str | None = None,
    timeout: float = 60.0,
    progress: Callable[[int, int | None], None] | None = None,
) -> ImageInfo:
    """Download *url* as image *name*; returns the finished image."""
    import aiohttp

    check_url(url)
    expected = check_sha256(sha256)
    client_timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)
    try:
        async with (
            aiohttp.ClientSession(timeout=client_timeout, auto_decompress=False) as session,
            session.get(url, headers={"Accept-Encoding": "identity"}) as resp,
        ):
            if resp.status != 200:
                raise FetchFailed(f"{url}: HTTP {resp.status} {resp.reason or ''}".rstrip())
            total = resp.content_length
            transfer = store.begin(name, total=total, what="download")
            try:

                def moved(done: int) -> None:
                    if progress is not None:
                        progress(done, total)

                await transfer.pump(resp.content.iter_chunked(CHUNK), progress=moved)
                if total is not None and transfer.offset != total:
                    raise FetchFailed(f"{url}: got {transfer.offset} of {total} bytes")
                if expected is not None:
                    assert transfer.hasher is not None
                    got = transfer.hasher.hexdigest()
                    if got != expected:
                        raise FetchFailed(
                            f"SHA-256 mismatch: expected {expected}, the download is {got}",
                            sha256=got,
                        )
                return await transfer.finish()
            except BaseException:
                await transfer.abort()
                raise
    except aiohttp.ClientError as exc:
        raise FetchFailed(f"{url}: {exc or type(exc).__name__}") from exc
    except TimeoutError as exc:
        raise FetchFailed(f"{url}: no data for {timeout:g} s") from exc
