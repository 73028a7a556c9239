"""``/metrics``: the figures of ``kit.metrics`` in Prometheus's text format, and the queue depths
read from the database as they are scraped.

Requests are counted by their route's template (``/v1/teams/{team_id}/seats``), never the raw
path: some paths carry capability tokens, and raw paths would make a series per id. The request
log middleware calls :func:`record_request` as each answer ends, so counting adds no layer.

Queue depths are read at scrape time (two counts over partial indexes, every scrape interval)
rather than by the worker, so they are right even while no worker runs.

``PINTUAN_METRICS_TOKEN``, when set, must come as ``Authorization: Bearer <token>``; unset,
``/metrics`` is open, for a scraper on loopback or a private network (keep the path off the
public proxy).
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterator

import anyio.to_thread
from fastapi import Request, Response
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.types import Scope

from pintuan.errors import Unauthenticated
from pintuan.kit.db import Database
from pintuan.kit.metrics import REQUEST_SECONDS, REQUESTS
from pintuan.kit.rawsql import RawTx, Sql, raw_tx
from pintuan.kit.routing import Router
from pintuan.services import ServicesDep

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
UNMATCHED = "(unmatched)"

router = Router(tags=["operations"])


# The labelled children by (method, route, status): ``labels()`` validates and locks on every
# call, several times the cost of the increment itself. The routes are a fixed set, so this stays
# small.
_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}


def record_request(scope: Scope, status: int, seconds: float) -> None:
    """Count one answered request by method, route template and status, and time it."""
    route = getattr(scope.get("route"), "path", None) or UNMATCHED
    key = (scope["method"], route, status)
    children = _children.get(key)
    if children is None:
        children = _children[key] = (
            REQUESTS.labels(key[0], route, str(status)),
            REQUEST_SECONDS.labels(key[0], route),
        )
    children[0].inc()
    children[1].observe(seconds)


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, services: ServicesDep) -> Response:
    """Every figure of this process (or of all processes sharing ``PROMETHEUS_MULTIPROC_DIR``)
    and the queue depths, for Prometheus to scrape."""
    token = services.settings.metrics_token
    if token is not None:
        given = request.headers.get("authorization", "").encode()
        expected = f"Bearer {token.get_secret_value()}".encode()
        if not hmac.compare_digest(given, expected):
            raise Unauthenticated(
                "The metrics need the bearer token set in PINTUAN_METRICS_TOKEN.",
                code="unauthenticated",
                headers={"WWW-Authenticate": "Bearer"},
            )
    body = await anyio.to_thread.run_sync(scrape, services.db)
    return Response(body, media_type=CONTENT_TYPE)


def scrape(db: Database) -> bytes:
    """The text Prometheus reads: the counters, histograms and gauges, then the queue depths."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        figures = generate_latest(registry)
    else:
        figures = generate_latest(REGISTRY)
    depths = CollectorRegistry(auto_describe=False)
    depths.register(QueueDepths(db))
    return figures + generate_latest(depths)


OUTBOX_WAITING = Sql("SELECT COUNT(*) FROM outbox_events WHERE dispatched_at IS NULL")
CALLS_OWED = Sql("""
    SELECT pending_action AS action, COUNT(*) AS owed FROM payments
    WHERE pending_action IS NOT NULL GROUP BY pending_action
""")


def _action_count(*, action: str, owed: int) -> tuple[str, int]:
    return action, owed


class QueueDepths(Collector):
    """Work waiting in the database, counted as it is scraped."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[GaugeMetricFamily]:
        outbox, owed = self.db.run_sync(lambda s: _depths(raw_tx(s)), write=False)
        yield GaugeMetricFamily(
            "pintuan_outbox_waiting",
            "Outbox events not yet dispatched by the worker",
            value=float(outbox),
        )
        calls = GaugeMetricFamily(
            "pintuan_payments_pending_action",
            "Payments that owe a provider call (capture, void, refund, poll), by action",
            labels=["action"],
        )
        for action, count in owed:
            calls.add_metric([action], float(count))
        yield calls


def _depths(tx: RawTx) -> tuple[int, list[tuple[str, int]]]:
    return int(tx.scalar(OUTBOX_WAITING) or 0), tx.all_as(_action_count, CALLS_OWED)
