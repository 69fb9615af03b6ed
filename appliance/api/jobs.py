"""HTTP side of the job runner (:mod:`appliance.jobs`): waiting for a job on behalf of a request,
stopping keyboard jobs, and ``GET /api/jobs``, ``GET /api/jobs/{id}``,
``POST /api/jobs/{id}/cancel``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection

from aiohttp import web

from appliance.api.httpjson import fail, json_response
from appliance.api.openapi import JOB_REF, Operation, Param, array, describe, integer, obj, ok
from appliance.jobs import Job
from appliance.runtime import APPLIANCE, Appliance
from hid.controller import Device

routes = web.RouteTableDef()
_JOB_ID = Param("job", integer(), "a job id (the `job` field of an answer)", where="path")

KEYBOARD = "keyboard"
"""Tag of every job that presses keys (typing, chords, scripts): the panic button stops them."""

# aiohttp (handler_cancellation off, its default) does not cancel a handler whose client went
# away, and has no public "disconnected" hook; the transport going away is the sign. Polling it
# ten times a second costs nothing next to a key report and stops a job within 0.1 s.
_DISCONNECT_POLL = 0.1
# Bounds for a cancel route: a job's clean-up is a key release, a few ms on a live target.
_STOP_TIMEOUT = 2.0
_DRAIN_TIMEOUT = 2.0


def _gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def wait_for_job(request: web.Request, appliance: Appliance, job: Job) -> Job:
    """Wait until *job* finishes for a synchronous (``wait``) request. The request owns the
    job: when its client disconnects the job is cancelled, since nobody will read the result
    and keys must not go on being pressed for nobody."""
    runner = appliance.jobs
    waiter = asyncio.ensure_future(runner.wait(job))
    try:
        while not waiter.done():
            await asyncio.wait({waiter}, timeout=_DISCONNECT_POLL)
            if not waiter.done() and _gone(request):
                runner.cancel(job.id)
                await runner.stopped([job], _STOP_TIMEOUT)
                raise asyncio.CancelledError
    finally:
        waiter.cancel()
    return job


async def stop_jobs(
    appliance: Appliance, *, kinds: Collection[str] = (), tag: str | None = None
) -> int:
    """Cancel the matching jobs and return once they have ended and their key releases have
    reached the target, so nothing they queued arrives after the caller's answer."""
    jobs = appliance.jobs.cancel_all(kinds=kinds, tag=tag)
    await appliance.jobs.stopped(jobs, _STOP_TIMEOUT)
    if jobs:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_DRAIN_TIMEOUT):
                await appliance.hid.drain(Device.KEYBOARD)
    return len(jobs)


def _job_id(request: web.Request) -> int:
    try:
        return int(request.match_info["job"])
    except ValueError:
        fail(400, "job ids are integers")


@routes.get("/api/jobs")
@describe(
    Operation(
        permission="view",
        summary="Running jobs and the last 32 finished ones, oldest first",
        tag="jobs",
        replies={200: ok("the jobs", obj(("jobs",), jobs=array(JOB_REF)))},
    )
)
async def list_jobs(request: web.Request) -> web.Response:
    return json_response({"jobs": [j.as_dict() for j in request.app[APPLIANCE].jobs.all()]})


@routes.get("/api/jobs/{job}")
@describe(
    Operation(
        permission="view",
        summary="One job",
        tag="jobs",
        params=(_JOB_ID,),
        replies={200: ok("the job", JOB_REF)},
        errors={400: "the id is not an integer", 404: "unknown, or finished and forgotten"},
    )
)
async def get_job(request: web.Request) -> web.Response:
    job = request.app[APPLIANCE].jobs.get(_job_id(request))
    if job is None:
        fail(404, "no such job (finished jobs are kept for a while, then forgotten)")
    return json_response(job.as_dict())


@routes.post("/api/jobs/{job}/cancel")
@describe(
    Operation(
        permission="input",
        summary="Cancel one job",
        description="Answers once it has ended and its key releases reached the target.",
        tag="jobs",
        params=(_JOB_ID,),
        replies={
            200: ok(
                "1 when cancelled, 0 when it had already finished",
                obj(("cancelled",), cancelled=integer(0, 1)),
            )
        },
        errors={400: "the id is not an integer", 404: "no such job"},
    )
)
async def cancel_job(request: web.Request) -> web.Response:
    appliance = request.app[APPLIANCE]
    job_id = _job_id(request)
    job = appliance.jobs.cancel(job_id)
    if job is None:
        if appliance.jobs.get(job_id) is None:
            fail(404, "no such job")
        return json_response({"cancelled": 0})
    await appliance.jobs.stopped([job], _STOP_TIMEOUT)
    if KEYBOARD in job.tags:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_DRAIN_TIMEOUT):
                await appliance.hid.drain(Device.KEYBOARD)
    return json_response({"cancelled": 1})
