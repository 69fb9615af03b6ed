"""``GET /api/metrics``: the appliance's state in the Prometheus text format.

Authenticated like every route (a scraper uses an API token: ``Authorization: Bearer``).

prometheus-client is imported on the first scrape, not at start-up (:mod:`.metrics_collect`):
measured on the dev machine, importing it after the service's own modules costs 16-37 ms and
0.55 MB RSS (67-94 ms alone, mostly its exposition's http.server/wsgiref), which an appliance nobody
scrapes should not pay (512 MB board, start-up counted).

The registry is per application (no global registry, so two apps in one process — the tests —
never share metrics) and holds one collector that reads the appliance at scrape time: nothing is
updated on the hot paths. Other subsystems add their own metrics with :func:`add_source` (the KVM
switch: its active port), a function returning metric families built at scrape time.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web

from appliance.api.openapi import Operation, describe, ok, string

routes = web.RouteTableDef()

COLLECT = "appliance.api.metrics_collect"

MetricSource = Callable[[web.Application], Iterable[Any]]
"""Called at scrape time with the app; yields ``prometheus_client.core`` metric families (the
source imports prometheus_client itself, inside the function, so it too loads only on a scrape)."""

METRIC_SOURCES: web.AppKey[list[MetricSource]] = web.AppKey("ipkvm_metric_sources", list)
_REGISTRY: web.AppKey[list[Any]] = web.AppKey("ipkvm_metrics_registry", list)


def setup(app: web.Application) -> None:
    app[METRIC_SOURCES] = []
    app[_REGISTRY] = []  # holds the CollectorRegistry once the first scrape has built it
    app.add_routes(routes)


def add_source(app: web.Application, source: MetricSource) -> None:
    """Add metrics of another subsystem to every scrape."""
    app[METRIC_SOURCES].append(source)


@routes.get("/api/metrics")
@describe(
    Operation(
        permission="view",
        summary="Prometheus metrics (text exposition format)",
        tag="state",
        replies={
            200: ok(
                "metric families of the appliance",
                string("Prometheus text format"),
                media_type="text/plain",
            )
        },
    )
)
async def metrics(request: web.Request) -> web.Response:
    holder = request.app[_REGISTRY]
    if not holder:
        # First scrape: the import runs in a worker thread so the loop keeps serving meanwhile.
        loop = asyncio.get_running_loop()
        module = await loop.run_in_executor(None, importlib.import_module, COLLECT)
        if not holder:  # another first scrape may have finished meanwhile
            holder.append(module.registry(request.app))
    collect = importlib.import_module(COLLECT)  # loaded by now: a dictionary look-up
    body: bytes = collect.exposition(holder[0])
    return web.Response(body=body, headers={"Content-Type": collect.CONTENT_TYPE})
