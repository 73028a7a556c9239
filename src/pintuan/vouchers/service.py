"""Use cases of vouchers: the shopper's list and refund, the counter's redemption and its undo,
and the worker's refund of unused vouchers at expiry.

Every transition is one conditional write on the voucher's status (``domain/vouchers.py``), so
racing writers end in one state and the money follows the winner: a redemption releases the
merchant's part to its payable, a refund or expiry releases it and refunds the seat's payment in
full through ``payments.refunds`` (to the original method or the wallet, as the payer chose).
Everything that moves money runs on the raw path. Services never commit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pintuan.domain.roles import Principal
from pintuan.domain.vouchers import (
    RedeemedVia,
    SettleOn,
    VoucherStatus,
    normalize_code,
    undo_open,
)
from pintuan.errors import AppError, Conflict, Forbidden, InvalidInput, NotFound
from pintuan.events.service import record_event
from pintuan.kit.rawsql import RawTx, Sql
from pintuan.ledger.vouchers import VoucherMoney, hold_back_again, release_waiting
from pintuan.payments.refunds import (
    EARNED_OF_SEAT,
    LEFT_TO_REFUND,
    PAYMENT_EARNED,
    EarnedPayment,
    refund_seat,
)

_COLUMNS = """
    v.id, v.seat_id, v.team_id, v.deal_id, v.merchant_id, v.user_id, v.code, v.status,
    v.settle_on, v.refund_anytime, v.locations, v.valid_from, v.expires_at, v.redeemed_at,
    v.redeemed_by, v.redeemed_via, v.redeemed_location, v.refund_id, v.ended_at, v.created_at,
    d.title AS deal_title, d.vertical, s.price_amount AS amount, d.currency
"""
_FROM = """
    FROM vouchers v JOIN deals d ON d.id = v.deal_id JOIN seats s ON s.id = v.seat_id
"""
BY_ID = Sql(f"SELECT {_COLUMNS} {_FROM} WHERE v.id = :id")
BY_CODE = Sql(f"SELECT {_COLUMNS} {_FROM} WHERE v.code = :code")
OF_USER = Sql(
    f"""SELECT {_COLUMNS} {_FROM}
    WHERE v.user_id = :user_id AND (CAST(:after AS VARCHAR(40)) IS NULL OR v.id < :after)
      AND (CAST(:status AS VARCHAR(10)) IS NULL OR v.status = :status)
    ORDER BY v.id DESC LIMIT :limit"""
)
OF_MERCHANT = Sql(
    f"""SELECT {_COLUMNS} {_FROM}
    WHERE v.merchant_id = :merchant_id AND (CAST(:after AS VARCHAR(40)) IS NULL OR v.id < :after)
      AND (CAST(:status AS VARCHAR(10)) IS NULL OR v.status = :status)
    ORDER BY v.id DESC LIMIT :limit"""
)
OF_SEATS = Sql(f"SELECT {_COLUMNS} {_FROM} WHERE v.seat_id IN_LIST(:seat_ids)")

REDEEM = Sql(
    """
    UPDATE vouchers SET status = :redeemed, redeemed_at = :now, redeemed_by = :by,
        redeemed_via = :via, redeemed_location = :location, updated_at = :now
    WHERE id = :id AND status = :issued AND expires_at > :now
    RETURNING id
""",
    redeemed=VoucherStatus.REDEEMED,
    issued=VoucherStatus.ISSUED,
)
UNDO = Sql(
    """
    UPDATE vouchers SET status = :issued, redeemed_at = NULL, redeemed_by = NULL,
        redeemed_via = NULL, redeemed_location = NULL, updated_at = :now
    WHERE id = :id AND status = :redeemed AND redeemed_at > :since
    RETURNING id
""",
    redeemed=VoucherStatus.REDEEMED,
    issued=VoucherStatus.ISSUED,
)
END = Sql(
    """
    UPDATE vouchers SET status = :to, ended_at = :now, updated_at = :now
    WHERE id = :id AND status = :issued
    RETURNING id
""",
    issued=VoucherStatus.ISSUED,
)
NOTE_REFUND = Sql("UPDATE vouchers SET refund_id = :refund_id WHERE id = :id")
# Unused vouchers past their end whose seat's money its merchant earned (one whose capture is
# still on its way waits for it). Found through the partial index on issued vouchers' end.
DUE_TO_EXPIRE = Sql(
    f"""
    WITH picked AS MATERIALIZED (
        SELECT v.id FROM vouchers v
        WHERE v.status = 'issued' AND v.expires_at <= :now
          AND EXISTS (SELECT 1 FROM payments p WHERE p.seat_id = v.seat_id AND {PAYMENT_EARNED})
        ORDER BY v.expires_at LIMIT :limit SKIP_LOCKED
    )
    SELECT id FROM picked
"""  # noqa: S608 - constant text
)

REFUND_REASON = "The voucher was refunded unused."
EXPIRY_REASON = "The voucher expired unused."


@dataclass(frozen=True, slots=True)
class VoucherView:
    """A voucher with what a shopper or the counter reads of its deal and seat."""

    id: str
    seat_id: str
    team_id: str
    deal_id: str
    merchant_id: str
    user_id: str
    code: str
    status: str
    settle_on: str
    refund_anytime: bool
    locations: list[str]
    valid_from: datetime
    expires_at: datetime
    redeemed_at: datetime | None
    redeemed_by: str | None
    redeemed_via: str | None
    redeemed_location: str | None
    refund_id: str | None
    ended_at: datetime | None
    created_at: datetime
    deal_title: str
    vertical: str
    amount: int
    currency: str


def listed_locations(raw: Any) -> list[str]:
    """A voucher's locations from its JSON column as either driver returns it."""
    data = json.loads(raw) if isinstance(raw, str) else (raw or [])
    return [str(x) for x in data]


def _views(tx: RawTx, sql: Sql, params: dict[str, Any]) -> list[VoucherView]:
    """Vouchers as read, their instants aware and their locations a list on either driver."""

    def build(**row: Any) -> VoucherView:
        for name in ("valid_from", "expires_at", "created_at"):
            row[name] = tx.read_instant(row[name])
        for name in ("redeemed_at", "ended_at"):
            row[name] = tx.read_optional_instant(row[name])
        row["locations"] = listed_locations(row["locations"])
        row["refund_anytime"] = bool(row["refund_anytime"])
        return VoucherView(**row)

    return tx.all_as(build, sql, params)


@dataclass(frozen=True, slots=True)
class Redeemer:
    """Who redeems at the counter: a merchant's staff member (or an operator), or an app
    installed on a shop with the ``vouchers:redeem`` scope."""

    id: str
    via: RedeemedVia
    merchant_ids: frozenset[str]
    operator: bool = False

    @classmethod
    def staff(cls, principal: Principal, via: RedeemedVia) -> Redeemer:
        return cls(principal.user_id, via, principal.merchant_ids, principal.is_operator)

    def may_redeem(self, merchant_id: str) -> bool:
        return self.operator or merchant_id in self.merchant_ids


def _view(tx: RawTx, sql: Sql, params: dict[str, Any]) -> VoucherView | None:
    found = _views(tx, sql, params)
    return found[0] if found else None


def _money(v: VoucherView) -> VoucherMoney:
    return VoucherMoney(v.id, v.seat_id, v.merchant_id)


def _refused(tx: RawTx, voucher_id: str, now: datetime) -> AppError:
    """Why a conditional write on a voucher changed nothing: its state as it now stands."""
    v = _view(tx, BY_ID, {"id": voucher_id})
    assert v is not None
    if v.status == VoucherStatus.REDEEMED:
        at = v.redeemed_at or now
        where = f" at {v.redeemed_location}" if v.redeemed_location else ""
        return Conflict(
            f"This voucher was redeemed {at.isoformat(timespec='seconds')}{where}.",
            code="voucher_already_redeemed",
            extra={"redeemed_at": at.isoformat(), "redeemed_location": v.redeemed_location},
        )
    if v.status == VoucherStatus.REFUNDED:
        return Conflict("This voucher was refunded; it cannot be used.", code="voucher_refunded")
    if v.status == VoucherStatus.EXPIRED or v.expires_at <= now:
        return Conflict(
            "This voucher has expired; unused vouchers are refunded.", code="voucher_expired"
        )
    return Conflict("This voucher has not been redeemed.", code="voucher_not_redeemed")


# ---------------------------------------------------------------------------- reading


def list_of_user(
    tx: RawTx, user_id: str, status: VoucherStatus | None, after: str | None, limit: int
) -> list[VoucherView]:
    """The shopper's vouchers, newest first."""
    return _views(
        tx,
        OF_USER,
        {
            "user_id": user_id,
            "after": after,
            "status": status.value if status else None,
            "limit": limit,
        },
    )


def list_of_merchant(
    tx: RawTx,
    principal: Principal,
    merchant_id: str,
    status: VoucherStatus | None,
    after: str | None,
    limit: int,
) -> list[VoucherView]:
    """A merchant's vouchers, newest first (its staff and operators)."""
    if not principal.can_manage(merchant_id):
        raise Forbidden(
            f"Only staff of merchant {merchant_id} may see its vouchers.", code="not_merchant_staff"
        )
    return _views(
        tx,
        OF_MERCHANT,
        {
            "merchant_id": merchant_id,
            "after": after,
            "status": status.value if status else None,
            "limit": limit,
        },
    )


def vouchers_of_seats(tx: RawTx, seat_ids: list[str]) -> dict[str, VoucherView]:
    """The vouchers of these seats, by seat (an order page shows its voucher)."""
    if not seat_ids:
        return {}
    return {v.seat_id: v for v in _views(tx, OF_SEATS, {"seat_ids": seat_ids})}


def get_for_user(tx: RawTx, user_id: str, voucher_id: str) -> VoucherView:
    v = _view(tx, BY_ID, {"id": voucher_id})
    if v is None or v.user_id != user_id:
        raise NotFound(f"No voucher {voucher_id}.", code="voucher_not_found")
    return v


def look_up(tx: RawTx, redeemer: Redeemer, typed_code: str) -> VoucherView:
    """The voucher a code names, for the counter to check before redeeming it."""
    code = normalize_code(typed_code)
    v = _view(tx, BY_CODE, {"code": code}) if code else None
    if v is None:
        raise NotFound(
            "No voucher has this code; check it letter by letter.", code="voucher_not_found"
        )
    if not redeemer.may_redeem(v.merchant_id):
        raise Forbidden(
            "This voucher is for another merchant; it cannot be redeemed here.",
            code="voucher_of_another_merchant",
        )
    return v


# ---------------------------------------------------------------------------- the counter


def _location(v: VoucherView, asked: str | None) -> str | None:
    """Where the voucher is redeemed: one of its locations (the only one, when it has one and
    none is said), or what the counter says when it lists none."""
    listed = v.locations
    asked = " ".join(asked.split()) if asked else None
    if not listed:
        return asked
    if asked is None:
        if len(listed) == 1:
            return listed[0]
        raise InvalidInput(
            "Say at which of the voucher's locations it is redeemed.",
            code="voucher_location_required",
            extra={"errors": [{"field": "location", "message": f"one of {listed}"}]},
        )
    if asked not in listed:
        raise InvalidInput(
            f"This voucher is not valid at {asked}; it is valid at {', '.join(listed)}.",
            code="voucher_location_invalid",
            extra={"errors": [{"field": "location", "message": f"one of {listed}"}]},
        )
    return asked


def redeem(
    tx: RawTx, redeemer: Redeemer, typed_code: str, location: str | None, now: datetime
) -> VoucherView:
    """Redeem a voucher once, where it is valid, before it expires. Of several redeemers of
    one code at once, exactly one succeeds; the others hear ``voucher_already_redeemed``."""
    v = look_up(tx, redeemer, typed_code)
    where = _location(v, location)
    done = tx.scalar(
        REDEEM,
        {
            "id": v.id,
            "now": tx.instant(now),
            "by": redeemer.id,
            "via": redeemer.via.value,
            "location": where,
        },
    )
    if done is None:
        raise _refused(tx, v.id, now)
    if v.settle_on == SettleOn.REDEMPTION:
        release_waiting(tx, _money(v), now)
    record_event(
        tx, "voucher.redeemed", v.id, user_id=v.user_id, merchant_id=v.merchant_id, location=where
    )
    found = _view(tx, BY_ID, {"id": v.id})
    assert found is not None
    return found


def undo_redemption(
    tx: RawTx, redeemer: Redeemer, voucher_id: str, undo_minutes: int, now: datetime
) -> VoucherView:
    """Undo a redemption made by mistake, within ``undo_minutes`` of it: the voucher is
    usable again and, when it settles on redemption, its money waits again."""
    v = _view(tx, BY_ID, {"id": voucher_id})
    if v is None or not redeemer.may_redeem(v.merchant_id):
        raise NotFound(f"No voucher {voucher_id} of yours to undo.", code="voucher_not_found")
    since = now - timedelta(minutes=undo_minutes)
    done = tx.scalar(UNDO, {"id": v.id, "now": tx.instant(now), "since": tx.instant(since)})
    if done is None:
        if (
            v.status == VoucherStatus.REDEEMED
            and v.redeemed_at is not None
            and not undo_open(v.redeemed_at, undo_minutes, now)
        ):
            raise Conflict(
                f"A redemption can be undone only within {undo_minutes} minutes of it.",
                code="voucher_undo_closed",
            )
        raise _refused(tx, v.id, now)
    if v.settle_on == SettleOn.REDEMPTION:
        hold_back_again(tx, _money(v), now)
    record_event(tx, "voucher.redemption_undone", v.id, user_id=v.user_id, by=redeemer.id)
    found = _view(tx, BY_ID, {"id": v.id})
    assert found is not None
    return found


# ---------------------------------------------------------------------------- refunds


def _end_and_refund(
    tx: RawTx,
    v: VoucherView,
    to: VoucherStatus,
    reason: str,
    requested_by: str | None,
    now: datetime,
) -> str | None:
    """End an unused voucher as ``to`` and give its seat's money back in full; returns the
    refund's id (None when nothing was left to refund). Refused, changing nothing, when the
    voucher is no longer unused or its money has not been earned yet."""
    if tx.scalar(END, {"id": v.id, "to": to.value, "now": tx.instant(now)}) is None:
        raise _refused(tx, v.id, now)
    payment = tx.one_as(EarnedPayment, EARNED_OF_SEAT, {"seat_id": v.seat_id})
    if payment is None:
        raise Conflict(
            "This voucher's payment is still being completed; try again in a few minutes.",
            code="voucher_payment_pending",
        )
    if v.settle_on == SettleOn.REDEMPTION:
        release_waiting(tx, _money(v), now)
    left = int(tx.scalar(LEFT_TO_REFUND, {"id": payment.id}) or 0)
    refund_id = None
    if left > 0:
        refund_id = refund_seat(tx, v.seat_id, left, reason, requested_by, now)
        tx.execute(NOTE_REFUND, {"id": v.id, "refund_id": refund_id})
    record_event(
        tx,
        f"voucher.{to.value}",
        v.id,
        user_id=v.user_id,
        amount=left,
        currency=payment.currency,
        refund_id=refund_id,
    )
    return refund_id


def refund_by_shopper(tx: RawTx, user_id: str, voucher_id: str, now: datetime) -> VoucherView:
    """The shopper gives back an unused voucher, when its deal allows refunds at any time."""
    v = get_for_user(tx, user_id, voucher_id)
    if not v.refund_anytime:
        raise Conflict(
            "This deal's vouchers are not refundable before they expire; unused ones are "
            "refunded when they do.",
            code="voucher_not_refundable",
        )
    # Past its end (the sweep has not come yet), it ends as the sweep would end it.
    if v.expires_at <= now:
        _end_and_refund(tx, v, VoucherStatus.EXPIRED, EXPIRY_REASON, None, now)
    else:
        _end_and_refund(tx, v, VoucherStatus.REFUNDED, REFUND_REASON, user_id, now)
    found = _view(tx, BY_ID, {"id": v.id})
    assert found is not None
    return found


def expire_due(tx: RawTx, now: datetime, limit: int) -> int:
    """Refund up to ``limit`` unused vouchers whose validity ran out; returns how many."""
    ids = [row[0] for row in tx.all(DUE_TO_EXPIRE, {"now": tx.instant(now), "limit": limit})]
    done = 0
    for voucher_id in ids:
        v = _view(tx, BY_ID, {"id": voucher_id})
        if v is None or v.status != VoucherStatus.ISSUED:
            continue
        _end_and_refund(tx, v, VoucherStatus.EXPIRED, EXPIRY_REASON, None, now)
        done += 1
    return done
