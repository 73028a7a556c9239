"""Feed logs for tests: slates drawn by a real policy through ``draw_slate``, written to the log
tables as the live feed writes them, with clicks drawn from a known rate per vertical."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from pintuan.domain.feed import (
    CANDIDATE_FEATURES,
    VERTICALS,
    VIEWER_FEATURES,
    Candidate,
    Rules,
    Viewer,
    draw_slate,
)
from pintuan.domain.feed_policies import new_policy
from pintuan.feed.models import FeedCandidate, FeedImpression, FeedReward
from pintuan.feed.pool_log import pool_entry
from pintuan.feed.slate_log import placements_json, slots_flat

# The click rate of an item of each vertical: travel is what these shoppers want.
CLICK_RATE = {"goods": 0.05, "food": 0.1, "movies": 0.05, "travel": 0.6, "local": 0.1}
RULES = Rules(exploration=0.3, min_share={"movies": 0.2}, merchant_cap=3)


def pool_of(rng: random.Random, size: int = 12) -> list[Candidate]:
    items = []
    for index in range(size):
        vertical = VERTICALS[index % len(VERTICALS)]
        features = [rng.random() for _ in CANDIDATE_FEATURES]
        features[0] = 1.0
        for name in VERTICALS:
            features[CANDIDATE_FEATURES.index(f"vertical_{name}")] = float(name == vertical)
        items.append(
            Candidate("deal", f"deal_{index:02d}", vertical, f"m_{index % 4}", tuple(features))
        )
    return items


def rules_json(rules: Rules) -> dict[str, object]:
    return {
        "exploration": rules.exploration,
        "min_share": dict(rules.min_share),
        "pins": {str(p): key for p, key in rules.pins.items()},
        "boosts": dict(rules.boosts),
        "merchant_cap": rules.merchant_cap,
    }


def log_slates(
    session: Session,
    *,
    slates: int,
    start: datetime,
    policy: str = "random",
    slots: int = 4,
    seed: int = 1,
    whole_pools: bool = False,
) -> float:
    """Log ``slates`` slates from ``start`` on, a minute apart; returns the clicks per slate.
    Their pools name candidates logged once, as the live feed logs them; with ``whole_pools``,
    they hold each candidate whole, as slates logged before ``feed_candidates`` do."""
    rng = random.Random(seed)
    logging = new_policy(policy)
    clicks = 0
    written: set[str] = set()
    for number in range(slates):
        pool = pool_of(rng)
        viewer = Viewer(f"v_{number % 30}", tuple(0.0 for _ in VIEWER_FEATURES))
        placements = draw_slate(logging, viewer, pool, slots, RULES, rng)
        impression_id = f"imp_{seed}_{'w' if whole_pools else 'n'}{number:05d}"
        served_at = start + timedelta(minutes=number)
        logged_pool: list[Any] = []
        for c in pool:
            if whole_pools:
                logged_pool.append(
                    {
                        "kind": c.kind,
                        "id": c.item_id,
                        "vertical": c.vertical,
                        "merchant_id": c.merchant_id,
                        "features": list(c.features),
                    }
                )
                continue
            fixed, entry = pool_entry(c)
            if fixed.id not in written:
                written.add(fixed.id)
                if session.get(FeedCandidate, fixed.id) is None:
                    session.add(
                        FeedCandidate(**{**fixed.row(), "features": json.loads(fixed.features)})
                    )
            logged_pool.append(entry)
        session.add(
            FeedImpression(
                id=impression_id,
                served_at=served_at,
                viewer=viewer.pseudonym,
                policy=policy,
                slots=slots,
                filters={},
                viewer_features=list(viewer.history),
                pool=logged_pool,
                rules=rules_json(RULES),
                placements=json.loads(placements_json(slots_flat(placements))),
            )
        )
        session.flush()
        for placement in placements:
            candidate = placement.candidate
            if rng.random() < CLICK_RATE[candidate.vertical]:
                clicks += 1
                session.add(
                    FeedReward(
                        impression_id=impression_id,
                        position=placement.position,
                        event="click",
                        at=served_at + timedelta(seconds=5),
                    )
                )
    session.flush()
    return clicks / slates
