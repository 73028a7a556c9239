"""Stripe's uncaptured PaymentIntents, listed for the reconciliation of holds (from the local
fake's list endpoint, page by page)."""

from __future__ import annotations

from pintuan.payments.providers.stripe import StripeProvider
from tests.fakes.stripe_api import FakeStripe
from tests.features.test_stripe_provider import (  # noqa: F401 - fixtures
    authorized,
    charged,
    fake,
    provider,
    served_fake,
)


def test_only_holds_waiting_for_their_capture_are_listed_across_pages(
    provider: StripeProvider,  # noqa: F811 - the fixtures imported above
    fake: FakeStripe,  # noqa: F811
) -> None:
    fake.page_cap = 2
    waiting = [authorized(provider, fake, amount=1500 + n) for n in range(3)]
    captured = authorized(provider, fake, amount=999)
    provider.capture(captured, 999, "cap-1")
    cancelled = authorized(provider, fake, amount=998)
    provider.void(cancelled, "void-1")
    charged(provider, fake)

    holds = provider.open_holds()

    assert sorted(holds) == sorted((ref, 1500 + n, "USD") for n, ref in enumerate(waiting))
