"""ezCoo 4-port switches (serial 115200, ASCII lines).

Two firmware generations: ``SET OUT1 VS IN<n>`` / ``GET OUT1 VS`` and the newer ``EZS OUT1 VS
IN<n>`` / ``EZG OUT1 VS``. The query is answered ``OUT1 VS <n>`` (``OUT1 VS IN<n>`` is accepted
too), or on some firmwares with a short code: ``V0CS``, ``V18S``, ``V5ES``, ``V08S`` for ports
1-4. Firmware bugs drop single commands, so every command goes out twice (the common practice).
"""

from __future__ import annotations

import re
from typing import Literal

from appliance.switch.parse import ReplyScanner

SHORT_CODES = {b"0C": 1, b"18": 2, b"5E": 3, b"08": 4}
REPLY = re.compile(rb"OUT1 VS (?:IN)?([0-9]{1,2})[\r\n]|V(0C|18|5E|08)S")


def reply_port(match: re.Match[bytes]) -> int | None:
    if match[2] is not None:
        return SHORT_CODES[match[2]]
    port = int(match[1])
    return port if port >= 1 else None


class Ezcoo:
    name = "ezcoo"
    baud = 115200
    min_gap = 0.1  # no published minimum; two copies of a command need a moment apart
    can_query = True
    settles = True
    select_answers = False
    repeat = 2
    listen_only = False

    def __init__(self, commands: Literal["set", "ezs"] = "set") -> None:
        self.commands = commands

    def select(self, port: int) -> bytes:
        verb = "EZS" if self.commands == "ezs" else "SET"
        return f"{verb} OUT1 VS IN{port}\n".encode()

    def query(self) -> bytes:
        return b"EZG OUT1 VS\n" if self.commands == "ezs" else b"GET OUT1 VS\n"

    def scanner(self) -> ReplyScanner:
        return ReplyScanner(REPLY, reply_port)
