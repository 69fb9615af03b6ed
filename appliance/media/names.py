"""Image names: what a client may call an image in the store.

A name is one path component the store can use as a file name as it is: no separators, no NUL or
control characters, no leading dot (the store keeps its own bookkeeping — partial uploads,
checksums — in dot files, and ``.``/``..`` are traversal), at most :data:`MAX_NAME` bytes of
UTF-8 (ext4's limit is 255; the store adds a prefix and suffix to partial files).
"""

from __future__ import annotations

from appliance.media.errors import InvalidName

MAX_NAME = 200


def check_name(name: str) -> str:
    """*name* when it is a valid image name, else :class:`InvalidName` saying why."""
    if not name:
        raise InvalidName("an image name must not be empty")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME:
        raise InvalidName(f"an image name is at most {MAX_NAME} bytes")
    if "/" in name or "\\" in name:
        raise InvalidName("an image name must not contain / or \\")
    if name.startswith("."):
        raise InvalidName("an image name must not start with a dot")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise InvalidName("an image name must not contain control characters")
    if name != name.strip():
        raise InvalidName("an image name must not start or end with white space")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidName("an image name must be valid UTF-8") from None
    return name
