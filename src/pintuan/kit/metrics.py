"""The figures Pintuan exports to Prometheus, defined once, where every layer may count them.

Features count here because ``kit`` sits below them; the application serves them at
``/metrics`` (``ops.metrics``), and the worker sets its own. Labels take values from short,
fixed sets only (route templates, refusal codes, provider and action names): a label with an
id, a path or a token in it would make a new series per request.

Counting costs an increment (about a hundred nanoseconds); on the join's path the labelled
children are looked up once, here, not per join.

With several processes on one host, set ``PROMETHEUS_MULTIPROC_DIR`` (an empty directory, wiped
before the processes start) for each of them: prometheus-client then keeps these figures in
files there and any process's ``/metrics`` answers for all of them. Without it, each process
answers for itself and each must be scraped.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from prometheus_client import Counter, Gauge, Histogram

from pintuan.errors import AppError

P = ParamSpec("P")
R = TypeVar("R")

REQUESTS = Counter(
    "pintuan_http_requests",
    "HTTP requests answered, by method, route template (never the raw path) and status",
    ["method", "route", "status"],
)
REQUEST_SECONDS = Histogram(
    "pintuan_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by method and route template",
    ["method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
GROUP_COMMIT_WRITES = Histogram(
    "pintuan_sqlite_group_commit_writes",
    "Writes per transaction on SQLite's event loop (kit.db runs those of one turn together)",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
JOINS = Counter(
    "pintuan_joins", "Seats taken: a team started (its leader's seat) or joined", ["kind"]
)
JOIN_REFUSALS = Counter(
    "pintuan_join_refusals",
    "Starts and joins refused, by problem code (team_full, sold_out, limit_reached, ...)",
    ["code"],
)
TEAM_OUTCOMES = Counter("pintuan_team_outcomes", "Teams that ended, by how", ["outcome"])
TEAMS_SUCCEEDED = TEAM_OUTCOMES.labels(outcome="succeeded")
TEAMS_FAILED = TEAM_OUTCOMES.labels(outcome="failed")
PROVIDER_CALL_FAILURES = Counter(
    "pintuan_provider_call_failures",
    "Provider calls (capture, void, refund, poll) that failed and will be retried",
    ["provider", "action"],
)
WEBHOOK_LAG = Histogram(
    "pintuan_webhook_lag_seconds",
    "Time from opening a checkout to applying the provider's news of it (a notification or "
    "the worker's poll); providers do not all say when their event happened, so the checkout "
    "is the clock",
    ["provider"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200),
)
SWEEP_LAG = Gauge(
    "pintuan_sweep_lag_seconds",
    "How long the oldest due work has waited past its due time, as the worker saw it at its "
    "last tick: held seats past their hold, forming teams past their window, provider calls",
    ["work"],
    multiprocess_mode="mostrecent",
)
WORKER_TASK_FAILURES = Counter(
    "pintuan_worker_task_failures",
    "Worker tasks that raised; the task backs off and the others run on",
    ["task"],
)


def counts_joins(kind: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Count each call of the decorated start or join: a seat taken when it returns, a refusal
    by its problem code when it raises one."""
    taken = JOINS.labels(kind=kind)

    def decorate(join: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(join)
        def counted(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                seat = join(*args, **kwargs)
            except AppError as refusal:
                JOIN_REFUSALS.labels(code=refusal.code).inc()
                raise
            taken.inc()
            return seat

        return counted

    return decorate


# The read replica (kit.replica), as this process's last sample found it.
REPLICA_LAG_SECONDS = Gauge(
    "pintuan_replica_lag_seconds",
    "How stale a read from the replica may be, as the last sample measured it (-1: unknown, "
    "the replica is down or not following the primary)",
    multiprocess_mode="mostrecent",
)
REPLICA_LAG_BYTES = Gauge(
    "pintuan_replica_lag_bytes",
    "WAL the primary had written that the replica had not yet replayed, at the last sample "
    "(-1: unknown)",
    multiprocess_mode="mostrecent",
)
REPLICA_SERVING = Gauge(
    "pintuan_replica_serving",
    "1 while stale-tolerant reads go to the replica, 0 while they fall back to the primary",
    multiprocess_mode="mostrecent",
)
STALE_READS = Counter(
    "pintuan_stale_reads",
    "Reads that may be a little stale, by the database that served them (replica or primary)",
    ["served_by"],
)
