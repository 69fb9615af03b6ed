"""XH-HK4401 4-port switch (serial 19200; its control port is 5 V RS-232 with inverted logic, so
an inverting adapter is needed between it and a USB-serial dongle).

Protocol 1 selects with ``SW<n>\\r\\nAG0<n>gA``; protocol 2 with ``G0<n>gA\\x00``. The switch
has no query: it sends ``AG0<n>gA`` heartbeats naming the active port by itself, which is how
the driver learns the port (and a front-panel change) — by listening. Protocol 2 units are not
known to send heartbeats, so with protocol 2 the active port is the last one selected.
"""

from __future__ import annotations

import re

from appliance.switch.parse import ReplyScanner, decimal_port

HEARTBEAT = re.compile(rb"AG0([0-9])gA")


class Xh4401:
    name = "xh-hk4401"
    baud = 19200
    min_gap = 0.1  # no published minimum
    settles = True
    select_answers = False
    repeat = 1
    listen_only = True

    def __init__(self, protocol: int = 1) -> None:
        if protocol not in (1, 2):
            raise ValueError(f"XH-HK4401 protocol {protocol} is not 1 or 2")
        self.protocol = protocol
        self.can_query = protocol == 1

    def select(self, port: int) -> bytes:
        if not 1 <= port <= 9:
            raise ValueError(f"XH-HK4401 port {port} out of range")
        if self.protocol == 1:
            return f"SW{port}\r\nAG0{port}gA".encode()
        return f"G0{port}gA\x00".encode()

    def query(self) -> bytes:
        return b""  # nothing to send: the next heartbeat is the answer

    def scanner(self) -> ReplyScanner:
        return ReplyScanner(HEARTBEAT, decimal_port)
