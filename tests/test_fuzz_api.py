"""Fuzz the running service with schemathesis, from the description it serves itself.

The real server (``tests.conftest.start_server``: the way ``ipkvm serve`` starts it) runs with the
demo target on 127.0.0.1 in a thread of its own — schemathesis calls it with blocking ``requests``
— and schemathesis generates valid and invalid requests for every operation in
``/api/openapi.json`` (fetched with HTTP Basic). Each answer must not be a 5xx, and its status,
content type and body must be the ones the description gives. Afterwards the service must still
answer, hold no key, and have logged no traceback.

What is left out, and why:
- ``POST /api/auth/logout`` (it would end the session under test; here it ends nothing, but it is
  the one route whose job is ending access) and the MJPEG stream (it never ends by design, so a
  client that reads the whole body waits forever; its query checks are the snapshot's).
- Redfish resets that hold the power button for seconds (ForceOff, PowerCycle) are sent as their
  short-press counterparts (``SLOW_RESETS``): each would otherwise cost six seconds of button.
  A URL the fuzzer gives Redfish's ``InsertMedia`` is replaced by one on a closed local port:
  the appliance would otherwise try to download from wherever it names.
- Requests are authenticated with an API token, not Basic: fuzzing ``/api/auth/login`` fails
  logins from 127.0.0.1 on purpose, and the login throttle would then (rightly) refuse the
  Basic checks of every later request with 429.

Bounds, so the run takes about a minute on two cores: a few examples per operation, waits and
typing kept short (``_bounded``: a screen wait up to 5 minutes or 1000 ms per key stroke is valid,
but fuzzing it would only measure the clock), and power switches undone after each call (a target
switched off answers typing with 503, rightly, which would hide everything else).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import Server, start_server

T = TypeVar("T")
pytestmark = pytest.mark.slow

EXAMPLES = 40
"""Generated examples per operation (explicit ones and the coverage phase come on top)."""
REQUEST_TIMEOUT = 15.0


LOGINS = {("POST", "/api/auth/login"), ("POST", "/redfish/v1/SessionService/Sessions")}


def authenticated(ctx: Any, response: Any, case: schemathesis.Case) -> None:
    """Every private route documents 401, so a fuzz run whose credentials failed would pass
    the other checks while testing nothing: a 401 is a failure here (the logins' own excepted)."""
    if response.status_code == 401 and (case.method.upper(), case.path) not in LOGINS:
        raise AssertionError(f"401 from {case.method} {case.path}: {response.text[:200]}")


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    authenticated,
]
EXCLUDED = ("/api/auth/logout", "/api/stream.mjpeg")
REDFISH_RESET = "/redfish/v1/Systems/{system_id}/Actions/ComputerSystem.Reset"
POWER_PATHS = ("/api/power", "/api/demo/power", REDFISH_RESET)
SLOW_RESETS = {"ForceOff": "GracefulShutdown", "PowerCycle": "ForceRestart"}
"""Redfish resets that hold the power button for seconds (the ATX override), and the short
press fuzzed in their place."""
CLOSED_PORT_URL = "http://127.0.0.1:1/fuzz.iso"


class LogRecords(logging.Handler):
    """Every record with a traceback or at ERROR and above, from any logger."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or record.levelno >= logging.ERROR:
            self.records.append(record)

    def report(self) -> str:
        return "\n".join(self.format(r) for r in self.records)


@dataclass
class ServiceThread:
    """The appliance served from an event loop in a thread of its own."""

    tmp_path: Path
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    server: Server | None = None
    token: str = ""
    _runner: Any = None
    _thread: threading.Thread | None = None

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> Server:
        self._thread = threading.Thread(target=self.loop.run_forever, name="appliance", daemon=True)
        self._thread.start()
        self.server, self._runner = self.run(start_server(self.tmp_path))
        self.token = self.run(self._create_token())
        return self.server

    async def _create_token(self) -> str:
        from appliance.api.auth import AUTH_STORE

        assert self.server is not None
        return self.server.app[AUTH_STORE].create_token("fuzz")[1]

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        assert self.server is not None
        return requests.request(
            method, self.server.url + path, headers=self.auth, timeout=REQUEST_TIMEOUT, **kwargs
        )

    def stop(self) -> None:
        if self._runner is not None:
            self.run(self._runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceThread]:
    svc = ServiceThread(tmp_path_factory.mktemp("fuzz"))
    svc.start()
    try:
        yield svc
    finally:
        svc.stop()


@pytest.fixture(scope="module")
def server_log() -> Iterator[LogRecords]:
    handler = LogRecords()
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


@pytest.fixture(scope="module")
def api_schema(service: ServiceThread, server_log: LogRecords) -> Any:
    assert service.server is not None
    return schemathesis.openapi.from_url(
        service.server.url + "/api/openapi.json", headers=service.server.basic(), timeout=10
    )


def _bounded(case: schemathesis.Case) -> None:
    """Keep valid-but-slow requests short (see the module docstring)."""
    body = case.body
    if not isinstance(body, dict):
        return
    if case.path == REDFISH_RESET and body.get("ResetType") in SLOW_RESETS:
        body["ResetType"] = SLOW_RESETS[body["ResetType"]]
    image = body.get("Image")
    if isinstance(image, str) and image.lower().startswith(("http://", "https://")):
        body["Image"] = CLOSED_PORT_URL  # a download that fails at once, not one from anywhere
    if case.path == "/api/screen/wait":
        timeout = body.get("timeout", 30.0)  # 30 s: the default when the field is absent
        if isinstance(timeout, int | float) and not isinstance(timeout, bool) and timeout > 0.2:
            body["timeout"] = 0.2
    pacing = body.get("pacing_ms")
    if isinstance(pacing, int | float) and not isinstance(pacing, bool) and pacing > 1:
        body["pacing_ms"] = 1


def _fuzz_operation(
    operation: Any, mode: GenerationMode, service: ServiceThread, statuses: Counter[int]
) -> None:
    """Hypothesis over one operation in one mode; raises the checks' failures."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        derandomize=True,
        database=None,
    )
    def fuzz(case: schemathesis.Case) -> None:
        _bounded(case)
        try:
            response = case.call_and_validate(
                headers=service.auth, checks=CHECKS, timeout=REQUEST_TIMEOUT
            )
            statuses[response.status_code] += 1
        finally:
            if case.path in POWER_PATHS and case.method.upper() == "POST":
                switched = service.api("POST", "/api/demo/power", json={"on": True})
                assert switched.status_code == 200

    fuzz()


def _describe(exc: BaseException) -> str:
    parts = [str(exc)]
    if isinstance(exc, BaseExceptionGroup):
        parts += [str(e) for e in exc.exceptions]
    return "\n".join(parts)


def test_fuzz(api_schema: Any, service: ServiceThread) -> None:
    """Every operation, valid and invalid requests; all failures are reported together."""
    failures: list[str] = []
    tested: list[str] = []
    statuses: Counter[int] = Counter()
    begun = time.monotonic()
    for result in api_schema.get_all_operations():
        operation = result.ok()  # an operation the description cannot express fails here
        if operation.path in EXCLUDED:
            continue
        tested.append(operation.label)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            started = time.monotonic()
            try:
                _fuzz_operation(operation, mode, service, statuses)
            except Unsatisfiable:
                continue  # nothing to make invalid (no body, no parameters)
            except (Exception, BaseExceptionGroup) as exc:  # schemathesis' FailureGroup
                failures.append(f"{operation.label} ({mode.value}):\n{_describe(exc)}"[:3000])
            print(f"{time.monotonic() - started:6.2f} s  {operation.label} {mode.value}")
    print(
        f"{len(tested)} operations, {sum(statuses.values())} requests in "
        f"{time.monotonic() - begun:.1f} s; statuses {dict(sorted(statuses.items()))}"
    )
    assert len(tested) >= 25, tested
    assert not failures, "\n\n".join(failures)


def test_after_fuzzing_the_service_is_well(service: ServiceThread, server_log: LogRecords) -> None:
    """Runs after ``test_fuzz`` (file order): the service answers, the keyboard is let go of
    once every job has ended and the REST client's own keys (``/api/hid/key`` holds keys by
    design) are released, and nothing was logged with a traceback."""
    assert service.api("GET", "/api/health").json() == {"status": "ok"}
    service.api("POST", "/api/hid/type/cancel")  # jobs still typing (wait: false)
    deadline = time.monotonic() + 10
    while any(j["status"] == "running" for j in service.api("GET", "/api/jobs").json()["jobs"]):
        assert time.monotonic() < deadline, "jobs still running"
        time.sleep(0.1)
    # What the REST client holds on purpose: release it the way a client would, key by key.
    for code in service.api("GET", "/api/state").json()["hid"]["keys_held"]:
        service.api("POST", "/api/hid/key", json={"code": code, "down": False})
    state = service.api("GET", "/api/state").json()
    assert state["hid"]["keys_held"] == [], "a key is still held"
    assert state["hid"]["queued"] == 0
    demo = service.api("GET", "/api/demo/state").json()
    assert demo["power"] == "on"
    assert not server_log.records, server_log.report()
