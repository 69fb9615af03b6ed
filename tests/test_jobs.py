"""The job runner (appliance.jobs) alone, and through the routes that use it: typing, key chords
and scripts are jobs that every cancel route and the panic button stop, and a synchronous
request whose client goes away stops its job. "Stopped" is judged where it matters: the demo
target, which decodes the HID reports like a host, receives nothing more."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiohttp
import pytest

from appliance.jobs import Job, JobFailed, JobRunner, Progress
from hid.keynames import MAX_CHORD_KEYS, MAX_CHORD_MODIFIERS
from tests.conftest import Server

# --------------------------------------------------------------------------- the runner alone


async def test_runner_result_progress_and_events() -> None:
    events: list[dict[str, Any]] = []
    runner = JobRunner(events.append, progress_interval=0.0)

    async def work(progress: Progress) -> dict[str, Any]:
        for i in range(1, 4):
            progress(i, 3, step=f"s{i}")
            await asyncio.sleep(0)
        return {"answer": 42}

    job = runner.start("demo", work, tags=["keyboard"])
    assert runner.tasks and job.running
    await runner.wait(job)
    assert (job.status, job.result, job.completed, job.total) == ("done", {"answer": 42}, 3, 3)
    assert runner.tasks == {}
    assert [e["status"] for e in events] == ["running"] * 4 + ["done"]
    assert all(e["type"] == "job" and e["job"] == job.id and e["kind"] == "demo" for e in events)
    assert events[-1]["result"] == {"answer": 42} and events[-1]["detail"] == {"step": "s3"}


async def test_runner_failure_cancel_and_unexpected_error() -> None:
    runner = JobRunner()
    finished: list[Job] = []

    async def fails(progress: Progress) -> None:
        raise JobFailed("target offline", typed=3)

    async def hangs(progress: Progress) -> None:
        await asyncio.sleep(3600)

    async def breaks(progress: Progress) -> None:
        raise RuntimeError("bug")

    failed = await runner.wait(runner.start("a", fails, on_finish=finished.append))
    assert (failed.status, failed.error, failed.error_info) == (
        "failed",
        "target offline",
        {"typed": 3},
    )
    assert failed.as_dict()["typed"] == 3
    hung = runner.start("b", hangs, on_finish=finished.append)
    other = runner.start("c", hangs)
    await asyncio.sleep(0)
    assert runner.cancel(hung.id) is hung
    await runner.stopped([hung])
    assert hung.status == "cancelled" and other.running
    assert [j.id for j in runner.cancel_all(kinds=["c"])] == [other.id]
    await runner.stopped([other])
    broken = await runner.wait(runner.start("d", breaks))
    assert broken.status == "failed" and broken.error == "internal error: bug"
    assert finished == [failed, hung]
    assert runner.cancel(hung.id) is None  # finished: nothing to cancel


async def test_runner_keeps_a_bounded_number_of_finished_jobs() -> None:
    runner = JobRunner(keep_finished=3)

    async def quick(progress: Progress) -> dict[str, Any]:
        return {}

    jobs = [await runner.wait(runner.start("q", quick)) for _ in range(5)]
    assert [j.id for j in runner.all()] == [j.id for j in jobs[-3:]]
    assert runner.get(jobs[0].id) is None and runner.get(jobs[-1].id) is jobs[-1]


async def test_waiting_caller_cancelled_leaves_the_job_running() -> None:
    runner = JobRunner()
    gate = asyncio.Event()

    async def work(progress: Progress) -> dict[str, Any]:
        await gate.wait()
        return {}

    job = runner.start("w", work)
    waiter = asyncio.create_task(runner.wait(job))
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert job.running
    gate.set()
    assert (await runner.wait(job)).status == "done"


# --------------------------------------------------------------------------- through the API

CHORDS_150 = " ".join(["x"] * 150)  # ~15 s of chords at the default 50 ms hold + 50 ms gap


def _target(server: Server) -> Any:
    demo = server.appliance.target.machine  # type: ignore[attr-defined]
    assert demo is not None
    return demo


async def _until_reports(server: Server, more_than: int, timeout: float = 10.0) -> None:
    machine = _target(server)
    async with asyncio.timeout(timeout):
        while machine.reports <= more_than:  # noqa: ASYNC110 - the target has no report hook
            await asyncio.sleep(0.02)


async def _assert_quiet(server: Server, seconds: float = 0.6) -> None:
    """No HID report reaches the target during *seconds*."""
    machine = _target(server)
    before = machine.reports
    await asyncio.sleep(seconds)
    assert machine.reports == before, f"{machine.reports - before} reports after the stop"


@pytest.mark.parametrize(
    "route", ["/api/hid/type/cancel", "/api/scripts/cancel", "/api/hid/release"]
)
async def test_every_cancel_route_stops_running_chords(server: Server, route: str) -> None:
    machine = _target(server)
    hid = server.appliance.hid  # type: ignore[attr-defined]
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(
        base_url=server.url, headers=server.basic(), timeout=timeout
    ) as s:

        async def press() -> tuple[int, dict[str, Any]]:
            async with s.post("/api/hid/keys", json={"keys": CHORDS_150}) as r:
                return r.status, await r.json()

        pressing = asyncio.create_task(press())
        try:
            await _until_reports(server, machine.reports + 6)
            async with s.post(route) as r:
                assert r.status == 200, await r.text()
                if route != "/api/hid/release":
                    assert (await r.json())["cancelled"] == 1
            await _assert_quiet(server)
            status, body = await asyncio.wait_for(pressing, 5)
            assert status == 409 and "cancelled" in body["error"]
            assert hid.keyboard.held == {}
        finally:
            pressing.cancel()
            with contextlib.suppress(BaseException):
                await pressing


@pytest.mark.parametrize(
    ("keys", "needle"),
    [
        ("+".join(["ctrl"] * 5000), f"at most {MAX_CHORD_KEYS} keys plus {MAX_CHORD_MODIFIERS}"),
        ("a+b+c+d+e+f+g", f"at most {MAX_CHORD_KEYS} keys plus {MAX_CHORD_MODIFIERS}"),
        (" ".join(["x"] * 257), "at most 256 per request"),
    ],
    ids=["ctrl-x5000", "seven-keys", "257-chords"],
)
async def test_oversize_key_requests_are_a_clear_400(
    server: Server, keys: str, needle: str
) -> None:
    machine = _target(server)
    await asyncio.sleep(0.2)  # the start-up "nothing held" reports
    before = machine.reports
    timeout = aiohttp.ClientTimeout(total=5)
    async with (
        aiohttp.ClientSession(base_url=server.url, headers=server.basic(), timeout=timeout) as s,
        s.post("/api/hid/keys", json={"keys": keys}) as r,
    ):
        assert r.status == 400
        body = await r.json()
        assert needle in body["error"]
        assert len(body["error"]) < 200  # the request is not echoed back in full
    assert machine.reports == before


async def test_generous_chords_are_accepted(server: Server) -> None:
    """Six keys with every modifier: the most a boot keyboard report can hold."""
    chord = "ctrl+rctrl+shift+rshift+alt+altgr+win+rwin+f1+f2+f3+f4+f5+f6"
    async with (
        aiohttp.ClientSession(base_url=server.url, headers=server.basic()) as s,
        s.post("/api/hid/keys", json={"keys": chord}) as r,
    ):
        assert r.status == 200, await r.text()
        assert len((await r.json())["pressed"][0]) == 14


@pytest.mark.parametrize("what", ["keys", "type"])
async def test_client_disconnect_stops_a_synchronous_job(server: Server, what: str) -> None:
    machine = _target(server)
    path, body = (
        ("/api/hid/keys", {"keys": CHORDS_150})
        if what == "keys"
        else ("/api/hid/type", {"text": "y" * 600, "pacing_ms": 20})
    )
    async with aiohttp.ClientSession(base_url=server.url, headers=server.basic()) as s:

        async def request() -> None:
            async with s.post(path, json=body) as r:
                await r.read()

        task = asyncio.create_task(request())
        await _until_reports(server, machine.reports + 6)
        task.cancel()  # the client gives up: aiohttp closes the connection
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await asyncio.sleep(0.5)  # one disconnect poll, the release, and some slack
    await _assert_quiet(server)
    assert server.appliance.hid.keyboard.held == {}  # type: ignore[attr-defined]


async def test_keys_as_a_background_job_with_events(server: Server) -> None:
    session = await server.login()
    async with session, session.ws_connect("/api/ws") as ws:
        async with session.post("/api/hid/keys", json={"keys": "a b c", "wait": False}) as r:
            assert r.status == 202
            started = await r.json()
        job_id = started["job"]
        assert started["chords"] == 3
        events: list[dict[str, Any]] = []
        async with asyncio.timeout(10):
            while not events or events[-1]["status"] == "running":
                msg = await ws.receive_json()
                if msg["type"] == "job" and msg["job"] == job_id:
                    events.append(msg)
        assert events[0]["kind"] == "keys" and events[0]["total"] == 3
        assert events[-1]["status"] == "done" and events[-1]["completed"] == 3
        assert events[-1]["result"]["pressed"] == [["KeyA"], ["KeyB"], ["KeyC"]]
        async with session.get(f"/api/jobs/{job_id}") as r:
            assert r.status == 200
            assert (await r.json())["status"] == "done"
        async with session.get("/api/jobs") as r:
            assert job_id in [j["job"] for j in (await r.json())["jobs"]]
        async with session.get("/api/jobs/999999") as r:
            assert r.status == 404


async def test_cancel_one_job_by_id(server: Server) -> None:
    async with aiohttp.ClientSession(base_url=server.url, headers=server.basic()) as s:
        async with s.post("/api/hid/keys", json={"keys": CHORDS_150, "wait": False}) as r:
            job_id = (await r.json())["job"]
        await _until_reports(server, _target(server).reports + 4)
        async with s.post(f"/api/jobs/{job_id}/cancel") as r:
            assert (await r.json())["cancelled"] == 1
        await _assert_quiet(server)
        async with s.get(f"/api/jobs/{job_id}") as r:
            assert (await r.json())["status"] == "cancelled"
