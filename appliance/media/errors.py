"""What can go wrong with an image, each with the HTTP status the API answers it with.

The status lives on the exception because the same failure reaches three front ends (REST, the
CLI through REST, Redfish) that must agree on it; the store itself never talks HTTP.
"""

from __future__ import annotations

from typing import Any


class MediaError(Exception):
    """A refused media operation: ``status`` is the HTTP answer, ``info`` extra JSON fields."""

    status = 400

    def __init__(self, message: str, **info: Any) -> None:
        super().__init__(message)
        self.info = info


class InvalidName(MediaError):
    status = 400


class BadRange(MediaError):
    """A ``Content-Range`` that does not parse or does not fit the image."""

    status = 400


class ImageNotFound(MediaError):
    status = 404


class ImageBusy(MediaError):
    """Attached, being uploaded or downloaded, or already there."""

    status = 409


class TooLarge(MediaError):
    status = 413


class NoSpace(MediaError):
    status = 507
