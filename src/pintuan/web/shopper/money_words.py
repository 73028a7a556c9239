"""Where a seat's money went, in words a shopper can check: to you, to the friend who paid,
or released without a charge.

A seat may be paid by its shopper or by a friend (代付), by a hold (voided when the team fails:
nothing is charged) or a charge (refunded), or back into a Pintuan balance at once. Orders, the
team page and notifications all say it with the sentences here, so that no page calls a
released hold "refunded" or tells a shopper that a friend's money came back to them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from babel.numbers import format_percent

from pintuan.deals.models import Deal
from pintuan.deals.service import leader_reward_of
from pintuan.domain.payments import PaymentStatus, ProviderAction, RefundTo
from pintuan.domain.refunds import RefundStatus
from pintuan.domain.rewards import BASIS_POINTS, RewardKind
from pintuan.payments.models import Payment
from pintuan.teams.models import Seat
from pintuan.web.kit.i18n import N_, gettext, money_text

# Payments that took money at some point (a hold or a charge), as opposed to a checkout that
# was never finished or was declined.
TOOK_MONEY = frozenset(
    {
        PaymentStatus.AUTHORIZED.value,
        PaymentStatus.CAPTURED.value,
        PaymentStatus.VOIDED.value,
        PaymentStatus.CHARGED.value,
        PaymentStatus.REFUNDED.value,
    }
)

# (how, done, to the viewer) → the sentence; ``how`` is hold, charge or wallet.
_BACK: dict[tuple[str, bool, bool], str] = {
    ("hold", True, True): N_("The hold of %(amount)s was released: nothing was charged."),
    ("hold", False, True): N_("The hold of %(amount)s is being released: nothing will be charged."),
    ("hold", True, False): N_(
        "The hold of %(amount)s that %(name)s placed for you was released: nothing was charged "
        "to %(name)s."
    ),
    ("hold", False, False): N_(
        "The hold of %(amount)s that %(name)s placed for you is being released: nothing will be "
        "charged to %(name)s."
    ),
    ("charge", True, True): N_("%(amount)s was refunded to you."),
    ("charge", False, True): N_("%(amount)s is on its way back to you."),
    ("charge", True, False): N_("%(amount)s went back to %(name)s, who paid for you."),
    ("charge", False, False): N_("%(amount)s is on its way back to %(name)s, who paid for you."),
    ("wallet", True, True): N_("%(amount)s went back to your Pintuan balance."),
    ("wallet", True, False): N_(
        "%(amount)s went back to the Pintuan balance of %(name)s, who paid for you."
    ),
}
_BACK[("wallet", False, True)] = _BACK[("wallet", True, True)]
_BACK[("wallet", False, False)] = _BACK[("wallet", True, False)]

SEAT_BADGES: dict[str, str] = {
    "held": N_("Waiting for your payment"),
    "paid": N_("Paid, waiting for the team"),
    "confirmed": N_("Confirmed"),
    "released": N_("Released: not paid in time"),
    "refunded": N_("Refunded"),
}
_RELEASED_WITH_TEAM = N_("Ended: the team did not fill")
_NOTHING_CHARGED = N_("Ended: nothing charged")
_MONEY_WENT_BACK = N_("Ended: the money went back")


@dataclass(frozen=True, slots=True)
class MoneyBack:
    """One payment's money going or gone back to whoever paid it."""

    amount: int
    currency: str
    how: str  # hold, charge or wallet
    done: bool
    payer_id: str


def money_back_of(payment: Payment) -> MoneyBack | None:
    """How this payment's money goes back, or None when none is going back."""
    status, pending = payment.status, payment.pending_action
    if status == PaymentStatus.VOIDED.value or pending == ProviderAction.VOID.value:
        how = "hold"
    elif status == PaymentStatus.REFUNDED.value or pending == ProviderAction.REFUND.value:
        how = "wallet" if payment.refund_to == RefundTo.WALLET.value else "charge"
        if payment.provider == "wallet":
            how = "wallet"
    else:
        return None
    done = status in (PaymentStatus.VOIDED.value, PaymentStatus.REFUNDED.value)
    return MoneyBack(payment.amount, payment.currency, how, done, payment.user_id)


def money_back_sentence(back: MoneyBack, *, to_viewer: bool, name: str, locale: str) -> str:
    """Where ``back`` went, said to the seat's shopper (``to_viewer``: they paid it)."""
    template = gettext(locale, _BACK[(back.how, back.done, to_viewer)])
    return template % {"amount": money_text(back.amount, back.currency, locale), "name": name}


@dataclass(frozen=True, slots=True)
class PaymentLine:
    amount: str
    provider: str
    state: str
    payer: str | None  # the friend who paid, when not the viewer


@dataclass(frozen=True, slots=True)
class SeatMoney:
    """What an order or a team page says about a seat's money."""

    badge: str
    tone: str  # good, bad or empty
    lines: list[PaymentLine]
    outcome: list[str]


_PAYMENT_STATES: dict[str, str] = {
    "authorized": N_("Amount held"),
    "captured": N_("Paid"),
    "voided": N_("Hold released, nothing charged"),
    "charged": N_("Charged"),
    "refunded": N_("Refunded"),
    "failed": N_("Declined"),
}
_PENDING: dict[str, str] = {
    "capture": N_("being collected"),
    "void": N_("hold being released"),
    "refund": N_("refund on its way"),
    "poll": N_("waiting for the provider's answer"),
}


def seat_money(
    seat: Seat,
    payments: Sequence[Payment],
    *,
    viewer_id: str,
    names: Mapping[str, str],
    team_status: str,
    now: datetime,
    locale: str,
) -> SeatMoney:
    """The badge, one line per payment and the sentences saying where the money went, for a
    seat seen by its shopper or by the friend who paid for it (who sees only their payments)."""
    owner = seat.user_id == viewer_id
    shown = [p for p in payments if owner or p.user_id == viewer_id]
    backs = [(p, back) for p in shown if (back := money_back_of(p)) is not None]
    lines = [
        PaymentLine(
            money_text(p.amount, p.currency, locale),
            p.provider,
            _payment_state(seat, p, payments, viewer_id, names, now, locale),
            None if p.user_id == viewer_id else names.get(p.user_id, ""),
        )
        for p in shown
    ]
    outcome = [
        money_back_sentence(
            back,
            to_viewer=p.user_id == viewer_id,
            name=names.get(p.user_id, ""),
            locale=locale,
        )
        for p, back in backs
    ]
    badge, tone = _badge(seat, [b for _, b in backs], team_status)
    if seat.status in ("released", "refunded") and not backs:
        outcome.append(gettext(locale, N_("Nothing was charged.")))
    return SeatMoney(gettext(locale, badge), tone, lines, outcome)


def _badge(seat: Seat, backs: Sequence[MoneyBack], team_status: str) -> tuple[str, str]:
    status = seat.status
    if status in ("paid", "confirmed"):
        return SEAT_BADGES[status], "good"
    if status == "held":
        return SEAT_BADGES[status], ""
    if status == "released":
        return (_RELEASED_WITH_TEAM if team_status == "failed" else SEAT_BADGES[status]), "bad"
    if status == "refunded":
        if backs and all(b.how == "hold" for b in backs):
            return _NOTHING_CHARGED, "bad"
        if backs and all(b.how != "hold" for b in backs):
            return SEAT_BADGES[status], "bad"
        return _MONEY_WENT_BACK, "bad"
    return SEAT_BADGES.get(status, status), ""


def _payment_state(
    seat: Seat,
    payment: Payment,
    payments: Sequence[Payment],
    viewer_id: str,
    names: Mapping[str, str],
    now: datetime,
    locale: str,
) -> str:
    status, pending = payment.status, payment.pending_action
    if status != PaymentStatus.REQUIRES_ACTION.value:
        text = gettext(locale, _PAYMENT_STATES.get(status, status))
        if pending and pending != ProviderAction.POLL.value:
            return _with_detail(text, gettext(locale, _PENDING[pending]), locale)
        return text
    still_held = seat.status == "held" and (
        seat.hold_expires_at is None or seat.hold_expires_at > now
    )
    if still_held:
        text = gettext(locale, N_("Not paid yet"))
        if pending == ProviderAction.POLL.value:
            return _with_detail(text, gettext(locale, _PENDING["poll"]), locale)
        return text
    # A checkout left open after the seat was paid another way, or ended: it was never used.
    # (Should its payer still finish it, that money goes back by itself.)
    other = next(
        (p for p in payments if p.id != payment.id and p.status in TOOK_MONEY),
        None,
    )
    if other is None:
        return gettext(locale, N_("Not used: the seat ended before it was paid."))
    if other.user_id == payment.user_id:
        return gettext(locale, N_("Not used: the seat was paid another way."))
    if other.user_id == viewer_id:
        return gettext(locale, N_("Not used: you paid for this seat instead."))
    return gettext(locale, N_("Not used: %(name)s paid for this seat instead.")) % {
        "name": names.get(other.user_id, "")
    }


def _with_detail(state: str, detail: str, locale: str) -> str:
    """``Amount held (being collected)``, with the brackets the language writes."""
    return gettext(locale, N_("%(state)s (%(detail)s)")) % {"state": state, "detail": detail}


# ---------------------------------------------------------------------------- a deal's options


def percent_words(bps: int, locale: str) -> str:
    """Basis points as a reader of ``locale`` writes a share: ``10%``, ``2.5%``."""
    return str(format_percent(Decimal(bps) / BASIS_POINTS, "#,##0.##%", locale=locale))


def leader_reward_sentence(deal: Deal, locale: str) -> str | None:
    """What the leader of each of the deal's teams that fills gets back, or None."""
    reward = leader_reward_of(deal)
    if reward is None:
        return None
    if reward.kind is RewardKind.FREE:
        return gettext(locale, N_("The leader of each team that fills gets their seat free."))
    back = (
        money_text(reward.value or 0, deal.currency, locale)
        if reward.kind is RewardKind.FIXED
        else percent_words(reward.value or 0, locale)
    )
    return gettext(locale, N_("The leader of each team that fills gets %(amount)s back.")) % {
        "amount": back
    }


# A lottery seat's outcome: (won, its refund done) → the sentence its shopper reads.
_LOTTERY_OUTCOMES: dict[tuple[bool, bool], str] = {
    (True, False): N_("Your seat won the lottery: your order goes ahead."),
    (False, True): N_("Your seat was not drawn, and was refunded in full."),
    (False, False): N_("Your seat was not drawn; it is being refunded in full."),
}
_LOTTERY_OUTCOMES[(True, True)] = _LOTTERY_OUTCOMES[(True, False)]


def lottery_outcome_sentence(won: bool, refund_status: str | None, locale: str) -> str:
    """Whether the viewer's seat of a lottery team won, or where its refund is
    (``refund_status``: of its ``lottery`` refund, None before the worker made it)."""
    return gettext(locale, _LOTTERY_OUTCOMES[(won, refund_status == RefundStatus.SUCCEEDED)])
