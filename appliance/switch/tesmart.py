"""TESmart (serial 9600 8N1, or TCP port 5000): binary frames ``AA BB 03 <cmd> <val> EE``.

Select port n (1-based) is ``AA BB 03 01 n EE``; the query ``AA BB 03 10 00 EE`` is answered by
``AA BB 03 11 p EE`` with p **0-based**. The unit wants at least 1 s between commands and takes
about 1 s to switch, so a query sooner than that may still name the old port.
"""

from __future__ import annotations

import re

from appliance.switch.parse import ReplyScanner

REPLY = re.compile(rb"\xaa\xbb\x03\x11(.)\xee", re.DOTALL)


def select_frame(port: int) -> bytes:
    if not 1 <= port <= 255:
        raise ValueError(f"TESmart port {port} out of range")
    return bytes([0xAA, 0xBB, 0x03, 0x01, port, 0xEE])


QUERY = bytes([0xAA, 0xBB, 0x03, 0x10, 0x00, 0xEE])


def reply_port(match: re.Match[bytes]) -> int:
    return match[1][0] + 1  # the reply counts from 0, everything above the wire from 1


class Tesmart:
    name = "tesmart"
    baud = 9600
    min_gap = 1.0
    can_query = True
    settles = True
    select_answers = False
    repeat = 1
    listen_only = False

    def select(self, port: int) -> bytes:
        return select_frame(port)

    def query(self) -> bytes:
        return QUERY

    def scanner(self) -> ReplyScanner:
        return ReplyScanner(REPLY, reply_port)
