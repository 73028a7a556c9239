"""Schemathesis over the webhook endpoint operations as an app with ``webhooks:manage``: the
whole-API fuzz calls them as people, whom they refuse at once, so here they are called as the
app they serve, aimed at its real endpoint and delivery. No 5xx, and every documented answer
matches its schema."""

from __future__ import annotations

import dataclasses
from typing import Any

import schemathesis
from hypothesis import given
from hypothesis import strategies as st
from schemathesis import GenerationMode
from sqlalchemy import select

from pintuan.app import create_app
from pintuan.config import Settings
from pintuan.kit.time import utc_now
from pintuan.services import Services
from pintuan.webhooks import tasks
from pintuan.webhooks.models import WebhookDelivery
from tests.factories import create_account, create_deal, create_merchant
from tests.features.test_openapi_fuzz import BOUNDS, CHECKS
from tests.features.test_teams_api import start
from tests.features.webhooks_world import app_token, create_partner_app, serving_apps


def test_no_webhook_operation_answers_a_server_error(
    settings: Settings, services: Services
) -> None:
    merchant = create_merchant(services.db)
    app = create_partner_app(services, create_account(services), installed_on=(merchant,))
    with serving_apps(settings, services) as (client, headers):
        endpoint = client.post(
            "/v1/webhook_endpoints",
            json={"url": "http://127.0.0.1:9/hooks", "events": ["order.created"]},
            headers=headers(app.id),
        ).json()
        start(client, create_account(services), create_deal(services.db, merchant).id)
    services.db.run_sync(tasks.fan_out_events, utc_now(), 100)
    delivery_id = services.db.run_sync(lambda s: s.scalars(select(WebhookDelivery.id)).one())
    # Many generated calls in a minute: past the per-app rate they would all be 429s.
    fuzzing = settings.model_copy(update={"app_requests_per_minute": 1_000_000})
    application = create_app(fuzzing, dataclasses.replace(services, settings=fuzzing))
    bearer = {"Authorization": f"Bearer {app_token(services, app.id)}"}
    schema = schemathesis.openapi.from_asgi("/openapi.json", application)
    known = {"endpoint_id": endpoint["id"], "delivery_id": delivery_id}
    failures = []
    for found in schema.get_all_operations():
        operation = found.ok()
        if not operation.path.startswith("/v1/webhook_endpoints"):
            continue
        names = [p.name for p in operation.path_parameters]
        modes = list(GenerationMode)
        strategies = [operation.as_strategy(mode) for mode in modes]
        if names:
            aimed = {name: known[name] for name in names}
            strategies += [operation.as_strategy(mode, path_parameters=aimed) for mode in modes]

        @BOUNDS
        @given(case=st.one_of(strategies))
        def generated(case: Any) -> None:
            case.call_and_validate(headers=bearer, checks=CHECKS)

        try:
            generated()
        except Exception as failure:  # every operation's failure, reported together
            failures.append(f"{operation.label}: {failure}")

    assert not failures, "\n\n".join(failures)
