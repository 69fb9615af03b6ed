"""One runner for the appliance's long operations (typing, key chords, scripts; soon uploads and
URL fetches): ids, status, progress, result or error, cancel one or many, and a bounded memory
of finished jobs.

A job is a coroutine function that takes a :data:`Progress` callback. The runner owns its task,
publishes a ``job`` event (through the ``publish`` callable it was given — the appliance's
``EventBus``) when it starts, at most ``progress_interval`` apart while it reports progress, and
when it ends. It knows nothing about HTTP: the routes map a finished :class:`Job` to their own
response shapes.

Why one runner: typing and scripts each had their own ids, registry and cancel logic, and
``/api/hid/keys`` had none at all — a probe's 150 chords kept pressing for 11 s after the client
gave up, and no cancel route reached them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

log = logging.getLogger(__name__)

JobStatus = Literal["running", "done", "failed", "cancelled"]
FINISHED: frozenset[JobStatus] = frozenset({"done", "failed", "cancelled"})

Progress = Callable[..., None]
"""``progress(completed, total=None, **detail)``: how far the job got, in its own units
(characters, chords, script lines, bytes); *detail* is kind-specific and JSON-serialisable."""

Work = Callable[[Progress], Awaitable[dict[str, Any] | None]]
"""The job itself: returns its result (a JSON object) or raises :class:`JobFailed`."""

Publish = Callable[[dict[str, Any]], None]


class JobFailed(Exception):
    """Raised by a job to end as ``failed`` with *message* and extra fields for the client
    (``typed`` characters, a script ``line``...)."""

    def __init__(self, message: str, **info: Any) -> None:
        super().__init__(message)
        self.info = info


@dataclass(eq=False)
class Job:
    """One operation and what is known about it. ``as_dict`` is what clients see."""

    id: int
    kind: str
    tags: frozenset[str] = frozenset()
    status: JobStatus = "running"
    completed: int = 0
    total: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] | None = None
    error: str | None = None
    error_info: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    finished: float | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)
    on_finish: Callable[[Job], None] | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        return self.status == "running"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "job": self.id,
            "kind": self.kind,
            "status": self.status,
            "completed": self.completed,
            "total": self.total,
            "started": round(self.started, 3),
            "finished": None if self.finished is None else round(self.finished, 3),
        }
        if self.detail:
            out["detail"] = dict(self.detail)
        if self.result is not None:
            out["result"] = dict(self.result)
        if self.error is not None:
            out["error"] = self.error
            out.update({k: v for k, v in self.error_info.items() if k not in out})
        return out


class JobRunner:
    """Starts, tracks and cancels jobs; remembers the last ``keep_finished`` finished ones.

    ``keep_finished`` bounds memory on a 512 MiB board whatever a client starts (32 results of
    a few hundred bytes each); running jobs are never dropped.
    """

    def __init__(
        self,
        publish: Publish | None = None,
        *,
        keep_finished: int = 32,
        progress_interval: float = 0.1,
    ) -> None:
        self.publish = publish
        self.keep_finished = keep_finished
        # Ten events a second is smooth on a progress bar and cheap for a WebSocket on Wi-Fi.
        self.progress_interval = progress_interval
        self._ids = itertools.count(1)
        self._running: dict[int, Job] = {}
        self._finished: deque[Job] = deque(maxlen=keep_finished)

    # ------------------------------------------------------------------ queries
    def get(self, job_id: int) -> Job | None:
        job = self._running.get(job_id)
        if job is not None:
            return job
        return next((j for j in self._finished if j.id == job_id), None)

    def running(self, *, kinds: Collection[str] = (), tag: str | None = None) -> list[Job]:
        """Running jobs, oldest first, optionally only of *kinds* and/or carrying *tag*."""
        return [
            j
            for j in self._running.values()
            if (not kinds or j.kind in kinds) and (tag is None or tag in j.tags)
        ]

    def all(self) -> list[Job]:
        """Retained finished jobs then running ones, oldest first."""
        return [*self._finished, *self._running.values()]

    @property
    def tasks(self) -> dict[int, asyncio.Task[None]]:
        """The tasks of running jobs by id (empty when nothing runs)."""
        return {i: j.task for i, j in self._running.items() if j.task is not None}

    # ------------------------------------------------------------------ lifecycle
    def start(
        self,
        kind: str,
        work: Work,
        *,
        tags: Iterable[str] = (),
        total: int | None = None,
        on_finish: Callable[[Job], None] | None = None,
    ) -> Job:
        """Run *work* as a new job now. *on_finish* is called once with the finished job
        (before the final ``job`` event), e.g. to publish a route's own completion event."""
        job = Job(next(self._ids), kind, frozenset(tags), total=total, on_finish=on_finish)
        self._running[job.id] = job
        job.task = asyncio.create_task(self._run(job, work), name=f"job-{kind}-{job.id}")
        self._emit(job)
        return job

    async def _run(self, job: Job, work: Work) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()

        def progress(completed: int, total: int | None = None, **detail: Any) -> None:
            nonlocal last
            job.completed = completed
            if total is not None:
                job.total = total
            if detail:
                job.detail.update(detail)
            now = loop.time()
            if now - last >= self.progress_interval or completed == job.total:
                last = now
                self._emit(job)

        try:
            job.result = (await work(progress)) or {}
            job.status = "done"
        except JobFailed as exc:
            job.status, job.error, job.error_info = "failed", str(exc), exc.info
        except asyncio.CancelledError:
            job.status, job.error = "cancelled", "cancelled"
            raise
        except Exception as exc:
            log.exception("job %d (%s) failed", job.id, job.kind)
            job.status, job.error = "failed", f"internal error: {exc}"
        finally:
            job.finished = time.time()
            self._running.pop(job.id, None)
            self._finished.append(job)
            if job.on_finish is not None:
                try:
                    job.on_finish(job)
                except Exception:
                    log.exception("job %d: on_finish failed", job.id)
            self._emit(job)

    def _emit(self, job: Job) -> None:
        if self.publish is not None:
            self.publish({"type": "job", **job.as_dict()})

    async def wait(self, job: Job) -> Job:
        """Wait until *job* has finished (whatever way); cancelling the caller does not cancel
        the job."""
        if job.task is not None and not job.task.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(job.task)
            if not job.task.done():
                raise asyncio.CancelledError  # the caller itself was cancelled
        return job

    def cancel(self, job_id: int) -> Job | None:
        """Ask one running job to stop; the job (or None if it is not running)."""
        job = self._running.get(job_id)
        if job is None or job.task is None:
            return None
        job.task.cancel()
        return job

    def cancel_all(self, *, kinds: Collection[str] = (), tag: str | None = None) -> list[Job]:
        """Ask every running job (of *kinds* / with *tag*) to stop; those jobs."""
        jobs = self.running(kinds=kinds, tag=tag)
        for job in jobs:
            assert job.task is not None
            job.task.cancel()
        return jobs

    async def stopped(self, jobs: Iterable[Job], timeout: float = 2.0) -> None:
        """Wait (at most *timeout*) until *jobs* have run their clean-up and ended, so a caller
        that cancelled them knows nothing more will come from them."""
        tasks = [j.task for j in jobs if j.task is not None and not j.task.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    async def close(self) -> None:
        """Cancel everything and wait for it (shutdown)."""
        await self.stopped(self.cancel_all())
