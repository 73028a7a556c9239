"""The merchant console's deal form: text fields in, the deals API's own checks, messages out.

A person types prices in major units (``19.99``) and times on the merchant's wall clock; the
form turns them into what the deals API takes (minor units, aware UTC instants) and runs the
same validation as ``POST /v1/deals`` and ``PATCH /v1/deals/{id}``: the request schemas first,
then the deal rules inside the service. Every refusal is tied to the field it is about, in the
viewer's language, so the page can show it next to that field.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from pintuan.deals.models import Deal
from pintuan.deals.schemas import DealIn, DealPatch, LotteryCouponIn
from pintuan.deals.service import DealDraft, ladder_of, leader_reward_of, lottery_coupon_of
from pintuan.domain.coupons import CouponTerms, terms_problems
from pintuan.domain.deals import DealTerms, FieldProblem, check_deal_terms
from pintuan.domain.ladder import Tier, ladder_problems, options_clash, tipping_problems
from pintuan.domain.lifecycle import DEAL_FIELDS_EDITABLE_WHEN_PUBLISHED, DealStatus
from pintuan.domain.lottery import winners_problems
from pintuan.domain.pickups import PickupTerms, pickup_terms_problems
from pintuan.domain.rewards import RewardKind
from pintuan.errors import AppError
from pintuan.kit.money import Money, MoneyError, exponent, max_amount
from pintuan.kit.time import ensure_utc
from pintuan.web.kit.i18n import N_, gettext, money_text

FIELDS = (
    "title",
    "description",
    "vertical",
    "list_price",
    "group_price",
    "leader_price",
    "new_shoppers_only",
    "allow_solo",
    "team_size",
    "team_window_minutes",
    "stock",
    "per_user_limit",
    "starts_at",
    "ends_at",
    "flash_sale",
    "referral_commission",
    "leader_reward",
    "leader_reward_amount",
    "leader_reward_percent",
    "lottery_winners",
    "lottery_coupon_amount",
    "lottery_coupon_days",
    "pickup_commission",
    "pickup_unclaimed_days",
    "ladder",
    "tipping_point",
    "auto_fill_seats",
    "auto_fill_funded_by",
)
CHECKBOXES = ("new_shoppers_only", "allow_solo", "flash_sale")
PRICES = ("list_price", "group_price", "leader_price")
INSTANTS = ("starts_at", "ends_at")
# Typed as a percentage of what a seat paid (``2.5``), sent to the API in basis points.
REFERRAL = "referral_commission"
REFERRAL_API = "referral_commission_bps"
# The deal's options: each is one object of the API (or null: the deal has none), typed in
# several fields of the form, all of which are read whenever one of them changes.
OPTIONS: dict[str, tuple[str, ...]] = {
    "leader_reward": ("leader_reward", "leader_reward_amount", "leader_reward_percent"),
    "lottery": ("lottery_winners", "lottery_coupon_amount", "lottery_coupon_days"),
    "pickup": ("pickup_commission", "pickup_unclaimed_days"),
    "ladder": ("ladder",),
    "tipping_point": ("tipping_point",),
    "auto_fill": ("auto_fill_seats", "auto_fill_funded_by"),
}
_OPTION_OF = {name: option for option, names in OPTIONS.items() for name in names}
# The API's names of fields the form calls otherwise, and the form field each is shown next to.
API_FIELDS: dict[str, str] = {
    REFERRAL_API: REFERRAL,
    "leader_reward.kind": "leader_reward",
    "leader_reward.amount": "leader_reward_amount",
    "leader_reward.basis_points": "leader_reward_percent",
    "lottery": "lottery_winners",
    "lottery.winners": "lottery_winners",
    # The coupon each seat a draw did not pick gets; a refusal of the whole is said at its amount.
    "lottery_coupon": "lottery_coupon_amount",
    "lottery.coupon": "lottery_coupon_amount",
    "lottery.coupon.amount": "lottery_coupon_amount",
    "lottery.coupon.valid_days": "lottery_coupon_days",
    # A deal is a pickup deal when it has days to collect in; a refusal of the whole is said there.
    "pickup": "pickup_unclaimed_days",
    "pickup.commission_bps": "pickup_commission",
    "pickup.unclaimed_days": "pickup_unclaimed_days",
    "auto_fill": "auto_fill_seats",
    "auto_fill.seats": "auto_fill_seats",
    "auto_fill.funded_by": "auto_fill_funded_by",
}
_LOCAL_FORMAT = "%Y-%m-%dT%H:%M"
# What the coupon's days field shows until the merchant changes it: the API's own default.
DEFAULT_COUPON_DAYS = str(LotteryCouponIn.model_fields["valid_days"].default)

# What to say when a field fails the request schema's limits (the same as the API's).
SCHEMA_MESSAGES: dict[str, str] = {
    "title": N_("Enter a title of 1 to 200 characters."),
    "description": N_("Keep the description under 10,000 characters."),
    "vertical": N_("Choose a category."),
    "list_price": N_("Enter the list price."),
    "group_price": N_("Enter the group price."),
    "leader_price": N_("Enter the leader's price, or leave it empty."),
    "new_shoppers_only": N_("Tick the box or leave it empty."),
    "allow_solo": N_("Tick the box or leave it empty."),
    "team_size": N_("A team has 2 to 100 members (1 only with a tipping point)."),
    "team_window_minutes": N_("A team has 5 to 10,080 minutes (a week) to fill."),
    "stock": N_("Stock is 1 to 10,000,000 units."),
    "per_user_limit": N_("A shopper may take 1 to 1,000 units."),
    "starts_at": N_("Enter the start as a date and time."),
    "ends_at": N_("Enter the end as a date and time."),
    "flash_sale": N_("Tick the box or leave it empty."),
    REFERRAL: N_("Enter a percentage from 0 to 30, with at most 2 decimals, such as 5 or 2.5."),
    "leader_reward": N_("Choose how the leader is rewarded, or no reward."),
    "leader_reward_amount": N_("Enter the amount the leader gets back, above zero."),
    "leader_reward_percent": N_(
        "Enter a percentage from 0.01 to 100, with at most 2 decimals, such as 10 or 12.5."
    ),
    "lottery_winners": N_(
        "Enter how many seats of each team win, from 1 to 99, or leave it empty."
    ),
    "lottery_coupon_amount": N_(
        "Enter the coupon's amount, above zero and below the group price, or leave it empty."
    ),
    "lottery_coupon_days": N_("Enter how many days the coupon is valid, from 1 to 365."),
    "pickup_commission": N_(
        "Enter a percentage from 0 to 30, with at most 2 decimals, such as 5 or 2.5."
    ),
    "pickup_unclaimed_days": N_(
        "Enter 1 to 30 days, or leave both pickup fields empty when the deal is not collected "
        "at pickup points."
    ),
    "ladder": N_(
        "Enter each further tier as size = price, separated by commas, such as "
        "5 = %(first)s, 10 = %(second)s: larger teams, lower prices."
    ),
    "tipping_point": N_("Enter how many paid seats the deal needs, at least 1, or leave it empty."),
    "auto_fill_seats": N_("Choose how many missing seats may be filled: none, 1 or 2."),
    "auto_fill_funded_by": N_("Choose whose budget fills them: yours or Pintuan's."),
}


@dataclass
class DealForm:
    """One submission of the deal form: what was typed, and what is wrong with it."""

    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    form_error: str | None = None

    @property
    def valid(self) -> bool:
        return not self.errors and self.form_error is None


# ---------------------------------------------------------------------------- text ⇄ values


def amount_text(amount: int | None, currency: str) -> str:
    """Minor units as the form shows them: ``1999`` USD → ``19.99``, ``1200`` JPY → ``1200``."""
    if amount is None:
        return ""
    return f"{Decimal(amount).scaleb(-exponent(currency)):f}"


def parse_amount(text: str, currency: str) -> int:
    """A typed price in major units as minor units; ``ValueError`` when it is not one.

    Spaces and apostrophes between digits are ignored; a lone comma is taken as the decimal
    point (``19,99``) since many countries write it so."""
    cleaned = re.sub(r"[\s']", "", text)
    if "," in cleaned and "." not in cleaned and cleaned.count(",") == 1:
        cleaned = cleaned.replace(",", ".")
    if not re.fullmatch(r"\d+(\.\d+)?", cleaned):
        raise ValueError("not a plain positive number")
    try:
        value = Decimal(cleaned).scaleb(exponent(currency))
    except InvalidOperation as exc:
        raise ValueError("not a number") from exc
    if value != value.to_integral_value():
        raise ValueError("too many decimals")
    return int(value)


def percent_text(bps: int) -> str:
    """Basis points as the form shows a percentage: ``1000`` → ``10``, ``250`` → ``2.5``."""
    return f"{Decimal(bps).scaleb(-2).normalize():f}"


def parse_percent(text: str) -> int:
    """A typed percentage (``5``, ``2.5``, ``2,5``, ``5 %``; empty is 0) as basis points;
    ``ValueError`` when it is not one of at most 2 decimals."""
    cleaned = re.sub(r"[\s%]", "", text)
    if not cleaned:
        return 0
    if "," in cleaned and "." not in cleaned and cleaned.count(",") == 1:
        cleaned = cleaned.replace(",", ".")
    if not re.fullmatch(r"\d+(\.\d+)?", cleaned):
        raise ValueError("not a plain positive number")
    value = Decimal(cleaned).scaleb(2)
    if value != value.to_integral_value():
        raise ValueError("too many decimals")
    return int(value)


def form_field(api_field: str) -> str:
    """The form field an API field name (``pickup.commission_bps``) is shown next to: that of
    its longest leading part the form names (``lottery.coupon.amount.currency`` is the
    coupon's amount), else its first part."""
    if api_field.startswith("ladder"):  # ladder[1].price: the one ladder field
        return "ladder"
    parts = api_field.split(".")
    for end in range(len(parts), 0, -1):
        leading = ".".join(parts[:end])
        if leading in API_FIELDS:
            return API_FIELDS[leading]
    return parts[0]


def local_text(value: datetime | None, time_zone: str) -> str:
    """An instant as a ``datetime-local`` value on the merchant's wall clock."""
    if value is None:
        return ""
    return ensure_utc(value).astimezone(ZoneInfo(time_zone)).strftime(_LOCAL_FORMAT)


def parse_local(text: str, time_zone: str) -> datetime:
    """A ``datetime-local`` value on the merchant's wall clock as an aware UTC instant."""
    naive = datetime.strptime(text.strip(), _LOCAL_FORMAT)  # noqa: DTZ007 - zone added next
    return naive.replace(tzinfo=ZoneInfo(time_zone)).astimezone(ZoneInfo("UTC"))


def ladder_text(tiers: tuple[Tier, ...] | None, currency: str) -> str:
    """A ladder's further tiers as the form shows them: ``5 = 15.90, 10 = 12.90``."""
    return ", ".join(f"{t.size} = {amount_text(t.price, currency)}" for t in tiers or ())


def parse_ladder(text: str, currency: str) -> list[dict[str, Any]]:
    """Typed tiers (``5 = 15.90, 10 = 12.90``; commas, semicolons or lines between them) as
    the API takes them; ``ValueError`` when one is not ``size = price``."""
    tiers = []
    for part in re.split(r"[;\n]|,(?=\s*\d+\s*[=:])", text):
        if not part.strip():
            continue
        size, sep, price = part.replace(":", "=").partition("=")
        if not sep or not size.strip().isdigit():
            raise ValueError("not size = price")
        tiers.append(
            {
                "size": int(size.strip()),
                "price": {"amount": parse_amount(price.strip(), currency), "currency": currency},
            }
        )
    return tiers


def values_of(deal: Deal, time_zone: str) -> dict[str, str]:
    """The form's text for an existing deal."""
    reward = leader_reward_of(deal)
    kind, value = (reward.kind.value, reward.value) if reward else ("", None)
    coupon = lottery_coupon_of(deal)
    return {
        "title": deal.title,
        "description": deal.description,
        "vertical": deal.vertical,
        "list_price": amount_text(deal.list_price_amount, deal.currency),
        "group_price": amount_text(deal.group_price_amount, deal.currency),
        "leader_price": amount_text(deal.leader_price_amount, deal.currency),
        "new_shoppers_only": "on" if deal.new_shoppers_only else "",
        "allow_solo": "on" if deal.allow_solo else "",
        "team_size": str(deal.team_size),
        "team_window_minutes": str(deal.team_window_minutes),
        "stock": str(deal.stock),
        "per_user_limit": str(deal.per_user_limit),
        "starts_at": local_text(deal.starts_at, time_zone),
        "ends_at": local_text(deal.ends_at, time_zone),
        "flash_sale": "on" if deal.flash_sale else "",
        REFERRAL: percent_text(deal.referral_commission_bps),
        "leader_reward": kind,
        "leader_reward_amount": amount_text(
            value if kind == RewardKind.FIXED else None, deal.currency
        ),
        "leader_reward_percent": percent_text(value or 0) if kind == RewardKind.PERCENT else "",
        "lottery_winners": str(deal.lottery_winners) if deal.lottery_winners is not None else "",
        "lottery_coupon_amount": amount_text(coupon.amount if coupon else None, deal.currency),
        "lottery_coupon_days": str(coupon.valid_days) if coupon else DEFAULT_COUPON_DAYS,
        "pickup_commission": percent_text(deal.pickup_commission_bps)
        if deal.pickup_commission_bps is not None
        else "",
        "pickup_unclaimed_days": str(deal.pickup_unclaimed_days)
        if deal.pickup_unclaimed_days is not None
        else "",
        "ladder": ladder_text(ladder_of(deal), deal.currency),
        "tipping_point": str(deal.tipping_point) if deal.tipping_point is not None else "",
        "auto_fill_seats": str(deal.auto_fill_seats) if deal.auto_fill_seats is not None else "",
        "auto_fill_funded_by": deal.auto_fill_funded_by or "merchant",
    }


def editable_fields(status: DealStatus) -> frozenset[str]:
    """Which fields the form lets a person change for a deal in ``status``."""
    if status == DealStatus.DRAFT:
        return frozenset(FIELDS)
    if status == DealStatus.ENDED:
        return frozenset()
    # Pictures have their own forms (deal_images.py), not a field of this one.
    return DEAL_FIELDS_EDITABLE_WHEN_PUBLISHED - {"image_urls"}


# ---------------------------------------------------------------------------- parsing


def _api_values(
    form: DealForm, names: tuple[str, ...], currency: str, time_zone: str, locale: str
) -> dict[str, Any]:
    """The typed text of ``names`` in the shapes the deals API's schemas take."""
    api: dict[str, Any] = {}
    for name in names:
        text = form.values.get(name, "").strip()
        if name in PRICES:
            if not text:
                if name != "leader_price":
                    form.errors[name] = gettext(locale, SCHEMA_MESSAGES[name])
                continue
            try:
                api[name] = {"amount": parse_amount(text, currency), "currency": currency}
            except ValueError:
                form.errors[name] = _amount_message(currency, locale)
        elif name in INSTANTS:
            try:
                api[name] = parse_local(text, time_zone)
            except ValueError:
                form.errors[name] = gettext(locale, SCHEMA_MESSAGES[name])
        elif name in CHECKBOXES:
            api[name] = text in ("on", "true", "1")
        elif name == REFERRAL:
            try:
                api[REFERRAL_API] = parse_percent(text)
            except ValueError:
                form.errors[name] = gettext(locale, SCHEMA_MESSAGES[name])
        elif name not in _OPTION_OF:
            api[name] = text
    for option in dict.fromkeys(_OPTION_OF[name] for name in names if name in _OPTION_OF):
        api[option] = _OPTION_READERS[option](form, currency, locale)
    return api


def _amount_message(currency: str, locale: str) -> str:
    return gettext(
        locale, N_("Enter an amount like %(example)s, with at most %(digits)d decimals.")
    ) % {"example": example_price(currency), "digits": exponent(currency)}


def _typed(form: DealForm, name: str) -> str:
    return form.values.get(name, "").strip()


def _leader_reward(form: DealForm, currency: str, locale: str) -> dict[str, Any] | None:
    """The leader reward as the API takes it. Only the value its kind needs is read: a person
    who switches the kind need not empty the other field first (it is empty once saved)."""
    kind, amount, percent = (_typed(form, name) for name in OPTIONS["leader_reward"])
    if kind not in ("", *RewardKind):
        form.errors["leader_reward"] = gettext(locale, SCHEMA_MESSAGES["leader_reward"])
        return None
    if kind == RewardKind.FIXED:
        if not amount:
            form.errors["leader_reward_amount"] = gettext(
                locale, SCHEMA_MESSAGES["leader_reward_amount"]
            )
            return None
        try:
            return {"kind": kind, "amount": parse_amount(amount, currency)}
        except ValueError:
            form.errors["leader_reward_amount"] = _amount_message(currency, locale)
            return None
    if kind == RewardKind.PERCENT:
        try:
            return {"kind": kind, "basis_points": parse_percent(percent)}
        except ValueError:
            form.errors["leader_reward_percent"] = gettext(
                locale, SCHEMA_MESSAGES["leader_reward_percent"]
            )
            return None
    return {"kind": kind} if kind else None


def _count(form: DealForm, name: str, locale: str) -> int | None:
    """A typed whole number; empty is None, anything else not a number is refused next to
    its field."""
    typed = _typed(form, name)
    if not typed:
        return None
    if not typed.isdigit():
        form.errors[name] = gettext(locale, SCHEMA_MESSAGES[name])
        return None
    return int(typed)


def _lottery(form: DealForm, currency: str, locale: str) -> dict[str, Any] | None:
    """The lottery as the API takes it; no number of winners: no lottery (a coupon typed
    without one is refused by the rules, see _lottery_problems)."""
    winners = _count(form, "lottery_winners", locale)
    if winners is None:
        return None
    coupon = _lottery_coupon(form, currency, locale)
    return {"winners": winners} if coupon is None else {"winners": winners, "coupon": coupon}


def _lottery_coupon(form: DealForm, currency: str, locale: str) -> dict[str, Any] | None:
    """The coupon of the seats a draw did not pick, as the API takes it; no amount: none (the
    days then do not matter, and empty days are the API's default)."""
    amount, days = _typed(form, "lottery_coupon_amount"), _typed(form, "lottery_coupon_days")
    if not amount:
        return None
    coupon: dict[str, Any] = {}
    try:
        coupon["amount"] = {"amount": parse_amount(amount, currency), "currency": currency}
    except ValueError:
        form.errors["lottery_coupon_amount"] = _amount_message(currency, locale)
    if days.isdigit() or not days:
        coupon["valid_days"] = int(days or DEFAULT_COUPON_DAYS)
    else:
        form.errors["lottery_coupon_days"] = gettext(locale, SCHEMA_MESSAGES["lottery_coupon_days"])
    return coupon if len(coupon) == 2 else None


def _pickup(form: DealForm, currency: str, locale: str) -> dict[str, Any] | None:
    """The pickup terms as the API takes them; both fields empty: not a pickup deal (an empty
    commission of a pickup deal is none)."""
    commission, days = _typed(form, "pickup_commission"), _typed(form, "pickup_unclaimed_days")
    if not commission and not days:
        return None
    terms: dict[str, Any] = {}
    try:
        terms["commission_bps"] = parse_percent(commission)
    except ValueError:
        form.errors["pickup_commission"] = gettext(locale, SCHEMA_MESSAGES["pickup_commission"])
    if days.isdigit():
        terms["unclaimed_days"] = int(days)
    else:
        form.errors["pickup_unclaimed_days"] = gettext(
            locale, SCHEMA_MESSAGES["pickup_unclaimed_days"]
        )
    return terms if len(terms) == 2 else None


def _ladder(form: DealForm, currency: str, locale: str) -> list[dict[str, Any]] | None:
    """The ladder's further tiers as the API takes them; empty: no ladder."""
    typed = _typed(form, "ladder")
    if not typed:
        return None
    try:
        return parse_ladder(typed, currency)
    except ValueError:
        form.errors["ladder"] = ladder_message(currency, locale)
        return None


def ladder_message(currency: str, locale: str) -> str:
    return gettext(locale, SCHEMA_MESSAGES["ladder"]) % {
        "first": example_price(currency),
        "second": ladder_example(currency),
    }


def ladder_example(currency: str) -> str:
    """A second, lower sample price for the ladder's hints (``9.99`` beside ``19.99``)."""
    return example_price(currency, 999)


def _tipping_point(form: DealForm, currency: str, locale: str) -> int | None:
    """The tipping point as the API takes it; empty: none."""
    return _count(form, "tipping_point", locale)


def _auto_fill(form: DealForm, currency: str, locale: str) -> dict[str, Any] | None:
    """The auto-fill as the API takes it; no seats: none (the payer then does not matter)."""
    seats, funded_by = _typed(form, "auto_fill_seats"), _typed(form, "auto_fill_funded_by")
    if not seats:
        return None
    if seats not in ("1", "2"):
        form.errors["auto_fill_seats"] = gettext(locale, SCHEMA_MESSAGES["auto_fill_seats"])
        return None
    if funded_by not in ("merchant", "platform"):
        form.errors["auto_fill_funded_by"] = gettext(locale, SCHEMA_MESSAGES["auto_fill_funded_by"])
        return None
    return {"seats": int(seats), "funded_by": funded_by}


_OPTION_READERS: dict[str, Any] = {
    "leader_reward": _leader_reward,
    "lottery": _lottery,
    "pickup": _pickup,
    "ladder": _ladder,
    "tipping_point": _tipping_point,
    "auto_fill": _auto_fill,
}


def _schema_errors(form: DealForm, invalid: ValidationError, currency: str, locale: str) -> None:
    for problem in invalid.errors():
        name = form_field(".".join(str(part) for part in problem["loc"]))
        if name == "ladder":
            form.errors.setdefault(name, ladder_message(currency, locale))
        elif name in SCHEMA_MESSAGES:
            form.errors.setdefault(name, gettext(locale, SCHEMA_MESSAGES[name]))
        else:
            form.form_error = gettext(locale, N_("Some of the details are not valid."))


def parse_new_deal(
    values: dict[str, str], merchant_id: str, currency: str, time_zone: str, locale: str
) -> tuple[DealForm, DealDraft | None]:
    """A new deal's form checked as ``POST /v1/deals`` checks its body; the draft when valid."""
    form = DealForm({name: values.get(name, "") for name in FIELDS})
    api = _api_values(form, FIELDS, currency, time_zone, locale)
    try:
        body = DealIn(merchant_id=merchant_id, **api)
    except ValidationError as invalid:
        _schema_errors(form, invalid, currency, locale)
        _rule_errors(form, currency, time_zone, locale)
        return form, None
    _rule_errors(form, currency, time_zone, locale)
    if form.errors:
        return form, None
    return form, body.to_draft()


def parse_deal_changes(
    values: dict[str, str], deal: Deal, time_zone: str, locale: str
) -> tuple[DealForm, dict[str, Any] | None]:
    """The fields that differ from ``deal``, checked as ``PATCH /v1/deals/{id}`` checks them;
    the changes in the service's shapes when valid. Fields the form did not send keep their
    value (a published deal's frozen fields are not sent)."""
    current = values_of(deal, time_zone)
    sent = {name: values.get(name, "") for name in FIELDS if name in values}
    # A browser does not send an unticked box at all (nor a disabled one: the frozen fields).
    for box in CHECKBOXES:
        if box not in values and box in editable_fields(DealStatus(deal.status)):
            sent[box] = ""
    form = DealForm({**current, **sent})
    changed = tuple(
        name for name in FIELDS if name in sent and sent[name].strip() != current[name].strip()
    )
    api = _api_values(form, changed, deal.currency, time_zone, locale)
    if "leader_price" in changed and not form.values.get("leader_price", "").strip():
        form.errors["leader_price"] = gettext(
            locale, N_("A leader's price cannot be removed once set; set it to the group price.")
        )
    try:
        patch = DealPatch(**api)
    except ValidationError as invalid:
        _schema_errors(form, invalid, deal.currency, locale)
        _rule_errors(form, deal.currency, time_zone, locale, committed=deal.committed)
        return form, None
    _rule_errors(form, deal.currency, time_zone, locale, committed=deal.committed)
    if form.errors:
        return form, None
    return form, patch.to_changes()


# Which typed fields each rule of check_deal_terms reads: a rule is only judged when all of
# them could be read, so a missing price is one message, not that plus a comparison with it.
_RULE_INPUTS: dict[str, tuple[str, ...]] = {
    "list_price": ("list_price",),
    "group_price": ("list_price", "group_price"),
    "leader_price": ("group_price", "leader_price"),
    "ends_at": ("starts_at", "ends_at"),
    "stock": ("stock",),
}


def _rule_errors(
    form: DealForm, currency: str, time_zone: str, locale: str, *, committed: int = 0
) -> None:
    """The deal rules (the service's own ``check_deal_terms``) on every field that could be
    read, added next to the fields the schema check did not already refuse; so a person sees
    every problem of the form after one submit, not the rules only once the rest is right."""
    read: dict[str, Any] = {}
    for name in PRICES:
        with contextlib.suppress(ValueError, MoneyError):
            read[name] = Money(parse_amount(form.values.get(name, ""), currency), currency)
    for name in INSTANTS:
        with contextlib.suppress(ValueError):
            read[name] = parse_local(form.values.get(name, ""), time_zone)
    if form.values.get("stock", "").strip().isdigit():
        read["stock"] = int(form.values["stock"].strip())
    placeholder_price = Money(1, currency)
    placeholder_time = datetime(2000, 1, 1, tzinfo=UTC)
    terms = DealTerms(
        list_price=read.get("list_price", placeholder_price),
        group_price=read.get("group_price", placeholder_price),
        starts_at=read.get("starts_at", placeholder_time),
        ends_at=read.get("ends_at", placeholder_time),
        stock=read.get("stock", committed),
        committed=committed,
        leader_price=read.get("leader_price"),
    )
    for problem in check_deal_terms(terms, currency):
        name = problem.field.split(".", 1)[0]
        if name in form.errors or not all(n in read for n in _RULE_INPUTS.get(name, (name,))):
            continue
        form.errors[name] = rule_message(problem.field, problem.message, currency, locale)
    # The options' own rules, as the service runs them, once their inputs could be read.
    problems: list[FieldProblem] = []
    winners, size = _typed(form, "lottery_winners"), _typed(form, "team_size")
    if winners.isdigit() and size.isdigit():
        problems += winners_problems(int(winners), int(size))
    problems += _lottery_problems(form, read, currency)
    if _typed(form, "pickup_unclaimed_days"):
        problems += pickup_terms_problems(PickupTerms(0, 1), _typed(form, "vertical"), False)
    problems += _mechanics_problems(form, read, currency)
    for problem in problems:
        form.errors.setdefault(
            form_field(problem.field),
            rule_message(problem.field, problem.message, currency, locale),
        )


def _lottery_problems(form: DealForm, read: dict[str, Any], currency: str) -> list[FieldProblem]:
    """The lottery coupon's rules, as the deals service runs them, on what could be read: it is
    given only by a lottery, and is worth less than the group price."""
    amount = _typed(form, "lottery_coupon_amount")
    if not amount:
        return []
    problems = []
    if not _typed(form, "lottery_winners"):
        problems.append(FieldProblem("lottery.coupon", "is given only by a lottery deal"))
    if "group_price" in read:
        with contextlib.suppress(ValueError):
            # Only the amount is judged here: the days' limits are the schema's check.
            terms = CouponTerms(parse_amount(amount, currency), int(DEFAULT_COUPON_DAYS))
            problems += terms_problems(terms, read["group_price"].amount, "lottery.coupon")
    return problems


def _mechanics_problems(form: DealForm, read: dict[str, Any], currency: str) -> list[FieldProblem]:
    """The ladder's and tipping point's rules, and the options that clash (domain/ladder.py), on
    what could be read."""
    ladder, tipping = _typed(form, "ladder"), _typed(form, "tipping_point")
    size, winners = _typed(form, "team_size"), _typed(form, "lottery_winners")
    if not size.isdigit():
        return []
    problems = options_clash(
        ladder=bool(ladder),
        tipping=bool(tipping),
        lottery=bool(winners),
        auto_fill=bool(_typed(form, "auto_fill_seats")),
        team_size=int(size),
    )
    if ladder and "group_price" in read:
        with contextlib.suppress(ValueError):
            tiers = [Tier(t["size"], t["price"]["amount"]) for t in parse_ladder(ladder, currency)]
            problems += ladder_problems(int(size), read["group_price"].amount, tiers)
    if tipping.isdigit() and "stock" in read:
        problems += tipping_problems(int(tipping), read["stock"])
    return problems


# ---------------------------------------------------------------------------- refusals

# The deal rules' messages (see domain/deals.py), said for people in their language.
_RULE_MESSAGES: tuple[tuple[str, str], ...] = (
    (
        r"must be larger than (\d+) and at most",
        N_(
            "Each further tier has more members than the one before (more than %(count)s), up "
            "to 100."
        ),
    ),
    (
        r"below the tier before's price",
        N_("Each further tier costs less than the one before, and more than zero."),
    ),
    (r"at most \d+ tiers beyond the first", N_("At most 5 further tiers.")),
    (r"a ladder deal cannot also be a lottery", N_("A ladder deal cannot also be a lottery.")),
    (
        r"a ladder deal cannot also have a tipping point",
        N_("A ladder deal cannot also have a tipping point."),
    ),
    (r"a team of one needs a tipping point", N_("A team of one needs a tipping point.")),
    (
        r"fills no seats",
        N_("A ladder, tipping point or lottery deal fills no seats."),
    ),
    (
        r"must be fewer than the team's size: a team needs a member",
        N_("Fill fewer seats than the team's size: a team needs a member."),
    ),
    (
        r"must be 1 to the stock \((\d+)\)",
        N_("The tipping point is 1 to the stock (%(count)s) paid seats."),
    ),
    (
        r"must be the merchant's currency",
        N_("Prices are in the merchant's currency, %(currency)s."),
    ),
    (r"must be between 1 and", N_("Enter an amount above zero and at most %(max)s.")),
    (r"must be below the list price", N_("The group price must be below the list price.")),
    (
        r"between 0 and the group price",
        N_("The leader's price is between zero and the group price."),
    ),
    (r"must be after starts_at", N_("The end must be after the start.")),
    (
        r"a flash sale sells one unit to each shopper",
        N_("A flash sale sells one unit to each shopper: set units per shopper to 1."),
    ),
    (
        r"cannot go below the (\d+) units",
        N_("Stock cannot go below the %(count)s units already taken."),
    ),
    (
        r"must be 1 to (\d+): fewer than the team's size",
        N_("Each team draws 1 to %(count)s winners: fewer than its size."),
    ),
    (
        r"is given only by a lottery deal",
        N_("A coupon for the seats not drawn needs a lottery: enter the winners per team too."),
    ),
    (
        r"at least 0\.01 and below the group price",
        N_("The coupon is worth more than zero and less than the group price."),
    ),
    (
        r"pickup points hand over goods",
        N_("Pickup points hand over goods: choose the category Goods."),
    ),
    (
        r"either collected at a pickup point or a voucher",
        N_("A deal with vouchers cannot also be collected at a pickup point."),
    ),
)
# Refusals of the whole form, by their stable code.
CODE_MESSAGES: dict[str, str] = {
    "merchant_suspended": N_("This merchant is suspended and cannot create deals."),
    "merchant_not_approved": N_(
        "An operator must approve this merchant before its deals can go live."
    ),
    "deal_expired": N_("This deal's end has passed; move the end into the future first."),
    "invalid_deal_transition": N_("This deal cannot do that in its current state."),
    "deal_not_editable": N_("A published deal keeps its prices and team terms."),
    "not_merchant_staff": N_("Only the merchant's staff may manage its deals."),
    "deal_not_found": N_("This deal does not exist."),
}


def rule_message(service_field: str, message: str, currency: str, locale: str) -> str:
    """A deal rule's refusal of one field, in ``locale``; unknown ones keep the service's
    English words rather than being hidden."""
    if form_field(service_field) == "lottery_coupon_days":
        # Its words ("must be 1 to 365") are those of other fields' limits too.
        return gettext(locale, SCHEMA_MESSAGES["lottery_coupon_days"])
    for pattern, text in _RULE_MESSAGES:
        found = re.search(pattern, message)
        if found is None:
            continue
        translated = gettext(locale, text)
        return translated % {
            "currency": currency,
            "max": money_text(max_amount(currency), currency, locale),
            "count": found.group(1) if found.groups() else "",
        }
    return message


def apply_refusal(form: DealForm, error: AppError, currency: str, locale: str) -> None:
    """Put the service's refusal on the form: each rule next to its field, the rest on top."""
    for problem in error.extra.get("errors", []):
        service_field = str(problem.get("field", ""))
        name = form_field(service_field)
        message = rule_message(service_field, str(problem.get("message", "")), currency, locale)
        if name in FIELDS:
            form.errors.setdefault(name, message)
        else:
            form.form_error = message
    for frozen in error.extra.get("fields", []):  # deal_not_editable names the frozen fields
        name = form_field(str(frozen))
        if name in FIELDS:
            form.errors.setdefault(
                name, gettext(locale, N_("This cannot change once the deal is published."))
            )
    if not form.errors or error.code != "validation_error":
        known = CODE_MESSAGES.get(error.code)
        form.form_error = gettext(locale, known) if known else error.detail


def example_price(currency: str, cents: int = 1999) -> str:
    """A sample price in ``currency`` for the form's hints (``19.99``, ``1999``, ``19.990``):
    ``cents`` hundredths of its major unit, or whole units where it has none."""
    return amount_text(cents * 10 ** max(exponent(currency) - 2, 0), currency)
