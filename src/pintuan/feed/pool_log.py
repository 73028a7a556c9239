"""How the log keeps the pool each slate was drawn from: every candidate's fixed part once, in
``feed_candidates``, and in the slate only each candidate's id, ``time_left`` and ``distance``.

A slate's pool is fifty candidates. Logged whole, with their features, they were about 10 KB a
slate, most of what the feed wrote, and more than one SQLite writer kept up with under load. A
candidate's features change with the moment (``time_left``) and the viewer (``distance``); the
rest is fixed while its deal or team is unchanged. So that part is written once, under an id that
is a digest of it (a changed deal or team is a new id), and a slate's pool is
``[[id, time_left, distance], ...]``: about 1.5 KB.

Slates logged before kept each candidate whole (``{"kind", "id", "vertical", "merchant_id",
"features"}``); ``decode_pool`` reads both.

The slates of one second that ask the same thing share their pool (``feed.serving``): it is
written once, in ``feed_pools``, and each slate names it (``pool_id``); ``slate_pools`` reads a
slate's pool either way.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pintuan.domain.feed import CANDIDATE_FEATURES, Candidate
from pintuan.feed.models import FeedCandidate, FeedPool
from pintuan.kit.orm import table_of
from pintuan.kit.rawsql import Sql

TIME_LEFT = CANDIDATE_FEATURES.index("time_left")
DISTANCE = CANDIDATE_FEATURES.index("distance")
_READ_CHUNK = 500
_candidates = table_of(FeedCandidate)
_pools = table_of(FeedPool)

WRITE_CANDIDATES = Sql(
    "INSERT INTO feed_candidates (id, kind, item_id, vertical, merchant_id, features)"
    " VALUES (:id, :kind, :item_id, :vertical, :merchant_id, :features)"
    " ON CONFLICT (id) DO NOTHING"
)


WRITE_POOL = Sql(
    "INSERT INTO feed_pools (id, created_at, entries) VALUES (:id, :created_at, :entries)"
)


@dataclass(frozen=True, slots=True)
class LoggedCandidate:
    """A candidate's fixed part as ``feed_candidates`` keeps it (``features`` as JSON, with
    ``time_left`` and ``distance`` 0: each slate gives its own)."""

    id: str
    kind: str
    item_id: str
    vertical: str
    merchant_id: str
    features: str

    def row(self) -> dict[str, str]:
        return {
            "id": self.id,
            "kind": self.kind,
            "item_id": self.item_id,
            "vertical": self.vertical,
            "merchant_id": self.merchant_id,
            "features": self.features,
        }


def logged_candidate(
    kind: str, item_id: str, vertical: str, merchant_id: str, features: Sequence[float]
) -> LoggedCandidate:
    """The fixed part of a candidate with these ``features`` (in ``CANDIDATE_FEATURES`` order;
    its ``time_left`` and ``distance`` are left out), under the digest of all of it."""
    fixed = list(features)
    fixed[TIME_LEFT] = 0.0
    fixed[DISTANCE] = 0.0
    text = json.dumps(fixed, separators=(",", ":"))
    key = json.dumps([kind, item_id, vertical, merchant_id, text], separators=(",", ":"))
    digest = hashlib.blake2b(key.encode(), digest_size=12, person=b"pintuan-feed").digest()
    return LoggedCandidate(
        base64.urlsafe_b64encode(digest).decode(), kind, item_id, vertical, merchant_id, text
    )


def pool_entry(candidate: Candidate) -> tuple[LoggedCandidate, list[Any]]:
    """The candidate's fixed part, and its entry in a slate's pool."""
    fixed = logged_candidate(
        candidate.kind,
        candidate.item_id,
        candidate.vertical,
        candidate.merchant_id,
        candidate.features,
    )
    return fixed, [fixed.id, candidate.features[TIME_LEFT], candidate.features[DISTANCE]]


def slate_pools(
    session: Session, slates: Sequence[tuple[str | None, Sequence[Any]]]
) -> list[Sequence[Any] | None]:
    """The pool each of ``slates`` (``(pool_id, pool)`` as logged) was drawn from: the one it
    names in ``feed_pools``, else its own; None for a named pool that is not there."""
    ids = sorted({pool_id for pool_id, _ in slates if pool_id is not None})
    named: dict[str, Sequence[Any]] = {}
    for start in range(0, len(ids), _READ_CHUNK):
        chunk = ids[start : start + _READ_CHUNK]
        for pool_id, entries in session.execute(
            select(_pools.c.id, _pools.c.entries).where(_pools.c.id.in_(chunk))
        ):
            named[pool_id] = entries
    return [own if pool_id is None else named.get(pool_id) for pool_id, own in slates]


def read_candidates(
    session: Session, pools: Iterable[Sequence[Any] | None]
) -> dict[str, Candidate]:
    """The fixed parts the ``pools`` name, by id (``time_left`` and ``distance`` 0)."""
    ids = sorted(
        {
            entry[0]
            for pool in pools
            if pool is not None
            for entry in pool
            if isinstance(entry, list) and entry
        }
    )
    known: dict[str, Candidate] = {}
    for start in range(0, len(ids), _READ_CHUNK):
        chunk = ids[start : start + _READ_CHUNK]
        for row in session.execute(
            select(_candidates).where(_candidates.c.id.in_(chunk))
        ).mappings():
            known[row["id"]] = Candidate(
                row["kind"],
                row["item_id"],
                row["vertical"],
                row["merchant_id"],
                tuple(float(f) for f in row["features"]),
            )
    return known


def decode_pool(
    pool: Sequence[Any] | None, known: Mapping[str, Candidate]
) -> list[Candidate] | None:
    """The candidates a slate's policy saw, from its logged pool in either format; None when it
    cannot be read (no pool, a candidate not in ``known``, or a log of another version)."""
    if pool is None:
        return None
    out: list[Candidate] = []
    width = len(CANDIDATE_FEATURES)
    for entry in pool:
        if isinstance(entry, list) and len(entry) == 3:
            fixed = known.get(entry[0])
            if fixed is None or len(fixed.features) != width:
                return None
            features = list(fixed.features)
            features[TIME_LEFT] = float(entry[1])
            features[DISTANCE] = float(entry[2])
            out.append(
                Candidate(
                    fixed.kind, fixed.item_id, fixed.vertical, fixed.merchant_id, (*features,)
                )
            )
        elif isinstance(entry, dict):
            features = [float(f) for f in entry.get("features", ())]
            if len(features) != width:
                return None
            out.append(
                Candidate(
                    str(entry.get("kind")),
                    str(entry.get("id")),
                    str(entry.get("vertical")),
                    str(entry.get("merchant_id")),
                    tuple(features),
                )
            )
        else:
            return None
    return out
