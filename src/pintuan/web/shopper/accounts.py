"""Pages of accounts: log in, sign up, log out, account settings and the language switcher.

They call the same service functions as ``/v1/sessions`` and ``/v1/signup``, with the same
attempt limits, and set the same session cookie.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session

from pintuan.accounts import service as accounts
from pintuan.accounts.api import count_attempts, verify_login
from pintuan.accounts.dependencies import SESSION_COOKIE
from pintuan.accounts.schemas import LoginIn, ProfileIn, SignupIn
from pintuan.config import Environment
from pintuan.errors import AppError
from pintuan.kit.http import client_address
from pintuan.kit.routing import Router
from pintuan.kit.time import is_time_zone
from pintuan.web.kit.csrf import CsrfProtected
from pintuan.web.kit.errors import error_message
from pintuan.web.kit.forms import form_fields
from pintuan.web.kit.i18n import (
    LANG_COOKIE,
    LOCALES,
    N_,
    TZ_COOKIE,
    gettext,
    locale_of_tag,
    request_locale,
    tag_of_locale,
)
from pintuan.web.kit.rendering import render
from pintuan.web.kit.resume import ACTION_PARAM, read_action
from pintuan.web.kit.services import services_of
from pintuan.web.kit.session import (
    LoggedIn,
    PagePrincipal,
    clear_session_cookie,
    forget_page_principal,
    safe_next,
    set_session_cookie,
)

router = Router(include_in_schema=False)

_YEAR = 365 * 86400
# What to say about a field the account schemas refused.
FIELD_MESSAGES = {
    "email": N_("Enter a valid email address."),
    "password": N_("The password needs at least 10 characters."),
    "display_name": N_("Enter a name of 1 to 80 characters."),
    "time_zone": N_("Choose a time zone from the list, e.g. Asia/Shanghai."),
    "locale": N_("Choose one of the languages offered."),
}


def _field_errors(error: ValidationError, locale: str) -> dict[str, str]:
    errors: dict[str, str] = {}
    for problem in error.errors():
        name = str(problem["loc"][0]) if problem["loc"] else "form"
        errors.setdefault(name, gettext(locale, FIELD_MESSAGES.get(name, N_("This is not valid."))))
    return errors


def _remember_choices(response: Response, request: Request, locale: str, time_zone: str) -> None:
    """Keep the language and zone in cookies too, so they hold after logging out."""
    secure = services_of(request).settings.env is Environment.PROD
    for name, value in ((LANG_COOKIE, locale), (TZ_COOKIE, time_zone)):
        response.set_cookie(name, value, max_age=_YEAR, samesite="lax", secure=secure, path="/")


# ---------------------------------------------------------------------------- log in


def _kept(request: Request, token: str | None) -> dict[str, Any]:
    """The action a log-in or sign-up form carries through (see ``web.kit.resume``)."""
    return {"action": token} if read_action(request, token) is not None else {}


def _after_log_in(request: Request, next_url: str, token: str | None) -> str:
    """Where a new session goes: to finish the kept action, else back to ``next_url``."""
    if token and read_action(request, token) is not None:
        return "/continue?" + urlencode({ACTION_PARAM: token})
    return next_url


@router.get("/login", response_class=HTMLResponse)
async def login_page(
    request: Request, principal: PagePrincipal, next: str = "/", action: str | None = None
) -> Response:
    if principal is not None:
        return RedirectResponse(_after_log_in(request, safe_next(next), action), status_code=303)
    return await render(
        request, "login.html", {"next": safe_next(next), "values": {}, **_kept(request, action)}
    )


@router.post("/login", response_class=HTMLResponse, dependencies=[CsrfProtected])
async def login(request: Request, principal: PagePrincipal) -> Response:
    fields = await form_fields(request)
    next_url = safe_next(fields.get("next"))
    locale = request_locale(request, principal)
    values = {"email": fields.get("email", "")}
    kept = _kept(request, fields.get(ACTION_PARAM))
    services = services_of(request)
    try:
        body = LoginIn(email=fields.get("email", ""), password=fields.get("password", ""))
    except ValidationError as invalid:
        return await render(
            request,
            "login.html",
            {"next": next_url, "values": values, "errors": _field_errors(invalid, locale), **kept},
            status_code=422,
        )
    try:
        user_id = await verify_login(request, services, body)
    except AppError as refused:
        page = await render(
            request,
            "login.html",
            {"next": next_url, "values": values, "error": error_message(refused, locale), **kept},
            status_code=refused.status,
        )
        page.headers.update(refused.headers)
        return page
    days = services.settings.session_days
    secret = await services.db.run(lambda s: accounts.start_web_session(s, user_id, days=days))
    response = RedirectResponse(
        _after_log_in(request, next_url, fields.get(ACTION_PARAM)), status_code=303
    )
    set_session_cookie(response, secret, services.settings)
    return response


# ---------------------------------------------------------------------------- sign up


@router.get("/signup", response_class=HTMLResponse)
async def signup_page(
    request: Request, principal: PagePrincipal, next: str = "/", action: str | None = None
) -> Response:
    if principal is not None:
        return RedirectResponse(_after_log_in(request, safe_next(next), action), status_code=303)
    return await render(
        request, "signup.html", {"next": safe_next(next), "values": {}, **_kept(request, action)}
    )


@router.post("/signup", response_class=HTMLResponse, dependencies=[CsrfProtected])
async def signup(request: Request, principal: PagePrincipal) -> Response:
    fields = await form_fields(request)
    next_url = safe_next(fields.get("next"))
    locale = request_locale(request, principal)
    time_zone = fields.get("time_zone") or request.cookies.get(TZ_COOKIE) or "UTC"
    if not is_time_zone(time_zone):
        time_zone = "UTC"
    values = {k: fields.get(k, "") for k in ("email", "display_name")}
    context: dict[str, Any] = {
        "next": next_url,
        "values": values,
        **_kept(request, fields.get(ACTION_PARAM)),
    }
    try:
        body = SignupIn(
            email=fields.get("email", ""),
            password=fields.get("password", ""),
            display_name=fields.get("display_name", ""),
            locale=tag_of_locale(locale),
            time_zone=time_zone,
        )
    except ValidationError as invalid:
        context["errors"] = _field_errors(invalid, locale)
        return await render(request, "signup.html", context, status_code=422)
    services = services_of(request)
    try:
        await count_attempts(
            services,
            [(f"signup:address:{client_address(request)}", services.settings.signups_per_address)],
        )
        password_hash = await services.passwords.hash_in_turn(body.password)
        days = services.settings.session_days

        def work(session: Session) -> str:
            user = accounts.create_user(
                session,
                email=body.email,
                password_hash=password_hash,
                display_name=body.display_name,
                locale=body.locale,
                time_zone=body.time_zone,
            )
            return accounts.start_web_session(session, user.id, days=days)

        secret = await services.db.run(work)
    except AppError as refused:
        if refused.code == "email_taken":
            context["errors"] = {"email": error_message(refused, locale)}
        else:
            context["error"] = error_message(refused, locale)
        page = await render(request, "signup.html", context, status_code=refused.status)
        page.headers.update(refused.headers)
        return page
    target = next_url if next_url != "/" else "/?notice=signed_up"
    response = RedirectResponse(
        _after_log_in(request, target, fields.get(ACTION_PARAM)), status_code=303
    )
    set_session_cookie(response, secret, services.settings)
    return response


# ---------------------------------------------------------------------------- log out


@router.post("/logout", dependencies=[CsrfProtected])
async def logout(request: Request) -> Response:
    secret = request.cookies.get(SESSION_COOKIE)
    if secret:
        await services_of(request).db.run(accounts.end_web_session, secret)
    response = RedirectResponse("/?notice=logged_out", status_code=303)
    clear_session_cookie(response)
    return response


# ---------------------------------------------------------------------------- settings


def _zone_names() -> list[str]:
    from zoneinfo import available_timezones

    return sorted(z for z in available_timezones() if "/" in z and not z.startswith("Etc/"))


@router.get("/account", response_class=HTMLResponse)
async def account_page(request: Request, principal: LoggedIn) -> Response:
    user = await services_of(request).db.read(accounts.get_user, principal.user_id)
    values = {
        "display_name": user.display_name,
        "locale": locale_of_tag(user.locale) or "en",
        "time_zone": user.time_zone,
        "email": user.email,
    }
    return await render(
        request, "account.html", {"values": values, "zones": _zone_names(), "all_locales": LOCALES}
    )


@router.post("/account", response_class=HTMLResponse, dependencies=[CsrfProtected])
async def save_account(request: Request, principal: LoggedIn) -> Response:
    fields = await form_fields(request)
    chosen_locale = locale_of_tag(fields.get("locale")) or ""
    values = {
        "display_name": fields.get("display_name", ""),
        "locale": chosen_locale,
        "time_zone": fields.get("time_zone", ""),
    }
    locale = request_locale(request, principal)
    try:
        profile = ProfileIn(
            display_name=values["display_name"],
            locale=tag_of_locale(chosen_locale) if chosen_locale else "invalid",
            time_zone=values["time_zone"],
        )
    except ValidationError as invalid:
        user = await services_of(request).db.read(accounts.get_user, principal.user_id)
        values["email"] = user.email
        return await render(
            request,
            "account.html",
            {
                "values": values,
                "zones": _zone_names(),
                "all_locales": LOCALES,
                "errors": _field_errors(invalid, locale),
            },
            status_code=422,
        )
    changes = profile.model_dump(exclude_none=True)
    await services_of(request).db.run(
        lambda s: accounts.update_profile(s, principal.user_id, **changes)
    )
    forget_page_principal(request)
    response = RedirectResponse("/account?notice=settings_saved", status_code=303)
    _remember_choices(response, request, chosen_locale, values["time_zone"])
    return response


# ---------------------------------------------------------------------------- language


@router.post("/language", dependencies=[CsrfProtected])
async def switch_language(request: Request, principal: PagePrincipal) -> Response:
    """The switcher: a cookie for everybody, and the account's language when signed in."""
    fields = await form_fields(request)
    locale = locale_of_tag(fields.get("locale"))
    response = RedirectResponse(safe_next(fields.get("next")), status_code=303)
    if locale is None:
        return response
    if principal is not None:
        tag = tag_of_locale(locale)
        await services_of(request).db.run(
            lambda s: accounts.update_profile(s, principal.user_id, locale=tag)
        )
    secure = services_of(request).settings.env is Environment.PROD
    response.set_cookie(LANG_COOKIE, locale, max_age=_YEAR, samesite="lax", secure=secure, path="/")
    return response
