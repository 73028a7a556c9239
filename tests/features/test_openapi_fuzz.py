"""Schemathesis over the whole OpenAPI: generated inputs, valid and invalid, for every operation
(as a shopper and as an operator, who reaches the operations a shopper is refused), then chains
of calls along the links Schemathesis infers between operations. No answer may be a 5xx, and
every documented answer must match its schema.

The API documents its refusals (401, 403, 404, 409) only in prose, so an answer's status code is
not checked against the schema's list: that check would flag every refusal.

Inputs are aimed at the seeded world (``tests.factories.seed_world``) where the path names its
things, and half the bodies carry real currency, country and zone codes, so that generated
requests get past "not found" and validation into the services, where the 500s hide.

Bounded so that CI stays quick (a dozen examples per operation and caller, a few steps per chain;
set ``PINTUAN_FUZZ_EXAMPLES`` to hunt longer) and derandomized so that a failure in CI is the
same failure on a laptop.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from pintuan.app import create_app
from pintuan.config import Settings
from pintuan.services import Services
from tests.conftest import _empty_all_tables
from tests.factories import World, seed_world

CHECKS = [not_a_server_error, response_schema_conformance]
EXAMPLES = int(os.environ.get("PINTUAN_FUZZ_EXAMPLES", "12"))
BOUNDS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@dataclass(frozen=True)
class Api:
    app: FastAPI
    schema: Any
    world: World


@pytest.fixture
def api(settings: Settings, services: Services) -> Api:
    """The application's schema, loaded from the app itself, over the seeded world."""
    app = create_app(settings, services)
    with TestClient(app, raise_server_exceptions=False) as client:
        world = seed_world(client, services)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)

    @schema.hook
    def flatmap_body(context: Any, body: Any) -> st.SearchStrategy[Any]:
        return st.sampled_from([body, realistic(body)])

    return Api(app, schema, world)


# A random three-letter string is almost never a currency this platform knows, so generated
# bodies would stop at validation; half of them get real codes instead, to reach the services.
REALISTIC = {"currency": "USD", "country": "US", "time_zone": "UTC", "locale": "en"}


def realistic(body: Any) -> Any:
    if isinstance(body, dict):
        return {
            key: REALISTIC[key] if key in REALISTIC and isinstance(value, str) else realistic(value)
            for key, value in body.items()
        }
    if isinstance(body, list):
        return [realistic(item) for item in body]
    return body


def cases(operation: Any, world: World) -> st.SearchStrategy[Any]:
    """Valid and invalid inputs; where the path names things the world has, also the same
    inputs aimed at them, so that generated bodies get past "not found" into the service."""
    modes = list(GenerationMode)
    strategies = [operation.as_strategy(mode) for mode in modes]
    names = [p.name for p in operation.path_parameters]
    known = world.path_values()
    if names and all(name in known for name in names):
        aimed = {name: known[name] for name in names}
        strategies += [operation.as_strategy(mode, path_parameters=aimed) for mode in modes]
    return st.one_of(strategies)


@pytest.mark.parametrize("caller", ["shopper", "operator"])
def test_no_operation_answers_a_server_error(api: Api, caller: str) -> None:
    headers = api.world.accounts[caller].headers
    failures = []
    for found in api.schema.get_all_operations():
        operation = found.ok()

        @BOUNDS
        @given(case=cases(operation, api.world))
        def generated(case: Any) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            generated()
        except Exception as failure:  # every operation's failure, reported together
            failures.append(f"{operation.label}: {failure}")

    assert not failures, "\n\n".join(failures)


def test_no_chain_of_linked_calls_answers_a_server_error(api: Api, services: Services) -> None:
    signed_in = {"shopper": api.world.accounts["shopper"].headers}
    workflow = api.schema.as_state_machine()

    class ShopperWorkflow(workflow):  # type: ignore[misc, valid-type]
        def setup(self) -> None:
            # Every chain starts from the same world, or Hypothesis cannot replay a chain.
            _empty_all_tables(services.db)
            world = seed_world(TestClient(api.app, raise_server_exceptions=False), services)
            signed_in["shopper"] = world.accounts["shopper"].headers

        def call(self, case: Any, **kwargs: Any) -> Any:
            headers = {**signed_in["shopper"], **(kwargs.pop("headers", None) or {})}
            return case.call(headers=headers, **kwargs)

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            case.validate_response(response, checks=CHECKS)

    ShopperWorkflow.run(settings=settings(BOUNDS, max_examples=3 * EXAMPLES, stateful_step_count=6))
