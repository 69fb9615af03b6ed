"""Extron switchers (serial 9600, SIS): ``<n>!`` selects input n and is answered ``Chn<n>``.

The reply confirms the select; there is no query here, so a front-panel change is not noticed.
"""

from __future__ import annotations

import re

from appliance.switch.parse import ReplyScanner, decimal_port

# Replies end with CR LF: waiting for it keeps "Chn1" + "2" (split reads) from reading as port 1.
REPLY = re.compile(rb"Chn([0-9]{1,2})\r?\n")


class Extron:
    name = "extron"
    baud = 9600
    min_gap = 0.05  # no published minimum
    can_query = False
    settles = False
    select_answers = True
    repeat = 1
    listen_only = False

    def select(self, port: int) -> bytes:
        return f"{port}!".encode()

    def query(self) -> bytes:
        raise NotImplementedError("Extron switches are not queried")

    def scanner(self) -> ReplyScanner:
        return ReplyScanner(REPLY, decimal_port)
