"""Schemathesis over the partner API as an app installed on the seeded merchant (the whole-API
fuzz test calls it as people, whom it refuses at the door): no generated offer, query or path
may answer a 5xx, and every documented answer must match its schema."""

from __future__ import annotations

import dataclasses
from typing import Any

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from pintuan.app import create_app
from pintuan.config import Settings
from pintuan.domain.apps import AppPrincipal
from pintuan.services import Services
from tests.factories import seed_world
from tests.features.test_openapi_fuzz import BOUNDS, CHECKS, cases, realistic
from tests.partnering import ALL, acting_as_apps, create_app_record, install_app, offer_body


def test_no_partner_operation_answers_a_server_error(
    settings: Settings, services: Services
) -> None:
    # Many generated calls in a minute: past the per-app rate they would all be 429s.
    fuzzing = settings.model_copy(update={"app_requests_per_minute": 1_000_000})
    app = create_app(fuzzing, dataclasses.replace(services, settings=fuzzing))
    with TestClient(app, raise_server_exceptions=False) as client:
        world = seed_world(client, services)
        staff = world.accounts["staff"]
        app_id = create_app_record(services.db, staff.user_id)
        install_app(services.db, app_id, world.merchant_id, staff.user_id)
        acting_as_apps(app)["fuzzing-app"] = AppPrincipal(
            app_id, ALL, staff.user_id, world.merchant_id
        )
        headers = {"Authorization": "Bearer fuzzing-app"}
        published = client.put("/v1/partner/offers/known", json=offer_body(), headers=headers)
        assert published.status_code == 201, published.text
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)

    @schema.hook
    def flatmap_body(context: Any, body: Any) -> st.SearchStrategy[Any]:
        return st.sampled_from([body, realistic(body), offer_body()])

    failures = []
    operations = [found.ok() for found in schema.get_all_operations()]
    partner_operations = [o for o in operations if o.path.startswith("/v1/partner/")]
    assert len(partner_operations) == 7  # offers, their pictures, deals, and the app's person
    for operation in partner_operations:

        @BOUNDS
        @given(case=cases(operation, world))
        def generated(case: Any) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            generated()
        except Exception as failure:  # every operation's failure, reported together
            failures.append(f"{operation.label}: {failure}")

    assert not failures, "\n\n".join(failures)
