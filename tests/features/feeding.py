"""Helpers of the feed's tests: the serving process's feed, its log, the worker's passes."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from pintuan.feed import tasks
from pintuan.feed.models import FeedImpression, FeedModel, FeedReward
from pintuan.feed.serving import FeedRuntime
from pintuan.feed.slate_log import LoggedPlacement, read_placements
from pintuan.kit.time import utc_now
from pintuan.services import Services


def runtime_of(client: TestClient) -> FeedRuntime:
    runtime: FeedRuntime = client.app.state.feed  # type: ignore[attr-defined]
    return runtime


def flush(client: TestClient) -> int:
    return runtime_of(client).flush()


def impressions(services: Services) -> list[FeedImpression]:
    return services.db.run_sync(
        lambda s: list(s.scalars(select(FeedImpression).order_by(FeedImpression.served_at)))
    )


def placements(services: Services, impression_id: str) -> list[LoggedPlacement]:
    """The slots of a logged slate, by position (none when the slate is not there)."""
    return services.db.run_sync(
        lambda s: read_placements(
            s.scalar(select(FeedImpression.placements).where(FeedImpression.id == impression_id))
        )
    )


def rewards(services: Services) -> list[tuple[str, int, str]]:
    return services.db.run_sync(
        lambda s: [
            (r.impression_id, r.position, r.event)
            for r in s.scalars(select(FeedReward).order_by(FeedReward.id))
        ]
    )


def models(services: Services) -> dict[str, FeedModel]:
    return services.db.run_sync(lambda s: {m.policy: m for m in s.scalars(select(FeedModel))})


def credit(services: Services) -> int:
    return services.db.run_sync(
        tasks.credit_feed_rewards, services.settings, utc_now(), services.settings.worker_batch_size
    )


def learn(services: Services, now: Any = None) -> int:
    return services.db.run_sync(tasks.learn_from_feed, services.settings, now or utc_now(), 500)
