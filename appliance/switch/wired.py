"""WiredSwitch: any :class:`~appliance.switch.wire.WireProtocol` over a serial or TCP link."""

from __future__ import annotations

from appliance.switch.link import Link
from appliance.switch.wire import WireProtocol


class WiredSwitch:
    """A switch with a control port. One command at a time (the controller's lock sees to it)."""

    def __init__(self, protocol: WireProtocol, link: Link, reply_timeout: float) -> None:
        self.protocol = protocol
        self.link = link
        self.reply_timeout = reply_timeout
        self.name = protocol.name
        self.can_query = protocol.can_query
        self.settles = protocol.settles
        self.min_gap = protocol.min_gap

    async def select(self, port: int) -> int | None:
        frame = self.protocol.select(port)
        await self.link.open()
        self.link.forget()
        for _ in range(self.protocol.repeat):
            await self.link.send(frame)
        if self.protocol.select_answers:
            return await self.link.next_port(self.reply_timeout)
        return None

    async def query(self) -> int:
        await self.link.open()
        self.link.forget()
        if self.protocol.listen_only:
            # The answer is the switch's next heartbeat; they come about once a second, so
            # allow a few reply times for one.
            return await self.link.next_port(3 * self.reply_timeout)
        await self.link.send(self.protocol.query())
        return await self.link.next_port(self.reply_timeout)

    async def close(self) -> None:
        await self.link.close()
