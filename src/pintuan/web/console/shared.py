"""What the merchant and operator consoles share: status words, list pages, notices, and the
dashboard's charts in the viewer's language.

The consoles' strings live in their own catalogue, ``locales/<locale>/LC_MESSAGES/console.po``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Generic, TypeVar
from urllib.parse import parse_qsl, urlencode

from babel.dates import format_skeleton, format_timedelta
from babel.numbers import format_compact_currency, format_percent
from fastapi import Request
from markupsafe import Markup

from pintuan.kit.money import exponent
from pintuan.kit.pagination import encode_cursor
from pintuan.teams.reports import Dashboard
from pintuan.web.console.charts import Point, bar_chart, rate_chart
from pintuan.web.kit.i18n import N_, gettext, money_text

PAGE_SIZE = 25
NOTHING = "\u2013"  # an en dash: no figure to show

DEAL_STATUSES: dict[str, str] = {
    "draft": N_("Draft"),
    "live": N_("Live"),
    "paused": N_("Paused"),
    "ended": N_("Ended"),
    "moderated": N_("Stopped by operators"),
}
TEAM_STATUSES: dict[str, str] = {
    "forming": N_("Forming"),
    "succeeded": N_("Succeeded"),
    "failed": N_("Failed"),
}
SEAT_STATUSES: dict[str, str] = {
    "held": N_("Held, awaiting payment"),
    "paid": N_("Paid, team forming"),
    "confirmed": N_("Confirmed"),
    "released": N_("Released, never paid"),
    "refunded": N_("Refunded to shopper"),
}
PAYMENT_STATUSES: dict[str, str] = {
    "requires_action": N_("Awaiting payer"),
    "authorized": N_("Authorised (held)"),
    "captured": N_("Captured"),
    "voided": N_("Voided"),
    "charged": N_("Charged"),
    "refunded": N_("Refunded"),
    "failed": N_("Declined"),
}
PENDING_ACTIONS: dict[str, str] = {
    "capture": N_("capture owed"),
    "void": N_("void owed"),
    "refund": N_("refund owed"),
    "poll": N_("asking the provider"),
}
REFUND_STATES: dict[str, str] = {
    "owed": N_("Owed"),
    "failing": N_("Failing"),
    "done": N_("Done"),
}
REFUND_REASONS: dict[str, str] = {
    "team_failed": N_("Team did not fill"),
    "shopper_cancelled": N_("Shopper cancelled"),
    "paid_too_late": N_("Paid after the hold ran out"),
    "duplicate_payment": N_("Paid twice"),
}
REFUND_ACTIONS: dict[str, str] = {
    "void": N_("Release the hold"),
    "refund": N_("Refund the charge"),
}
MERCHANT_STATUSES: dict[str, str] = {
    "pending": N_("Pending approval"),
    "approved": N_("Approved"),
    "suspended": N_("Suspended"),
}
ROLES: dict[str, str] = {
    "shopper": N_("Shopper"),
    "merchant": N_("Merchant staff"),
    "operator": N_("Operator"),
}
VERTICALS: dict[str, str] = {
    "goods": N_("Goods"),
    "food": N_("Food"),
    "movies": N_("Movies"),
    "travel": N_("Travel"),
    "local": N_("Local services"),
}
AUDIT_INVARIANTS: dict[str, str] = {
    "1 team capacity": N_("1. A team never holds more seats than its size"),
    "2 deal stock": N_("2. A deal never commits more units than its stock"),
    "3 per-user limit": N_("3. Per-shopper limits hold"),
    "4 a team ends once, whole": N_("4. A team ends once, with all its seats"),
    "5 no money in limbo": N_("5. No money in limbo"),
}
# What a console page says after a redirect (``?done=<key>``); only these keys show.
DONE_NOTICES: dict[str, str] = {
    "refunded": N_("The refund is recorded; the shopper sees it in their orders."),
    "created": N_("The deal is saved as a draft."),
    "saved": N_("Your changes are saved."),
    "publish": N_("The deal is live."),
    "pause": N_("The deal is paused: no new teams or joins until it is published again."),
    "end": N_("The deal has ended."),
    "approve": N_("The merchant is approved."),
    "suspend": N_("The merchant is suspended."),
    "audited": N_("The audit has run."),
    "explained": N_("The finding is marked explained."),
    "fixed": N_("The finding is marked fixed."),
    "moderate": N_(
        "The deal is stopped: no joins, hidden from shoppers, until operators release it."
    ),
    "unmoderate": N_("The deal is released and paused; its merchant may publish it again."),
    "disable": N_("The user is disabled and signed out everywhere."),
    "enable": N_("The user may log in again."),
    "pictures_added": N_("The pictures are added."),
    "picture_moved": N_("The picture is moved."),
    "picture_removed": N_("The picture is removed."),
    "merchant_created": N_("The merchant is registered and waits for approval."),
    "application_approved": N_(
        "The application is approved: the merchant exists and the applicant is its staff."
    ),
    "application_rejected": N_("The application is rejected; the applicant sees your reason."),
}
# What the audit log calls each action.
AUDIT_ACTIONS: dict[str, str] = {
    "create": N_("Created"),
    "approve": N_("Approved"),
    "suspend": N_("Suspended"),
    "publish": N_("Published"),
    "pause": N_("Paused"),
    "end": N_("Ended"),
    "moderate": N_("Stopped"),
    "unmoderate": N_("Released"),
    "reject": N_("Rejected"),
    "refund": N_("Refunded"),
}
AUDIT_TARGETS: dict[str, str] = {
    "merchant": N_("Merchant"),
    "deal": N_("Deal"),
    "application": N_("Application"),
}
APPLICATION_STATUSES: dict[str, str] = {
    "pending": N_("Waiting for review"),
    "approved": N_("Approved"),
    "rejected": N_("Rejected"),
}
AUDIT_LOG_SIZE = 20

STATUS_TONES: dict[str, str] = {
    "live": "good",
    "succeeded": "good",
    "confirmed": "good",
    "approved": "good",
    "done": "good",
    "captured": "good",
    "charged": "good",
    "failed": "bad",
    "ended": "bad",
    "suspended": "bad",
    "moderated": "bad",
    "failing": "bad",
    "refunded": "bad",
    "released": "bad",
}


def done_notice(request: Request, locale: str) -> str | None:
    key = request.query_params.get("done", "")
    return gettext(locale, DONE_NOTICES[key]) if key in DONE_NOTICES else None


def with_done(url: str, done: str) -> str:
    """``url`` with ``done=<key>`` in place of any earlier one, for the notice after a form."""
    path, _, query = url.partition("?")
    kept = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "done"]
    return path + "?" + urlencode([*kept, ("done", done)])


def choice(value: str | None, allowed: Sequence[str] | Mapping[str, str]) -> str | None:
    """``value`` when it is one of ``allowed``, else None (a hand-edited URL shows everything)."""
    return value if value and value in allowed else None


def clean_text(value: str | None, limit: int = 100) -> str | None:
    text = (value or "").strip()[:limit]
    return text or None


RowT = TypeVar("RowT")


@dataclass(frozen=True)
class Listing(Generic[RowT]):
    """One page of a console list and the address of the next page (same filters)."""

    rows: list[RowT]
    next_url: str | None
    first_url: str | None


def listing(
    request: Request,
    rows: Sequence[RowT],
    limit: int,
    id_of: Callable[[RowT], str],
    *,
    path: str | None = None,
) -> Listing[RowT]:
    """Turn ``limit + 1`` rows into one page; the next page keeps this page's filters.

    ``path`` is the list's own address when the page answers a form posted elsewhere (the
    pages of the list are read with GET there, not from the form's address)."""
    shown = list(rows[:limit])
    base = path or request.url.path
    query = {k: v for k, v in request.query_params.items() if k not in ("cursor", "done")}
    next_url = None
    if len(rows) > limit and shown:
        next_url = base + "?" + urlencode({**query, "cursor": encode_cursor(id_of(shown[-1]))})
    first_url = None
    if request.query_params.get("cursor"):
        first_url = base + ("?" + urlencode(query) if query else "")
    return Listing(shown, next_url, first_url)


# ---------------------------------------------------------------------------- dashboard charts


def duration_text(seconds: int | None, locale: str) -> str:
    if seconds is None:
        return NOTHING
    return str(format_timedelta(seconds, threshold=1.1, locale=locale))


def rate_text(rate: float | None, locale: str) -> str:
    return NOTHING if rate is None else str(format_percent(rate, locale=locale))


def _axis_money(currency: str, locale: str) -> Callable[[float], str]:
    scale = 10 ** exponent(currency)

    def text(value: float) -> str:
        major = value / scale
        if major >= 1000:
            return str(format_compact_currency(major, currency, locale=locale))
        return money_text(round(value), currency, locale)

    return text


# Two drawings of each chart: a narrow one for phones and a wide one for larger screens, so
# that its words stay readable; the style sheet shows one of them (the other is not rendered,
# so assistive technology meets each chart once).
NARROW = (360, 260)
WIDE = (960, 300)


@dataclass(frozen=True)
class ChartPair:
    narrow: Markup
    wide: Markup


def dashboard_charts(board: Dashboard, locale: str) -> dict[str, ChartPair]:
    """The sales chart (bars, the merchant's currency) and the success-rate chart."""
    currency = board.currency

    def day_label(day: date) -> str:
        return str(format_skeleton("MMMd", day, locale=locale))

    first, last = day_label(board.first_day), day_label(board.last_day)
    sales_points = [
        Point(
            day_label(s.day), s.amount(currency), money_text(s.amount(currency), currency, locale)
        )
        for s in board.sales
    ]
    sales_title = gettext(locale, N_("Sales per day"))
    sales_description = gettext(
        locale,
        N_(
            "Confirmed sales in %(currency)s for each business day from %(first)s to "
            "%(last)s (%(zone)s); %(total)s in all."
        ),
    ) % {
        "currency": currency,
        "first": first,
        "last": last,
        "zone": board.time_zone,
        "total": money_text(board.total_sales(currency), currency, locale),
    }
    rate_points = [
        Point(
            day_label(o.day),
            o.success_rate,
            gettext(locale, N_("%(rate)s: %(succeeded)d of %(ended)d teams succeeded"))
            % {
                "rate": rate_text(o.success_rate, locale),
                "succeeded": o.succeeded,
                "ended": o.ended,
            }
            if o.ended
            else gettext(locale, N_("no team ended")),
        )
        for o in board.outcomes
    ]
    rates_title = gettext(locale, N_("Team success rate per day"))
    rates_description = gettext(
        locale,
        N_(
            "Share of the teams that ended each day which filled in time, from %(first)s "
            "to %(last)s; days on which no team ended are left blank. Overall: %(rate)s."
        ),
    ) % {"first": first, "last": last, "rate": rate_text(board.success_rate, locale)}

    def sales(size: tuple[int, int], suffix: str) -> Markup:
        return bar_chart(
            sales_points,
            chart_id=f"sales-chart{suffix}",
            title=sales_title,
            description=sales_description,
            format_value=_axis_money(currency, locale),
            least_top=100,  # minor units: every tick is then a whole amount of money
            width=size[0],
            height=size[1],
        )

    def rates(size: tuple[int, int], suffix: str) -> Markup:
        return rate_chart(
            rate_points,
            chart_id=f"rate-chart{suffix}",
            title=rates_title,
            description=rates_description,
            format_rate=lambda value: rate_text(value, locale),
            width=size[0],
            height=size[1],
        )

    return {
        "sales": ChartPair(sales(NARROW, "-narrow"), sales(WIDE, "-wide")),
        "rates": ChartPair(rates(NARROW, "-narrow"), rates(WIDE, "-wide")),
    }
