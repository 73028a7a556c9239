"""The OAuth consent page, ``/oauth/authorize``: a signed-in person sees which app asks for
what, and allows it for one of their shops (merchant staff) or for their own account, or denies.

Authlib checks the request (client, registered redirect URI, scopes, PKCE) before the page is
shown and again when it is answered. A request whose redirect URI is not registered is never
sent anywhere: the page says what is wrong.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from pintuan.apps import oauth
from pintuan.apps.api import captured
from pintuan.errors import AppError, Forbidden
from pintuan.kit.routing import Router
from pintuan.web.kit import queries
from pintuan.web.kit.csrf import CsrfProtected
from pintuan.web.kit.forms import form_fields, run_form_write
from pintuan.web.kit.rendering import render
from pintuan.web.kit.security import CONTENT_SECURITY_POLICY
from pintuan.web.kit.services import services_of
from pintuan.web.kit.session import LoggedIn

router = Router()

# The authorization request's own parameters, carried through the consent form unchanged.
OAUTH_FIELDS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
)


def _refused(error: oauth.ConsentRefused) -> AppError:
    reason = error.error.description or error.error.error
    return AppError(
        f"This authorization request cannot be granted: {reason}.",
        code="invalid_authorization_request",
        status=400,
        title="The authorization request is not valid",
    )


@router.get("/oauth/authorize", response_class=HTMLResponse)
async def consent_page(request: Request, principal: LoggedIn) -> Response:
    services = services_of(request)
    captured_request = await captured(request)

    def work(session: Session) -> tuple[oauth.Consent, dict[str, str]]:
        found = oauth.consent(session, services.settings, captured_request, principal.user_id)
        return found, queries.merchant_names(session, sorted(principal.merchant_ids))

    try:
        found, shops = await services.db.read(work)
    except oauth.ConsentRefused as refused:
        if refused.answer is not None and refused.answer.location:
            return RedirectResponse(refused.answer.location, status_code=302)
        raise _refused(refused) from None
    context: dict[str, Any] = {
        "app": found.app,
        "scopes": found.scopes,
        "redirect_uri": found.redirect_uri,
        "shops": sorted(shops.items(), key=lambda item: item[1]),
        "fields": {name: request.query_params.get(name, "") for name in OAUTH_FIELDS},
    }
    page = await render(request, "developers/consent.html", context)
    # Answering the form redirects the browser to the app, and a policy of form-action 'self'
    # would stop that redirect: this page alone may also send its form on to the app's origin.
    page.headers["content-security-policy"] = CONTENT_SECURITY_POLICY.replace(
        "form-action 'self'", f"form-action 'self' {_origin(found.redirect_uri)}"
    )
    return page


def _origin(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}"


@router.post("/oauth/authorize", response_class=HTMLResponse, dependencies=[CsrfProtected])
async def answer_consent(request: Request, principal: LoggedIn) -> Response:
    services = services_of(request)
    fields = await form_fields(request)
    grant_for = fields.get("grant_for", "")
    if grant_for and not principal.is_staff_of(grant_for):
        raise Forbidden(
            "You can only install apps on shops you work for.", code="not_merchant_staff"
        )
    allowed = fields.get("decision") == "allow"
    grantee = oauth.Grantee(principal.user_id, grant_for or None) if allowed else None
    captured_request = oauth.CapturedRequest(
        method="GET",
        uri=services.settings.base_url.rstrip("/") + "/oauth/authorize",
        headers={},
        query=[(name, fields[name]) for name in OAUTH_FIELDS if fields.get(name)],
    )

    def work(session: Session) -> dict[str, str]:
        try:
            answer = oauth.authorization_response(
                session, services.settings, captured_request, grantee
            )
        except oauth.ConsentRefused as refused:
            if refused.answer is None or not refused.answer.location:
                raise _refused(refused) from None
            answer = refused.answer
        return {"location": answer.location or "/"}

    outcome = await run_form_write(request, services, principal, work)
    return RedirectResponse(outcome["location"], status_code=303)
