"""What a derived option may be derived from.

Kept to the few values that really are inputs ("auto" follows the target kind, the TLS files
default into the state directory) and typed, so a ``derive`` function is checked by mypy like any
other code. A new dependency is a new field here, which makes it visible in review.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, NamedTuple

TargetKind = Literal["demo", "hardware", "qemu"]
"""The closed set of ``target.kind`` (declared here, where derived options read it, so that
``target.py`` → ``options.py`` → ``context.py`` stays free of cycles)."""


class Context(NamedTuple):
    """The inputs of derived options (a NamedTuple: cheaper than a dataclass at import)."""

    target: TargetKind
    """``target.kind`` as validated."""
    state_dir: Path
    """``server.state_dir`` as validated."""
