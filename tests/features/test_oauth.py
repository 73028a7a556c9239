"""OAuth 2 on the open platform: client credentials, authorization code with PKCE (S256 only),
refresh rotation, revocation, scopes, suspension, pseudonymous ids and the discovery document."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from fastapi.testclient import TestClient

from pintuan.domain.roles import Role
from pintuan.kit.time import clock
from pintuan.services import Services
from tests.apps_support import (
    approved_app,
    authorization_code,
    authorize_query,
    client_credentials,
    code_from,
    consent,
    pkce_pair,
    refresh,
    register_app,
    signed_in_browser,
    token_request,
    tokens_of,
)
from tests.factories import create_account, create_merchant

HTML = {"accept": "text/html"}


def _people(services: Services) -> tuple:
    developer = create_account(services)
    operator = create_account(services, role=Role.OPERATOR)
    return developer, operator


def _code(client: TestClient, app, person, challenge: str, **extra: str) -> str:
    browser = signed_in_browser(client, person)
    return code_from(consent(browser, authorize_query(app, challenge, **extra)))


def _redeem(client: TestClient, app, code: str, verifier: str):
    return token_request(
        client,
        app,
        grant_type="authorization_code",
        code=code,
        redirect_uri=app.redirect_uri,
        code_verifier=verifier,
    )


def test_client_credentials_token_calls_the_partner_api_as_the_app(
    client: TestClient, services: Services
) -> None:
    developer, operator = _people(services)
    app = approved_app(client, developer, operator)

    tokens = client_credentials(client, app, scope="offers:read")
    me = client.get("/v1/partner/me", headers=tokens.headers)

    assert tokens.access_token.startswith("pta_")
    assert tokens.refresh_token is None
    assert me.status_code == 200, me.text
    assert me.json() == {
        "app_id": app.id,
        "scopes": ["offers:read"],
        "merchant_id": None,
        "subject": None,
        "email": None,
        "display_name": None,
    }


def test_a_pending_app_gets_no_token(client: TestClient, services: Services) -> None:
    developer, _ = _people(services)
    app = register_app(client, developer)

    answer = token_request(client, app, grant_type="client_credentials")

    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_client"


def test_wrong_client_secret_is_refused(client: TestClient, services: Services) -> None:
    developer, operator = _people(services)
    app = approved_app(client, developer, operator)

    answer = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(app.client_id, app.client_secret + "x"),
    )

    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_client"


def test_a_merchant_installs_the_app_on_their_shop_with_pkce(
    client: TestClient, services: Services
) -> None:
    developer, operator = _people(services)
    shop = create_merchant(services.db)
    staff = create_account(services, role=Role.MERCHANT, merchant=shop)
    app = approved_app(client, developer, operator)

    tokens = authorization_code(client, app, staff, merchant_id=shop.id, scope="offers:write")
    me = client.get("/v1/partner/me", headers=tokens.headers).json()

    assert tokens.refresh_token
    assert tokens.refresh_token.startswith("ptr_")
    assert me["merchant_id"] == shop.id
    assert me["scopes"] == ["offers:write"]

    def installed(session):
        from pintuan.apps.models import AppInstallation

        return [(i.app_id, i.merchant_id, i.scopes) for i in session.query(AppInstallation)]

    assert services.db.run_sync(installed) == [(app.id, shop.id, ["offers:write"])]


def test_a_shopper_is_known_by_a_pseudonym_unless_profile_is_granted(
    client: TestClient, services: Services
) -> None:
    developer, operator = _people(services)
    shopper = create_account(services)
    first = approved_app(client, developer, operator)
    second = approved_app(client, developer, operator, name="Another")

    plain = client.get(
        "/v1/partner/me",
        headers=authorization_code(client, first, shopper, scope="offers:read").headers,
    ).json()
    again = client.get(
        "/v1/partner/me",
        headers=authorization_code(client, first, shopper, scope="offers:read").headers,
    ).json()
    elsewhere = client.get(
        "/v1/partner/me",
        headers=authorization_code(client, second, shopper, scope="offers:read").headers,
    ).json()
    with_profile = client.get(
        "/v1/partner/me",
        headers=authorization_code(client, first, shopper, scope="offers:read profile").headers,
    ).json()

    assert plain["email"] is None
    assert plain["display_name"] is None
    assert plain["subject"].startswith("sub_")
    assert shopper.user_id not in plain["subject"]
    assert again["subject"] == plain["subject"]
    assert elsewhere["subject"] != plain["subject"]
    assert with_profile["email"] == shopper.email
    assert with_profile["subject"] == plain["subject"]


def test_a_wrong_verifier_is_refused_and_the_code_still_cannot_be_guessed_around(
    client: TestClient, services: Services
) -> None:
    developer, operator = _people(services)
    shopper = create_account(services)
    app = approved_app(client, developer, operator)
    verifier, challenge = pkce_pair()
    code = _code(client, app, shopper, challenge)

    wrong = _redeem(client, app, code, pkce_pair()[0])
    missing = token_request(
        client, app, grant_type="authorization_code", code=code, redirect_uri=app.redirect_uri
    )

    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_grant"
    assert missing.status_code == 400
    assert missing.json()["error"] == "invalid_request"
    assert _redeem(client, app, code, verifier).status_code == 200


def test_plain_pkce_and_no_pkce_are_refused_at_the_consent_page(
    client: TestClient, services: Services
) -> None:
    developer, operator = _people(services)
    shopper = create_account(services)
    app = approved_app(client, developer, operator)
    browser = signed_in_browser(client, shopper)
    verifier, _ = pkce_pair()

    plain = authorize_query(app, verifier, code_challenge_method="plain")
    without = authorize_query(app, "x")
    del without["code_challenge"], without["code_challenge_method"]

    for query in (plain, without):
        answer = browser.get(
            "/oauth/authorize?" + urlencode(query), headers=HTML, follow_redirects=False
        )
        assert answer.status_code == 302
        params = parse_qs(urlsplit(answer.headers["location"]).query)
        assert params["error"] == ["invalid_request"]
        assert params["state"] == ["xyz"]


def test_a_reused_code_is_refused_and_revokes_the_tokens_it_gave(
    client: TestClient, services: Services
) -> None:
    developer, operator = _people(services)
    shopper = create_account(services)
    app = approved_app(client, developer, operator)
    verifier, challenge = pkce_pair()
    code = _code(client, app, shopper, challenge)
    tokens = tokens_of(_redeem(client, app, code, verifier))
    assert client.get("/v1/partner/me", headers=tokens.headers).status_code == 200

    replay = _redeem(client, app, code, verifier)

    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    assert client.get("/v1/partner/me", headers=tokens.headers).status_code == 401
    assert refresh(client, app, tokens.refresh_token or "").json()["error"] == "invalid_grant"


def test_an_unregistered_redirect_uri_is_never_sent_anywhere(
    client: TestClient, services: Services
) -> None:
    developer, operator = _people(services)
    shopper = create_account(services)
    app = approved_app(client, developer, operator)
    browser = signed_in_browser(client, shopper)
    _, challenge = pkce_pair()
    query = authorize_query(app, challenge, redirect_uri="https://evil.example.com/cb")

    page = browser.get("/oauth/authorize?" + urlencode(query), headers=HTML, follow_redirects=False)

    assert page.status_code == 400
    assert "location" not in page.headers
    assert "evil.example.com" not in page.text or "redirect" in page.text.lower()


def test_the_code_is_bound_to_its_redirect_uri(client: TestClient, services: Services) -> None:
    developer, operator = _people(services)
    shopper = create_account(services)
    app = approved_app(
        client,
        developer,
        operator,
        redirect_uris=["http://127.0.0.1:9/callback", "http://127.0.0.1:9/other"],
    )
    verifier, challenge = pkce_pair()
    code = _code(client, app, shopper, challenge)

    answer = token_request(
        client,
        app,
        grant_type="authorization_code",
        code=code,
        redirect_uri="http://127.0.0.1:9/other",
        code_verifier=verifier,
    )

    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"


def test_scope_escalation_is_refused_everywhere(client: TestClient, services: Services) -> None:
    developer, operator = _people(services)
    shopper = create_account(services)
    app = approved_app(client, developer, operator, scopes=["offers:read", "profile"])
    browser = signed_in_browser(client, shopper)
    _, challenge = pkce_pair()

    at_consent = browser.get(
        "/oauth/authorize?" + urlencode(authorize_query(app, challenge, scope="offers:write")),
        headers=HTML,
        follow_redirects=False,
    )
    by_credentials = token_request(
        client, app, grant_type="client_credentials", scope="offers:read offers:write"
    )
    narrow = authorization_code(client, app, shopper, scope="offers:read")
    by_refresh = token_request(
        client,
        app,
        grant_type="refresh_token",
        refresh_token=narrow.refresh_token or "",
        scope="offers:read profile",
    )

    assert parse_qs(urlsplit(at_consent.headers["location"]).query)["error"] == ["invalid_scope"]
    assert by_credentials.status_code == 400
    assert by_credentials.json()["error"] == "invalid_scope"
    assert by_refresh.status_code == 400
    assert by_refresh.json()["error"] == "invalid_scope"


def test_a_grant_without_a_scope_cannot_call_a_route_that_needs_it(
    client: TestClient, services: Services
) -> None:
    from fastapi import Depends, FastAPI

    from pintuan.apps.dependencies import require_scope
    from pintuan.domain.apps import Scope

    developer, operator = _people(services)
    app = approved_app(client, developer, operator)
    tokens = client_credentials(client, app, scope="offers:read")
    fastapi_app: FastAPI = client.app  # type: ignore[assignment]

    @fastapi_app.get(
        "/v1/test-only/orders", dependencies=[Depends(require_scope(Scope.ORDERS_READ))]
    )
    async def orders() -> dict[str, str]:
        return {"ok": "yes"}

    answer = client.get("/v1/test-only/orders", headers=tokens.headers)

    assert answer.status_code == 403
    assert answer.json()["code"] == "insufficient_scope"


def test_refresh_rotates_and_a_reused_refresh_token_is_refused(
    client: TestClient, services: Services
) -> None:
    developer, operator = _people(services)
    shopper = create_account(services)
    app = approved_app(client, developer, operator)
    first = authorization_code(client, app, shopper, scope="offers:read")

    second = tokens_of(refresh(client, app, first.refresh_token or ""))
    reused = refresh(client, app, first.refresh_token or "")

    assert second.refresh_token != first.refresh_token
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    # The replay revoked the chain: the newest refresh token is refused too.
    assert refresh(client, app, second.refresh_token or "").json()["error"] == "invalid_grant"
    assert client.get("/v1/partner/me", headers=second.headers).status_code == 401


def test_expired_access_tokens_and_codes_are_refused(
    client: TestClient, services: Services
) -> None:
    developer, operator = _people(services)
    shopper = create_account(services)
    app = approved_app(client, developer, operator)
    tokens = client_credentials(client, app)
    verifier, challenge = pkce_pair()
    code = _code(client, app, shopper, challenge)

    clock.offset = timedelta(minutes=services.settings.oauth_access_token_minutes + 1)

    answer = client.get("/v1/partner/me", headers=tokens.headers)
    assert answer.status_code == 401
    assert answer.json()["code"] == "invalid_token"
    assert _redeem(client, app, code, verifier).json()["error"] == "invalid_grant"


def test_revoked_tokens_are_refused(client: TestClient, services: Services) -> None:
    developer, operator = _people(services)
    shopper = create_account(services)
    app = approved_app(client, developer, operator)
    by_access = authorization_code(client, app, shopper, scope="offers:read")
    by_refresh = authorization_code(client, app, shopper, scope="offers:read")

    first = client.post("/oauth/revoke", data={"token": by_access.access_token}, auth=app.basic)
    second = client.post(
        "/oauth/revoke",
        data={"token": by_refresh.refresh_token, "token_type_hint": "refresh_token"},
        auth=app.basic,
    )

    assert first.status_code == 200
    assert second.status_code == 200
    assert client.get("/v1/partner/me", headers=by_access.headers).status_code == 401
    assert client.get("/v1/partner/me", headers=by_refresh.headers).status_code == 401
    assert refresh(client, app, by_access.refresh_token or "").json()["error"] == "invalid_grant"


def test_an_app_cannot_revoke_another_apps_token(client: TestClient, services: Services) -> None:
    developer, operator = _people(services)
    mine = approved_app(client, developer, operator)
    theirs = approved_app(client, developer, operator, name="Other")
    tokens = client_credentials(client, mine)

    client.post("/oauth/revoke", data={"token": tokens.access_token}, auth=theirs.basic)

    assert client.get("/v1/partner/me", headers=tokens.headers).status_code == 200


def test_a_suspended_apps_tokens_are_refused_at_once(
    client: TestClient, services: Services
) -> None:
    developer, operator = _people(services)
    shopper = create_account(services)
    app = approved_app(client, developer, operator)
    own = client_credentials(client, app)
    personal = authorization_code(client, app, shopper, scope="offers:read")

    suspended = client.post(f"/v1/apps/{app.id}/suspend", headers=operator.headers)

    assert suspended.status_code == 200
    for tokens in (own, personal):
        answer = client.get("/v1/partner/me", headers=tokens.headers)
        assert answer.status_code == 401
        assert answer.json()["code"] == "invalid_token"
    assert refresh(client, app, personal.refresh_token or "").status_code in (400, 401)
    assert token_request(client, app, grant_type="client_credentials").status_code == 401
    # Approved again, it starts afresh: the old tokens stay dead.
    client.post(f"/v1/apps/{app.id}/approve", headers=operator.headers)
    assert client.get("/v1/partner/me", headers=own.headers).status_code == 401
    assert client_credentials(client, app).access_token


def test_user_and_app_tokens_each_keep_to_their_routes(
    client: TestClient, services: Services
) -> None:
    developer, operator = _people(services)
    app = approved_app(client, developer, operator)
    tokens = client_credentials(client, app)

    as_user = client.get("/v1/me", headers=tokens.headers)
    as_app = client.get("/v1/partner/me", headers=developer.headers)

    assert client.get("/v1/me", headers=developer.headers).status_code == 200
    assert as_user.status_code == 403
    assert as_user.json()["code"] == "user_token_required"
    assert as_app.status_code == 403
    assert as_app.json()["code"] == "app_token_required"


def test_denying_consent_sends_the_person_back_with_access_denied(
    client: TestClient, services: Services
) -> None:
    developer, operator = _people(services)
    shopper = create_account(services)
    app = approved_app(client, developer, operator)
    browser = signed_in_browser(client, shopper)
    _, challenge = pkce_pair()

    answer = consent(browser, authorize_query(app, challenge), decision="deny")

    params = parse_qs(urlsplit(answer.headers["location"]).query)
    assert params["error"] == ["access_denied"]
    assert params["state"] == ["xyz"]


def test_staff_cannot_install_an_app_on_a_shop_they_do_not_work_for(
    client: TestClient, services: Services
) -> None:
    developer, operator = _people(services)
    staff = create_account(services, role=Role.MERCHANT, merchant=create_merchant(services.db))
    other = create_merchant(services.db)
    app = approved_app(client, developer, operator)
    browser = signed_in_browser(client, staff)
    _, challenge = pkce_pair()

    answer = consent(browser, authorize_query(app, challenge), merchant_id=other.id)

    assert answer.status_code == 403


def test_the_consent_page_may_send_its_form_on_to_the_apps_origin_only(
    client: TestClient, services: Services
) -> None:
    developer, operator = _people(services)
    app = approved_app(client, developer, operator)
    browser = signed_in_browser(client, create_account(services))
    _, challenge = pkce_pair()

    page = browser.get(
        "/oauth/authorize?" + urlencode(authorize_query(app, challenge)), headers=HTML
    )
    other = browser.get("/account", headers=HTML)

    assert "form-action 'self' http://127.0.0.1:9;" in page.headers["content-security-policy"]
    assert "form-action 'self';" in other.headers["content-security-policy"]


def test_the_consent_page_asks_a_visitor_to_log_in_first(
    client: TestClient, services: Services
) -> None:
    developer, operator = _people(services)
    app = approved_app(client, developer, operator)
    _, challenge = pkce_pair()

    answer = client.get(
        "/oauth/authorize?" + urlencode(authorize_query(app, challenge)),
        headers=HTML,
        follow_redirects=False,
    )

    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login?next=")


def test_discovery_metadata_is_valid_rfc_8414(client: TestClient) -> None:
    answer = client.get("/.well-known/oauth-authorization-server")

    metadata = AuthorizationServerMetadata(answer.json())
    metadata.validate()
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert "client_credentials" in metadata["grant_types_supported"]


def test_app_requests_past_the_rate_are_refused_with_retry_after(
    database_url: str,
) -> None:
    from pintuan.app import create_app
    from pintuan.bootstrap import build_services
    from tests.conftest import _empty_all_tables, make_settings

    settings = make_settings(database_url, app_requests_per_minute=3)
    services = build_services(settings)
    _empty_all_tables(services.db)
    try:
        with TestClient(create_app(settings, services), raise_server_exceptions=False) as client:
            developer, operator = _people(services)
            app = approved_app(client, developer, operator)
            other = approved_app(client, developer, operator, name="Other")
            tokens = client_credentials(client, app)

            answers = [client.get("/v1/partner/me", headers=tokens.headers) for _ in range(4)]
            others = client.get("/v1/partner/me", headers=client_credentials(client, other).headers)
    finally:
        services.db.dispose()

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    refused = answers[-1]
    assert refused.json()["code"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert others.status_code == 200


def test_a_code_redeemed_by_racing_requests_leaves_no_working_token(
    client: TestClient, services: Services
) -> None:
    import threading

    from pintuan.apps import oauth
    from pintuan.apps.models import OAuthToken

    developer, operator = _people(services)
    shopper = create_account(services)
    app = approved_app(client, developer, operator)
    verifier, challenge = pkce_pair()
    code = _code(client, app, shopper, challenge)
    form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", app.redirect_uri),
        ("code_verifier", verifier),
        ("client_id", app.client_id),
        ("client_secret", app.client_secret),
    ]
    request = oauth.CapturedRequest("POST", "http://127.0.0.1/oauth/token", {}, form=form)
    start = threading.Barrier(8)
    answers: list[oauth.Answer] = []

    def redeem() -> None:
        start.wait()
        answers.append(
            services.db.run_sync(lambda s: oauth.token_response(s, services.settings, request))
        )

    racers = [threading.Thread(target=redeem) for _ in range(8)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()

    assert len(answers) == 8
    assert sum(a.status == 200 for a in answers) <= 1
    assert {a.body["error"] for a in answers if a.status != 200} == {"invalid_grant"}
    live = services.db.run_sync(
        lambda s: s.query(OAuthToken).filter(OAuthToken.revoked_at.is_(None)).count()
    )
    assert live == 0


def test_a_disabled_persons_grants_give_no_new_token(
    client: TestClient, services: Services
) -> None:
    developer, operator = _people(services)
    shopper = create_account(services)
    app = approved_app(client, developer, operator)
    tokens = authorization_code(client, app, shopper, scope="offers:read")
    verifier, challenge = pkce_pair()
    code = _code(client, app, shopper, challenge)

    disabled = client.post(f"/v1/users/{shopper.user_id}/disable", headers=operator.headers)

    assert disabled.status_code == 200, disabled.text
    assert client.get("/v1/partner/me", headers=tokens.headers).status_code == 401
    assert refresh(client, app, tokens.refresh_token or "").status_code == 400
    assert _redeem(client, app, code, verifier).status_code == 400


def test_revoking_a_refresh_token_revokes_what_its_rotations_gave(
    client: TestClient, services: Services
) -> None:
    """RFC 7009: a refresh token stands for its grant. Revoking one that was rotated meanwhile
    (the app revoking an old copy, or a revocation racing a refresh) ends the newer tokens too."""
    developer, operator = _people(services)
    shopper = create_account(services)
    app = approved_app(client, developer, operator)
    first = authorization_code(client, app, shopper, scope="offers:read")
    second = tokens_of(refresh(client, app, first.refresh_token or ""))
    assert client.get("/v1/partner/me", headers=second.headers).status_code == 200

    revoked = client.post(
        "/oauth/revoke",
        data={"token": first.refresh_token, "token_type_hint": "refresh_token"},
        auth=app.basic,
    )

    assert revoked.status_code == 200
    assert client.get("/v1/partner/me", headers=second.headers).status_code == 401
    assert refresh(client, app, second.refresh_token or "").json()["error"] == "invalid_grant"
