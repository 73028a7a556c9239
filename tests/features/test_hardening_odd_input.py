"""Odd bytes in cookies, headers and tokens are refused like any wrong value, never a 500.

``hmac.compare_digest`` raises on a ``str`` that is not ASCII; secrets from the outside (cookies,
CSRF tokens, pay-link tokens, webhook signatures) are compared as bytes.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from pintuan.domain.payments import WebhookRejected
from pintuan.domain.traffic import new_visitor_id
from pintuan.payments.providers.stripe import StripeProvider

ODD = "é€\u00ff"


def odd_header(value: str) -> bytes:
    """A header value as a browser or a probe may send it: raw UTF-8 bytes."""
    return value.encode("utf-8")


def test_a_non_ascii_cookie_leaves_healthz_up_and_the_caller_signed_out(
    client: TestClient,
) -> None:
    # given a browser with a visitor id and session and link cookies holding non-ASCII bytes
    cookie = f"pt_vid={new_visitor_id()}; pintuan_session={ODD}; pt_vl={ODD}"

    # when it asks for the health probe and for its own account
    health = client.get("/healthz", headers={"cookie": odd_header(cookie)})  # type: ignore[dict-item]
    me = client.get("/v1/me", headers={"cookie": odd_header(cookie)})  # type: ignore[dict-item]

    # then the probe answers and the caller is simply not signed in
    assert health.status_code == 200
    assert me.status_code == 401
    assert me.json()["code"] == "unauthenticated"


def test_an_odd_csrf_token_gets_the_normal_csrf_refusal(client: TestClient) -> None:
    # given a browser that has a CSRF cookie (from any page)
    client.get("/login")

    # when it posts a form with a non-ASCII CSRF token
    response = client.post(
        "/logout",
        headers={"x-csrf-token": odd_header(ODD), "accept": "application/json"},  # type: ignore[dict-item]
    )

    # then it is the ordinary CSRF refusal
    assert response.status_code == 403
    assert response.json()["code"] == "csrf_failed"


@pytest.mark.parametrize("path", ["/v1/pay-links/{token}", "/pay/{token}"])
def test_a_pay_link_with_an_odd_signature_is_not_found(client: TestClient, path: str) -> None:
    # given a pay link whose payload decodes but whose signature is not ASCII
    payload = base64.urlsafe_b64encode(b"seat_nope.4102444800").decode().rstrip("=")
    token = f"{payload}.{ODD}"

    # when it is opened
    response = client.get(path.format(token=token), headers={"accept": "application/json"})

    # then it is an unknown pay link, as any forged one
    assert response.status_code == 404, response.text
    assert response.json()["code"] == "pay_link_not_found"


def test_a_sandbox_webhook_with_an_odd_signature_is_rejected(client: TestClient) -> None:
    response = client.post(
        "/v1/webhooks/sandbox",
        content=b"{}",
        headers={"pintuan-sandbox-signature": odd_header(f"t=1,v1={ODD}")},  # type: ignore[dict-item]
    )
    assert 400 <= response.status_code < 500, response.text


def test_a_stripe_webhook_with_an_odd_signature_is_rejected() -> None:
    stripe = StripeProvider(secret_key="sk_test_x", webhook_secret="whsec_x")
    with pytest.raises(WebhookRejected):
        stripe.verify_webhook(b"{}", {"Stripe-Signature": f"t=1,v1={ODD}"}, datetime.now(UTC))
