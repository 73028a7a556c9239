"""The shopper's side of fulfilment: the address book (add, edit, delete, default), choosing the
delivery address of a seat of goods, confirming receipt, and what the team and orders pages show
of it (the address block and the order's timeline).

Forms call the same service functions as the API; an address with several wrong fields shows
every error at once, each by its field, in the viewer's language.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from pintuan.deals.models import Deal
from pintuan.domain.addresses import COUNTRIES, FIELDS, FORMATS, address_lines
from pintuan.domain.deals import Vertical
from pintuan.domain.roles import Principal
from pintuan.errors import AppError
from pintuan.fulfilment import service as fulfilment
from pintuan.fulfilment.models import Address
from pintuan.kit.routing import Router
from pintuan.kit.time import utc_now
from pintuan.teams import reads as team_reads
from pintuan.teams.models import Seat
from pintuan.web.kit.csrf import CsrfProtected
from pintuan.web.kit.errors import ERROR_MESSAGES, error_message
from pintuan.web.kit.forms import form_fields, run_form_write
from pintuan.web.kit.i18n import N_, gettext, request_locale
from pintuan.web.kit.rendering import render
from pintuan.web.kit.services import services_of
from pintuan.web.kit.session import LoggedIn, safe_next

router = Router(include_in_schema=False)

BOOK = "/me/addresses"

FIELD_LABELS: dict[str, str] = {
    "recipient": N_("Recipient"),
    "phone": N_("Phone"),
    "country": N_("Country"),
    "postcode": N_("Postcode"),
    "region": N_("State, province or prefecture"),
    "city": N_("City"),
    "district": N_("District"),
    "line1": N_("Street address"),
    "line2": N_("Flat, floor, building (optional)"),
}
COUNTRY_NAMES: dict[str, str] = {
    "CN": N_("China"),
    "DE": N_("Germany"),
    "FR": N_("France"),
    "GB": N_("United Kingdom"),
    "ID": N_("Indonesia"),
    "JP": N_("Japan"),
    "SG": N_("Singapore"),
    "US": N_("United States"),
}
REASONS: dict[str, str] = {
    "required": N_("Required."),
    "too_long": N_("Too long."),
    "invalid_characters": N_("Remove the control characters."),
    "phone_format": N_("Enter a phone number of 6 to 15 digits, e.g. +1 415 555 0100."),
    "unknown_region": N_("Enter the two-letter code of the state, e.g. CA."),
    "unknown_country": N_("Choose a country we deliver to."),
}
POSTCODE_REASON = N_("Not a postcode of this country; it looks like %(example)s.")
STEPS: dict[str, str] = {
    "paid": N_("Paid"),
    "team_succeeded": N_("Team complete"),
    "address": N_("Delivery address chosen"),
    "shipped": N_("Shipped"),
    "received": N_("Received"),
}


def _field_errors(refused: AppError, country: str, locale: str) -> dict[str, str]:
    errors: dict[str, str] = {}
    for problem in refused.extra.get("errors", []):
        name, reason = str(problem.get("field")), str(problem.get("reason"))
        if reason == "postcode_format" and country in FORMATS:
            text = gettext(locale, POSTCODE_REASON) % {"example": FORMATS[country].postcode_example}
        else:
            text = gettext(locale, REASONS.get(reason, N_("This is not valid.")))
        errors.setdefault(name, text)
    return errors


def _lines_of(address: Address) -> list[str]:
    return address_lines({name: getattr(address, name) or "" for name in FIELDS})


def _labels() -> dict[str, Any]:
    return {
        "address_lines": _lines_of,
        "field_labels": FIELD_LABELS,
        "country_names": COUNTRY_NAMES,
        "countries": COUNTRIES,
        "formats": FORMATS,
        "fields": FIELDS,
        "steps": STEPS,
    }


# ---------------------------------------------------------------------------- the book


@router.get(BOOK, response_class=HTMLResponse)
async def address_book(request: Request, principal: LoggedIn) -> Response:
    """The shopper's addresses, the default first."""
    rows = await services_of(request).db.read(fulfilment.list_addresses, principal.user_id)
    return await render(request, "shopper/addresses.html", {"addresses": rows, **_labels()})


@router.get(BOOK + "/new", response_class=HTMLResponse)
async def new_address(
    request: Request, principal: LoggedIn, country: str | None = None, next: str | None = None
) -> Response:
    """The form for a new address, with the fields of the chosen country."""
    chosen = country if country in FORMATS else _guess_country(principal)
    return await _address_form(request, None, {"country": chosen}, {}, safe_next(next, BOOK))


def _guess_country(principal: Principal) -> str:
    zone = principal.time_zone
    for prefix, country in (
        ("Asia/Shanghai", "CN"),
        ("Asia/Tokyo", "JP"),
        ("Asia/Singapore", "SG"),
        ("Asia/Jakarta", "ID"),
        ("Europe/London", "GB"),
        ("Europe/Berlin", "DE"),
        ("Europe/Paris", "FR"),
        ("America/", "US"),
    ):
        if zone.startswith(prefix):
            return country
    return "CN" if principal.locale.startswith("zh") else "US"


async def _address_form(
    request: Request,
    address_id: str | None,
    values: dict[str, Any],
    errors: dict[str, str],
    next_url: str,
    status_code: int = 200,
) -> Response:
    typed_country = str(values.get("country") or "").upper()
    country = typed_country if typed_country in FORMATS else "US"
    context = {
        "address_id": address_id,
        "values": values,
        "errors": errors,
        "next": next_url,
        "country": country,
        "shown_fields": [f for f in FORMATS[country].fields if f != "country"],
        "required": FORMATS[country].required,
        "postcode_example": FORMATS[country].postcode_example,
        **_labels(),
    }
    return await render(request, "shopper/address_form.html", context, status_code=status_code)


@router.post(BOOK, response_class=HTMLResponse, dependencies=[CsrfProtected])
async def add_address(request: Request, principal: LoggedIn) -> Response:
    """Save a new address; every wrong field is shown at once."""
    fields = await form_fields(request)
    typed = {name: fields.get(name, "") for name in FIELDS}
    next_url = safe_next(fields.get("next"), BOOK)
    make_default = fields.get("is_default") == "on"

    def work(session: Session) -> dict[str, str]:
        address = fulfilment.add_address(
            session, principal.user_id, typed, utc_now(), make_default=make_default
        )
        return {"id": address.id}

    return await _save(request, principal, None, typed, next_url, work)


@router.get(BOOK + "/{address_id}", response_class=HTMLResponse)
async def edit_address(
    request: Request, address_id: str, principal: LoggedIn, next: str | None = None
) -> Response:
    """The form to change one address."""
    address = await services_of(request).db.read(
        fulfilment.get_address, principal.user_id, address_id
    )
    values: dict[str, Any] = {name: getattr(address, name) for name in FIELDS}
    values["is_default"] = address.is_default
    return await _address_form(request, address_id, values, {}, safe_next(next, BOOK))


@router.post(BOOK + "/{address_id}", response_class=HTMLResponse, dependencies=[CsrfProtected])
async def save_address(request: Request, address_id: str, principal: LoggedIn) -> Response:
    """Save changes to an address; orders already using it keep their own copy."""
    fields = await form_fields(request)
    typed = {name: fields.get(name, "") for name in FIELDS}
    next_url = safe_next(fields.get("next"), BOOK)
    make_default = fields.get("is_default") == "on"

    def work(session: Session) -> dict[str, str]:
        address = fulfilment.update_address(
            session, principal.user_id, address_id, typed, utc_now(), make_default=make_default
        )
        return {"id": address.id}

    return await _save(request, principal, address_id, typed, next_url, work)


async def _save(
    request: Request,
    principal: Principal,
    address_id: str | None,
    typed: dict[str, Any],
    next_url: str,
    work: Any,
) -> Response:
    locale = request_locale(request, principal)
    try:
        await run_form_write(request, services_of(request), principal, work)
    except AppError as refused:
        if refused.status == 404 or refused.status >= 500:
            raise
        errors = _field_errors(refused, str(typed.get("country", "")).upper(), locale)
        if not errors:
            errors["_form"] = error_message(refused, locale)
        return await _address_form(
            request, address_id, typed, errors, next_url, status_code=refused.status
        )
    return RedirectResponse(next_url, status_code=303)


@router.post(BOOK + "/{address_id}/delete", dependencies=[CsrfProtected])
async def delete_address(request: Request, address_id: str, principal: LoggedIn) -> Response:
    """Delete an address; orders already using it keep their own copy."""

    def work(session: Session) -> dict[str, str]:
        fulfilment.delete_address(session, principal.user_id, address_id)
        return {"deleted": address_id}

    await run_form_write(request, services_of(request), principal, work)
    return RedirectResponse(BOOK, status_code=303)


@router.post(BOOK + "/{address_id}/default", dependencies=[CsrfProtected])
async def default_address(request: Request, address_id: str, principal: LoggedIn) -> Response:
    """Offer this address first at checkout."""
    await run_form_write(
        request,
        services_of(request),
        principal,
        lambda s: {"id": fulfilment.make_default(s, principal.user_id, address_id).id},
    )
    return RedirectResponse(BOOK, status_code=303)


# ---------------------------------------------------------------------------- a seat


@router.post("/seats/{seat_id}/address", dependencies=[CsrfProtected])
async def choose_address(request: Request, seat_id: str, principal: LoggedIn) -> Response:
    """Deliver the seat of goods to the chosen address, then back to its team's page."""
    fields = await form_fields(request)
    address_id = fields.get("address_id", "")

    def work(session: Session) -> dict[str, str]:
        shipment = fulfilment.choose_address(
            session, principal.user_id, seat_id, address_id, utc_now()
        )
        return {"seat_id": shipment.seat_id}

    return await _seat_action(request, principal, seat_id, work, "address")


@router.post("/seats/{seat_id}/received", dependencies=[CsrfProtected])
async def confirm_receipt(request: Request, seat_id: str, principal: LoggedIn) -> Response:
    """The shopper says the parcel arrived."""

    def work(session: Session) -> dict[str, str]:
        fulfilment.confirm_receipt(session, principal.user_id, seat_id, utc_now())
        return {"seat_id": seat_id}

    return await _seat_action(request, principal, seat_id, work, "received")


async def _seat_action(
    request: Request, principal: Principal, seat_id: str, work: Any, done: str
) -> Response:
    """Run a seat's form; back to where it came from (its team page, or the orders), with the
    refusal's reason in words when there is one."""
    services = services_of(request)
    seat = await services.db.read(team_reads.owned_seat, principal.user_id, seat_id)
    back = safe_next((await form_fields(request)).get("next"), f"/teams/{quote(seat.team_id)}")
    try:
        await run_form_write(request, services, principal, work)
    except AppError as refused:
        if refused.status == 404 and refused.code == "seat_not_found":
            raise
        # The code, never words, in the address: the page says it in the viewer's language, and
        # a crafted link cannot put text of its own on the page.
        return _back(back, {"delivery_error": refused.code})
    return _back(back, {"delivery": done})


def _back(url: str, query: dict[str, str]) -> RedirectResponse:
    path, _, _ = url.partition("#")
    joiner = "&" if "?" in path else "?"
    return RedirectResponse(f"{path}{joiner}{urlencode(query)}#delivery", status_code=303)


# ---------------------------------------------------------------------------- for other pages


DELIVERY_NOTICES: dict[str, str] = {
    "address": N_("Your delivery address is saved on the order."),
    "received": N_("Thank you: the order is marked as received."),
}


def delivery_messages(request: Request, locale: str) -> dict[str, str | None]:
    """The notice or refusal a seat's form came back with (``?delivery=`` or
    ``?delivery_error=``), in the viewer's language; unknown words show nothing."""
    done = request.query_params.get("delivery", "")
    code = request.query_params.get("delivery_error", "")
    error = gettext(locale, ERROR_MESSAGES[code]) if code in ERROR_MESSAGES else None
    notice = gettext(locale, DELIVERY_NOTICES[done]) if done in DELIVERY_NOTICES else None
    return {"delivery_notice": notice, "delivery_error": error}


def delivery_of_seat(
    session: Session, principal: Principal | None, seat: Seat | None, deal: Deal
) -> dict[str, Any] | None:
    """What the team page shows of the viewer's seat of goods: the address choice or the copy on
    the order, the timeline, and confirming receipt. None for other verticals and visitors."""
    if principal is None or seat is None or deal.vertical != Vertical.GOODS.value:
        return None
    if deal.pickup_unclaimed_days is not None:
        return None  # collected at a pickup point (web/shopper/pickups.py)
    found = fulfilment.fulfilments_of_seats(session, [seat.id]).get(seat.id)
    book: list[Address] = (
        fulfilment.list_addresses(session, principal.user_id)
        if found is not None and found.can_choose_address
        else []
    )
    return {"seat": seat, "fulfilment": found, "book": book, **_labels()}


def delivery_labels() -> dict[str, Any]:
    """What the order timeline's template needs from here."""
    return _labels()
