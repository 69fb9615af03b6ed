"""Admission control for password checks: a few scrypt runs at a time, a short queue, and load
shed (before any scrypt runs) beyond that.

Why: scrypt costs ~50 ms and 16 MiB on the board and runs in a 2-thread pool. With no bound, a
probe's 300 wrong HTTP Basic guesses from 100 addresses queued 300 scrypt runs in that pool, and
a correct login from another address waited behind all of them: 6.9 s. The per-address
:class:`appliance.auth.LoginThrottle` cannot help there (each address had only its 3 free tries).

So at most ``slots`` checks run and ``queue`` wait; a newcomer beyond that is refused at once
(the caller answers 503 with ``Retry-After``), unless it is less suspicious than the most
suspicious waiter, which is then refused instead. Suspicion is a number from the caller (the
throttle's failures, checks in flight and refusals for the address), read when the choice is
made, so an address that keeps sending drops behind while it waits. A client that never failed
therefore gets in ahead of a flood from addresses that did, and waits at most
``(slots + queue) / slots`` scrypt runs. Standard library only; one event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

Suspicion = Callable[[], int]


class Overloaded(Exception):
    """Too many password checks are queued: retry after ``retry_after`` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"too many password checks in progress; retry in {retry_after:g} s")
        self.retry_after = retry_after


@dataclass(eq=False)
class _Waiter:
    suspicion: Suspicion
    seq: int
    future: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def rank(self) -> tuple[int, int]:
        """Lower is admitted first: least suspicious, then first come."""
        return self.suspicion(), self.seq


class PasswordCheckGate:
    """``async with gate.admit(suspicion): <scrypt>`` — raises :class:`Overloaded` instead of
    queueing more than ``queue`` checks behind the ``slots`` running ones."""

    def __init__(self, slots: int = 2, queue: int = 6, retry_after: float = 1.0) -> None:
        if slots < 1 or queue < 0:
            raise ValueError("slots must be at least 1 and queue at least 0")
        self.slots = slots
        self.queue = queue
        self.retry_after = retry_after
        self.active = 0
        self.shed = 0  # checks refused so far, for logs and tests
        self._waiters: list[_Waiter] = []
        self._seq = itertools.count()

    @property
    def waiting(self) -> int:
        return len(self._live())

    @contextlib.asynccontextmanager
    async def admit(self, suspicion: Suspicion) -> AsyncIterator[None]:
        if self.active < self.slots and not self._waiters:
            self.active += 1
        else:
            await self._wait_turn(_Waiter(suspicion, next(self._seq)))
        try:
            yield
        finally:
            self._release()

    def _live(self) -> list[_Waiter]:
        """The waiters still waiting (a cancelled one leaves the list when its task resumes)."""
        self._waiters = [w for w in self._waiters if not w.future.done()]
        return self._waiters

    async def _wait_turn(self, waiter: _Waiter) -> None:
        if len(self._live()) >= self.queue:
            worst = max(self._waiters, key=_Waiter.rank, default=None)
            if worst is None or worst.rank() <= waiter.rank():
                self.shed += 1
                raise Overloaded(self.retry_after)
            self._waiters.remove(worst)
            self.shed += 1
            worst.future.set_exception(Overloaded(self.retry_after))
        self._waiters.append(waiter)
        try:
            await waiter.future
        except asyncio.CancelledError:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            elif (
                waiter.future.done()
                and not waiter.future.cancelled()
                and waiter.future.exception() is None
            ):
                self._release()  # handed a slot as we were cancelled: pass it on
            raise

    def _release(self) -> None:
        """A check finished: its slot goes to the best waiter, else becomes free."""
        if self._live():
            best = min(self._waiters, key=_Waiter.rank)
            self._waiters.remove(best)
            best.future.set_result(None)  # the slot is handed over: ``active`` stays
            return
        self.active -= 1
