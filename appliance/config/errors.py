"""The one exception every configuration problem becomes.

A separate module so the value checks, the option walker and the loader can all raise it without
importing each other.
"""

from __future__ import annotations


class ConfigError(Exception):
    """A configuration problem. ``key`` is the dotted key at fault (None: the file as a whole)."""

    def __init__(self, key: str | None, problem: str, *, name_key: bool = True) -> None:
        super().__init__(f"{key}: {problem}" if key and name_key else problem)
        self.key = key
        self.problem = problem
