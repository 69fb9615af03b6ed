"""PWAY switches (serial 19200): ``PS <n>\\r`` selects and is answered
``VGA_SWITCH_CONTROL=<n>``. No query: a front-panel change is not noticed."""

from __future__ import annotations

import re

from appliance.switch.parse import ReplyScanner, decimal_port

# The reply is a line: wait for its end (CR or LF) so "=1" + "2" split reads are not port 1.
REPLY = re.compile(rb"VGA_SWITCH_CONTROL=([0-9]{1,2})[\r\n]")


class Pway:
    name = "pway"
    baud = 19200
    min_gap = 0.05  # no published minimum
    can_query = False
    settles = False
    select_answers = True
    repeat = 1
    listen_only = False

    def select(self, port: int) -> bytes:
        return f"PS {port}\r".encode()

    def query(self) -> bytes:
        raise NotImplementedError("PWAY switches are not queried")

    def scanner(self) -> ReplyScanner:
        return ReplyScanner(REPLY, decimal_port)
