"""Use cases of deals: a merchant's staff draft, edit, publish, pause and end them."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Integer, String, and_, column, or_, select, table, update
from sqlalchemy.orm import Session

from pintuan.auditlog import service as auditlog
from pintuan.deals.models import Deal
from pintuan.domain import lottery
from pintuan.domain.autofill import AutoFill, FundedBy, auto_fill_problems
from pintuan.domain.coupons import CouponTerms, lottery_coupon_problems
from pintuan.domain.deals import DealSort, DealTerms, FieldProblem, Vertical, check_deal_terms
from pintuan.domain.ladder import (
    Tier,
    ladder_problems,
    options_clash,
    tiers_as_json,
    tiers_from_json,
    tipping_problems,
)
from pintuan.domain.lifecycle import (
    DEAL_FIELDS_EDITABLE_WHEN_PUBLISHED,
    DealStatus,
    MerchantStatus,
    next_deal_status,
)
from pintuan.domain.lottery import winners_problems
from pintuan.domain.pickups import PickupTerms, pickup_terms_problems
from pintuan.domain.rewards import LeaderReward, RewardKind, reward_problems
from pintuan.domain.roles import Principal
from pintuan.domain.vouchers import VoucherTerms, voucher_terms_problems
from pintuan.errors import Conflict, Forbidden, InvalidInput, NotFound
from pintuan.kit.ids import new_id
from pintuan.kit.money import Money
from pintuan.kit.orm import UtcDateTime
from pintuan.kit.pagination import decode_cursor, encode_cursor
from pintuan.kit.time import ensure_utc, utc_now
from pintuan.merchants.models import Merchant
from pintuan.merchants.service import get_merchant

PUBLIC_STATUSES = (DealStatus.LIVE, DealStatus.PAUSED, DealStatus.ENDED)
MODERATION_ACTIONS = ("moderate", "unmoderate")


@dataclass(frozen=True, slots=True)
class DealDraft:
    merchant_id: str
    title: str
    description: str
    vertical: Vertical
    list_price: Money
    group_price: Money
    stock: int
    per_user_limit: int
    starts_at: datetime
    ends_at: datetime
    team_size: int
    team_window_minutes: int = 1440
    image_urls: list[str] = field(default_factory=list)
    leader_price: Money | None = None
    new_shoppers_only: bool = False
    # Buying alone at the list price is what shoppers expect beside the team price; a merchant
    # who sells in teams only says so.
    allow_solo: bool = True
    # A local-services deal's vouchers (None: its seats get none).
    voucher: VoucherTerms | None = None
    # A flash sale: opens at ``starts_at``, one unit to each shopper.
    flash_sale: bool = False
    # What the leader of each successful team gets back (None: nothing).
    leader_reward: LeaderReward | None = None
    # A lottery: how many seats of each successful team win (None: every seat keeps its buy).
    lottery_winners: int | None = None
    # What each seat a lottery's draw did not pick gets besides its refund (None: nothing).
    lottery_coupon: CouponTerms | None = None
    # A pickup deal: collected at pickup points whose leaders earn a commission (None: not one).
    pickup: PickupTerms | None = None
    # What the sharer whose share brought a seat earns of what it paid (basis points; 0: none).
    referral_commission_bps: int = 0
    # A ladder deal's tiers beyond the first (``team_size`` at the group price); None: no ladder.
    ladder: tuple[Tier, ...] | None = None
    # Paid seats of full teams the deal needs by its end to sell at all; None: no tipping point.
    tipping_point: int | None = None
    # Teams ending one or two paid seats short filled by a budget; None: they fail.
    auto_fill: AutoFill | None = None


@dataclass(frozen=True, slots=True)
class DealFilters:
    merchant_id: str | None = None
    vertical: Vertical | None = None
    status: DealStatus | None = None
    text: str | None = None
    # Where the deal's merchant sells (ISO 3166 country) and the deal's currency (ISO 4217).
    country: str | None = None
    currency: str | None = None
    # A viewer's market, (country, its currency): deals of merchants in that country or priced
    # in that currency, the ones such a viewer can buy in their own money.
    market: tuple[str, str | None] | None = None
    sort: DealSort = DealSort.NEWEST


def refuse_problems(problems: list[FieldProblem]) -> None:
    """Refuse input with every problem found at once (``validation_error``, each by its field)."""
    if problems:
        raise InvalidInput(
            "; ".join(f"{p.field}: {p.message}" for p in problems),
            extra={"errors": [{"field": p.field, "message": p.message} for p in problems]},
        )


def _refuse_lottery(
    winners: int | None, coupon: CouponTerms | None, team_size: int, group_price: int
) -> None:
    problems = winners_problems(winners, team_size) if winners is not None else []
    if coupon is not None:
        problems += lottery_coupon_problems(
            coupon, lottery=winners is not None, group_price=group_price
        )
    refuse_problems(problems)


def _refuse_mechanics(
    *,
    ladder: tuple[Tier, ...] | None,
    tipping_point: int | None,
    auto_fill: AutoFill | None,
    team_size: int,
    group_price: int,
    stock: int,
    lottery_winners: int | None,
) -> None:
    """The ladder's, tipping point's and auto-fill's rules, and the options that clash."""
    problems = options_clash(
        ladder=ladder is not None,
        tipping=tipping_point is not None,
        lottery=lottery_winners is not None,
        auto_fill=auto_fill is not None,
        team_size=team_size,
    )
    if ladder is not None:
        problems += ladder_problems(team_size, group_price, ladder)
    if tipping_point is not None:
        problems += tipping_problems(tipping_point, stock)
    if auto_fill is not None:
        problems += auto_fill_problems(auto_fill, team_size)
    refuse_problems(problems)


def auto_fill_of(deal: Deal) -> AutoFill | None:
    """A deal's auto-fill, or None."""
    if deal.auto_fill_seats is None or deal.auto_fill_funded_by is None:
        return None
    return AutoFill(deal.auto_fill_seats, FundedBy(deal.auto_fill_funded_by))


def lottery_coupon_of(deal: Deal) -> CouponTerms | None:
    """What a lottery deal gives each seat its draws do not pick besides the refund, or None."""
    if deal.lottery_coupon_amount is None or deal.lottery_coupon_days is None:
        return None
    return CouponTerms(deal.lottery_coupon_amount, deal.lottery_coupon_days)


def ladder_of(deal: Deal) -> tuple[Tier, ...] | None:
    """A ladder deal's tiers beyond the first, or None."""
    return tiers_from_json(deal.ladder) if deal.ladder is not None else None


def _refuse_reward(reward: LeaderReward | None) -> None:
    if reward is not None:
        refuse_problems(reward_problems(reward))


def leader_reward_of(deal: Deal) -> LeaderReward | None:
    """A deal's reward to its teams' leaders, or None."""
    if deal.leader_reward_kind is None:
        return None
    return LeaderReward(RewardKind(deal.leader_reward_kind), deal.leader_reward_value)


def _refuse_flash_sale(flash_sale: bool, per_user_limit: int) -> None:
    if flash_sale and per_user_limit != 1:
        refuse_problems(
            [FieldProblem("per_user_limit", "a flash sale sells one unit to each shopper: 1")]
        )


def _refuse_voucher_terms(terms: VoucherTerms | None, vertical: str, ends_at: datetime) -> None:
    if terms is not None:
        refuse_problems(voucher_terms_problems(terms, vertical, ends_at))


def _refuse_pickup_terms(terms: PickupTerms | None, vertical: str, has_voucher: bool) -> None:
    if terms is not None:
        refuse_problems(pickup_terms_problems(terms, vertical, has_voucher))


def pickup_terms_of(deal: Deal) -> PickupTerms | None:
    """A pickup deal's terms, or None when its goods are not collected at pickup points."""
    if deal.pickup_commission_bps is None or deal.pickup_unclaimed_days is None:
        return None
    return PickupTerms(deal.pickup_commission_bps, deal.pickup_unclaimed_days)


def _require_staff(principal: Principal, merchant: Merchant) -> None:
    if not principal.can_manage(merchant.id):
        raise Forbidden(
            f"Only staff of merchant {merchant.id} may manage its deals.",
            code="not_merchant_staff",
        )


def _refuse_suspended(principal: Principal, merchant: Merchant) -> None:
    """A suspended merchant's staff may read, not write; operators still may (to end a deal)."""
    if merchant.status == MerchantStatus.SUSPENDED and not principal.is_operator:
        raise Forbidden(
            f"Merchant {merchant.id} is suspended: its deals cannot be created or changed. "
            "Ask the platform's operators.",
            code="merchant_suspended",
        )


def voucher_terms_of(deal: Deal) -> VoucherTerms | None:
    """A deal's voucher terms, or None when it issues no vouchers."""
    return VoucherTerms.from_json(deal.voucher) if deal.voucher else None


def create_deal(session: Session, principal: Principal, draft: DealDraft) -> Deal:
    """Create a ``draft`` deal for a merchant the caller is staff of."""
    merchant = get_merchant(session, draft.merchant_id)
    _require_staff(principal, merchant)
    _refuse_suspended(principal, merchant)
    refuse_problems(
        check_deal_terms(
            DealTerms(
                list_price=draft.list_price,
                group_price=draft.group_price,
                starts_at=draft.starts_at,
                ends_at=draft.ends_at,
                stock=draft.stock,
                leader_price=draft.leader_price,
            ),
            merchant.currency,
        )
    )
    _refuse_voucher_terms(draft.voucher, draft.vertical.value, draft.ends_at)
    _refuse_flash_sale(draft.flash_sale, draft.per_user_limit)
    _refuse_reward(draft.leader_reward)
    _refuse_lottery(
        draft.lottery_winners, draft.lottery_coupon, draft.team_size, draft.group_price.amount
    )
    _refuse_pickup_terms(draft.pickup, draft.vertical.value, draft.voucher is not None)
    _refuse_mechanics(
        ladder=draft.ladder,
        tipping_point=draft.tipping_point,
        auto_fill=draft.auto_fill,
        team_size=draft.team_size,
        group_price=draft.group_price.amount,
        stock=draft.stock,
        lottery_winners=draft.lottery_winners,
    )
    now = utc_now()
    deal = Deal(
        id=new_id("deal"),
        merchant_id=merchant.id,
        title=draft.title,
        description=draft.description,
        vertical=draft.vertical.value,
        image_urls=list(draft.image_urls),
        currency=merchant.currency,
        list_price_amount=draft.list_price.amount,
        group_price_amount=draft.group_price.amount,
        leader_price_amount=draft.leader_price.amount if draft.leader_price else None,
        new_shoppers_only=draft.new_shoppers_only,
        allow_solo=draft.allow_solo,
        team_size=draft.team_size,
        team_window_minutes=draft.team_window_minutes,
        stock=draft.stock,
        committed=0,
        per_user_limit=draft.per_user_limit,
        starts_at=draft.starts_at,
        ends_at=draft.ends_at,
        status=DealStatus.DRAFT.value,
        voucher=draft.voucher.as_json() if draft.voucher else None,
        flash_sale=draft.flash_sale,
        leader_reward_kind=draft.leader_reward.kind.value if draft.leader_reward else None,
        leader_reward_value=draft.leader_reward.value if draft.leader_reward else None,
        lottery_winners=draft.lottery_winners,
        lottery_coupon_amount=draft.lottery_coupon.amount if draft.lottery_coupon else None,
        lottery_coupon_days=draft.lottery_coupon.valid_days if draft.lottery_coupon else None,
        pickup_commission_bps=draft.pickup.commission_bps if draft.pickup else None,
        pickup_unclaimed_days=draft.pickup.unclaimed_days if draft.pickup else None,
        referral_commission_bps=draft.referral_commission_bps,
        ladder=tiers_as_json(draft.ladder) if draft.ladder is not None else None,
        tipping_point=draft.tipping_point,
        auto_fill_seats=draft.auto_fill.seats if draft.auto_fill else None,
        auto_fill_funded_by=draft.auto_fill.funded_by.value if draft.auto_fill else None,
        merchant_suspended=merchant.status == MerchantStatus.SUSPENDED,
        created_at=now,
        updated_at=now,
    )
    session.add(deal)
    session.flush()
    return deal


def visible_deal(session: Session, principal: Principal | None, deal_id: str) -> Deal:
    """A deal as the caller may see it: drafts exist only for their merchant's staff."""
    deal = session.get(Deal, deal_id)
    if deal is None or (
        deal.status == DealStatus.DRAFT
        and not (principal is not None and principal.can_manage(deal.merchant_id))
    ):
        raise NotFound(f"No deal {deal_id}.", code="deal_not_found")
    return deal


def _managed_deal(session: Session, principal: Principal, deal_id: str) -> Deal:
    """A deal the caller may change: staff of an unsuspended merchant, or an operator; a
    moderated deal only an operator may touch."""
    deal = visible_deal(session, principal, deal_id)
    if not principal.can_manage(deal.merchant_id):
        raise Forbidden(
            f"Only staff of merchant {deal.merchant_id} may change this deal.",
            code="not_merchant_staff",
        )
    _refuse_suspended(principal, get_merchant(session, deal.merchant_id))
    if deal.status == DealStatus.MODERATED and not principal.is_operator:
        raise Forbidden(
            "This deal was stopped by the platform's operators; only they can release it.",
            code="deal_moderated",
        )
    return deal


def update_deal(
    session: Session, principal: Principal, deal_id: str, changes: dict[str, Any]
) -> Deal:
    """Change a deal's fields. Once published, only its copy, stock and end may change."""
    deal = _managed_deal(session, principal, deal_id)
    changes = dict(changes)
    ladder_currency = changes.pop("ladder_currency", None)
    coupon_currency = changes.pop("lottery_coupon_currency", None)
    status = DealStatus(deal.status)
    if status == DealStatus.ENDED:
        raise Conflict("An ended deal cannot be changed.", code="deal_not_editable")
    if status != DealStatus.DRAFT:
        frozen = sorted(set(changes) - DEAL_FIELDS_EDITABLE_WHEN_PUBLISHED)
        if frozen:
            raise Conflict(
                f"A {status.value} deal's {', '.join(frozen)} cannot change: teams may "
                "already be forming on those terms.",
                code="deal_not_editable",
                extra={"fields": frozen},
            )
    merchant = get_merchant(session, deal.merchant_id)
    refuse_problems(
        [
            FieldProblem(field, f"must be the deal's currency {deal.currency}")
            for field, currency in (
                ("ladder[0].price.currency", ladder_currency),
                ("lottery.coupon.amount.currency", coupon_currency),
            )
            if currency is not None and currency != deal.currency
        ]
    )
    terms = DealTerms(
        list_price=Money(deal.list_price_amount, deal.currency),
        group_price=Money(deal.group_price_amount, deal.currency),
        starts_at=deal.starts_at,
        ends_at=deal.ends_at,
        stock=deal.stock,
        committed=deal.committed,
        leader_price=Money(deal.leader_price_amount, deal.currency)
        if deal.leader_price_amount is not None
        else None,
    )
    terms = replace(
        terms,
        **{
            k: v
            for k, v in changes.items()
            if k in {"list_price", "group_price", "leader_price", "starts_at", "ends_at", "stock"}
        },
    )
    refuse_problems(check_deal_terms(terms, merchant.currency))
    for name, value in changes.items():
        if name in ("list_price", "group_price", "leader_price"):
            setattr(deal, f"{name}_amount", value.amount)
        elif name == "vertical":
            deal.vertical = Vertical(value).value
        elif name == "voucher":
            deal.voucher = value.as_json() if value is not None else None
        elif name == "leader_reward":
            deal.leader_reward_kind = value.kind.value if value is not None else None
            deal.leader_reward_value = value.value if value is not None else None
        elif name == "pickup":
            deal.pickup_commission_bps = value.commission_bps if value is not None else None
            deal.pickup_unclaimed_days = value.unclaimed_days if value is not None else None
        elif name == "ladder":
            deal.ladder = tiers_as_json(value) if value is not None else None
        elif name == "lottery_coupon":
            deal.lottery_coupon_amount = value.amount if value is not None else None
            deal.lottery_coupon_days = value.valid_days if value is not None else None
        elif name == "auto_fill":
            deal.auto_fill_seats = value.seats if value is not None else None
            deal.auto_fill_funded_by = value.funded_by.value if value is not None else None
        else:
            setattr(deal, name, value)
    # The options must still fit the deal as it now stands, whichever of its fields changed.
    _refuse_voucher_terms(voucher_terms_of(deal), deal.vertical, deal.ends_at)
    _refuse_reward(leader_reward_of(deal))
    _refuse_flash_sale(deal.flash_sale, deal.per_user_limit)
    _refuse_lottery(
        deal.lottery_winners, lottery_coupon_of(deal), deal.team_size, deal.group_price_amount
    )
    _refuse_pickup_terms(pickup_terms_of(deal), deal.vertical, deal.voucher is not None)
    _refuse_mechanics(
        ladder=ladder_of(deal),
        tipping_point=deal.tipping_point,
        auto_fill=auto_fill_of(deal),
        team_size=deal.team_size,
        group_price=deal.group_price_amount,
        stock=deal.stock,
        lottery_winners=deal.lottery_winners,
    )
    if "ends_at" in changes:
        _teams_follow_the_end(session, deal)
    deal.updated_at = utc_now()
    session.flush()
    return deal


# A team's window never runs past its deal's end (a team starts with the earlier of the two),
# and full, paid teams of an untipped deal wait for its tipping point until that end
# (domain/ladder.py): when the end moves, the waiting teams move with it, and any other forming
# team whose window now runs past it ends with the deal. Without the second rule a team that had
# waited, then lost a member, kept the old end as its window: moved earlier, the deal ended while
# the team, and the payment held for its remaining seat, went on forming. The deal's row is
# written first in the same transaction, so a team that starts waiting meanwhile (under the
# deal's lock) reads the new end. (The teams' table as this module may name it: teams are a
# sibling feature.)
_TEAMS = table(
    "teams",
    column("deal_id", String()),
    column("status", String()),
    column("paid", Integer()),
    column("team_size", Integer()),
    column("expires_at", UtcDateTime()),
)


def _teams_follow_the_end(session: Session, deal: Deal) -> None:
    session.flush()
    forming = (_TEAMS.c.deal_id == deal.id, _TEAMS.c.status == "forming")
    if deal.tipping_point is not None and deal.tipped_at is None:
        session.execute(
            update(_TEAMS)
            .where(*forming, _TEAMS.c.paid == _TEAMS.c.team_size)
            .values(expires_at=deal.ends_at)
        )
    session.execute(
        update(_TEAMS)
        .where(*forming, _TEAMS.c.expires_at > deal.ends_at)
        .values(expires_at=deal.ends_at)
    )


def change_deal_status(
    session: Session, principal: Principal, deal_id: str, action: str, *, reason: str | None = None
) -> Deal:
    """Publish, pause or end a deal; publishing needs an approved merchant and a future end.

    Operators may also ``moderate`` a live or paused deal (it takes no joins, leaves public
    lists, and its staff cannot publish it again) and ``unmoderate`` it (back to paused).
    The change goes into the audit log with ``reason`` (the consoles ask for one).
    """
    if action in MODERATION_ACTIONS and not principal.is_operator:
        raise Forbidden("Only platform operators moderate deals.", code="operator_only")
    deal = _managed_deal(session, principal, deal_id)
    new_status = next_deal_status(DealStatus(deal.status), action, operator=principal.is_operator)
    now = utc_now()
    if new_status == DealStatus.LIVE:
        merchant = get_merchant(session, deal.merchant_id)
        if merchant.status != MerchantStatus.APPROVED:
            raise Conflict(
                "The merchant must be approved by an operator before its deals go live.",
                code="merchant_not_approved",
            )
        if deal.ends_at <= now:
            raise Conflict(
                "This deal's end has passed; move ends_at into the future first.",
                code="deal_expired",
            )
        deal.published_at = deal.published_at or now
        if deal.lottery_winners is not None and deal.lottery_seed is None:
            # Committed before the first seat can be taken (domain/lottery.py).
            deal.lottery_seed = lottery.new_seed()
            deal.lottery_commitment = lottery.commitment(deal.lottery_seed)
    deal.status = new_status.value
    deal.updated_at = now
    session.flush()
    auditlog.record_action(
        session,
        principal,
        action=action,
        target_kind=auditlog.TargetKind.DEAL,
        target_id=deal.id,
        merchant_id=deal.merchant_id,
        reason=reason,
    )
    return deal


def list_deals(
    session: Session,
    principal: Principal | None,
    filters: DealFilters,
    *,
    cursor: str | None,
    limit: int,
) -> list[Deal]:
    """Deals in ``filters.sort`` order (newest first by default), ``limit + 1`` rows so the
    caller knows whether more follow; :func:`deal_cursor` gives the cursor after a row.

    The public sees live deals by default and may ask for paused or ended ones, never those of a
    suspended merchant; drafts and moderated deals are listed only for a merchant the caller
    manages (and moderated ones for operators across merchants: their queue).
    """
    key, descending = _sort_key(filters.sort)
    if key is None:
        order: tuple[Any, ...] = (Deal.id.desc(),)
    elif descending:
        order = (key.desc(), Deal.id.desc())
    else:
        order = (key.asc(), Deal.id.asc())
    query = select(Deal).order_by(*order).limit(limit + 1)
    status = filters.status
    operator = principal is not None and principal.is_operator
    if (
        status in (DealStatus.DRAFT, DealStatus.MODERATED)
        and not (status == DealStatus.MODERATED and operator)
        and (
            filters.merchant_id is None
            or principal is None
            or not principal.can_manage(filters.merchant_id)
        )
    ):
        raise Forbidden(
            f"{status.value.title()} deals are listed only for a merchant you manage: "
            "pass its merchant_id.",
            code="not_merchant_staff",
        )
    manages = (
        filters.merchant_id is not None
        and principal is not None
        and principal.can_manage(filters.merchant_id)
    )
    if status is None:
        if not manages:
            query = query.where(Deal.status == DealStatus.LIVE.value)
    else:
        query = query.where(Deal.status == status.value)
    if not (manages or operator):
        # A suspended merchant sells nothing, so the public is shown none of its deals.
        query = query.where(Deal.merchant_suspended.is_(False))
    if filters.merchant_id is not None:
        query = query.where(Deal.merchant_id == filters.merchant_id)
    if filters.vertical is not None:
        query = query.where(Deal.vertical == filters.vertical.value)
    if filters.text:
        pattern = (
            "%" + filters.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        )
        query = query.where(
            or_(
                Deal.title.ilike(pattern, escape="\\"),
                Deal.description.ilike(pattern, escape="\\"),
            )
        )
    if filters.country is not None:
        query = query.where(
            Deal.merchant_id.in_(select(Merchant.id).where(Merchant.country == filters.country))
        )
    if filters.currency is not None:
        query = query.where(Deal.currency == filters.currency)
    if filters.market is not None:
        country, currency = filters.market
        local = Deal.merchant_id.in_(select(Merchant.id).where(Merchant.country == country))
        query = query.where(or_(local, Deal.currency == currency) if currency else local)
    if cursor is not None:
        query = query.where(_after(filters.sort, cursor))
    return list(session.scalars(query))


def _discount_bps(deal: Any) -> Any:
    # Integer basis points off the list price: the same integer division on both databases.
    return (deal.list_price_amount - deal.group_price_amount) * 10000 // deal.list_price_amount


def _sort_key(sort: DealSort) -> tuple[Any, bool]:
    """The column a sort orders by (None: the id alone) and whether it runs high to low."""
    if sort == DealSort.ENDING_SOON:
        return Deal.ends_at, False
    if sort == DealSort.DISCOUNT:
        return _discount_bps(Deal), True
    if sort == DealSort.POPULAR:
        return Deal.committed, True
    return None, True


def deal_cursor(sort: DealSort, deal: Deal) -> str:
    """The cursor that continues a list in ``sort`` order after ``deal``."""
    if sort == DealSort.ENDING_SOON:
        return encode_cursor(f"{deal.ends_at.isoformat()}~{deal.id}")
    if sort == DealSort.DISCOUNT:
        return encode_cursor(f"{_discount_bps(deal)}~{deal.id}")
    if sort == DealSort.POPULAR:
        return encode_cursor(f"{deal.committed}~{deal.id}")
    return encode_cursor(deal.id)


def _after(sort: DealSort, cursor: str) -> ColumnElement[bool]:
    """Rows after the cursor's in ``sort`` order (keyset pagination: no offsets to drift)."""
    value = decode_cursor(cursor)
    key, descending = _sort_key(sort)
    if key is None:
        return Deal.id < value
    raw, _, last_id = value.rpartition("~")
    try:
        if not raw or "_" not in last_id:
            raise ValueError(value)
        bound: Any = (
            ensure_utc(datetime.fromisoformat(raw)) if sort == DealSort.ENDING_SOON else int(raw)
        )
    except ValueError as exc:
        raise InvalidInput(
            "The cursor is not one this API returned for this sort; start again without it.",
            code="invalid_cursor",
            extra={"errors": [{"field": "cursor", "message": "not a valid cursor"}]},
        ) from exc
    if descending:
        return or_(key < bound, and_(key == bound, Deal.id < last_id))
    return or_(key > bound, and_(key == bound, Deal.id > last_id))


def deal_to_change(session: Session, principal: Principal, deal_id: str) -> Deal:
    """A deal the caller may change now, refused as ``update_deal`` refuses, so that a caller
    can check before doing costly work for a change."""
    deal = _managed_deal(session, principal, deal_id)
    if deal.status == DealStatus.ENDED:
        raise Conflict("An ended deal cannot be changed.", code="deal_not_editable")
    return deal
