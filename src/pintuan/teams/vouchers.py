"""Issuing vouchers (``domain/vouchers.py``), in the transaction in which a team succeeds
(``mark_seat_paid``).

This module reads and writes only on the raw path and imports nothing of the other features, so
the engine can call it without depending on what redemption and refunds need.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pintuan.domain.vouchers import VoucherStatus, VoucherTerms, new_code
from pintuan.events.service import record_events
from pintuan.kit.ids import new_id
from pintuan.kit.rawsql import RawTx, Sql

# A code already taken (50 random bits: rare) makes no row; that seat draws again.
INSERT_VOUCHER = Sql(
    """
    INSERT INTO vouchers (id, seat_id, team_id, deal_id, merchant_id, user_id, code, status,
        settle_on, refund_anytime, locations, valid_from, expires_at, moves, created_at,
        updated_at)
    VALUES (:id, :seat_id, :team_id, :deal_id, :merchant_id, :user_id, :code, :issued,
        :settle_on, :refund_anytime, :locations, :now, :expires_at, 0, :now, :now)
    ON CONFLICT (code) DO NOTHING
    RETURNING id
""",
    issued=VoucherStatus.ISSUED,
)
MAX_DRAWS = 5


def terms_of(raw: Any) -> VoucherTerms | None:
    """A deal's voucher terms from its column as either driver returns it."""
    if raw is None:
        return None
    data = json.loads(raw) if isinstance(raw, str) else raw
    return VoucherTerms.from_json(data) if data else None


def issue_for_team(
    tx: RawTx,
    team_id: str,
    deal_id: str,
    merchant_id: str,
    terms: VoucherTerms,
    seats: Sequence[tuple[str, str]],
    now: datetime,
) -> int:
    """Give each of the ``seats`` (seat id, shopper) of a team that just succeeded its voucher
    on the deal's ``terms``; returns how many were issued."""
    at = tx.instant(now)
    # A fixed end already past (a team that succeeded late) makes a voucher that expires at
    # once, and is refunded by the worker's sweep.
    expires_at = tx.instant(max(terms.expires_at(now), now + timedelta(seconds=1)))
    events: list[tuple[str, str, dict[str, Any]]] = []
    for seat_id, user_id in seats:
        voucher_id = new_id("vch")
        for _ in range(MAX_DRAWS):
            made = tx.scalar(
                INSERT_VOUCHER,
                {
                    "id": voucher_id,
                    "seat_id": seat_id,
                    "team_id": team_id,
                    "deal_id": deal_id,
                    "merchant_id": merchant_id,
                    "user_id": user_id,
                    "code": new_code(),
                    "settle_on": terms.settle_on.value,
                    "refund_anytime": terms.refund_anytime,
                    "locations": json.dumps(list(terms.locations)),
                    "now": at,
                    "expires_at": expires_at,
                },
            )
            if made is not None:
                break
        else:  # pragma: no cover - five collisions in a space of 2**50 codes
            raise RuntimeError("could not draw a free voucher code")
        events.append(("voucher.issued", voucher_id, {"user_id": user_id, "seat_id": seat_id}))
    record_events(tx, events)
    return len(events)
