"""Webhook rules without a database: event names, retry waits, addresses a webhook may reach."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pintuan.domain.webhooks import (
    FIRST_RETRY,
    LONGEST_RETRY,
    is_public_address,
    retry_delay,
    webhook_types_of,
)


def test_outbox_events_are_heard_under_their_public_names() -> None:
    assert webhook_types_of("seat.held") == ["order.created"]
    assert webhook_types_of("seat.paid") == ["seat.paid"]
    assert webhook_types_of("seat.paid", created_paid=True) == ["order.created", "seat.paid"]
    assert webhook_types_of("team.succeeded") == ["team.succeeded"]
    assert webhook_types_of("offer.withdrawn") == ["offer.withdrawn"]
    assert webhook_types_of("seat.released") == []
    assert webhook_types_of("payment.authorized") == []


@given(st.integers(min_value=1, max_value=10_000), st.integers(min_value=0))
def test_a_retry_waits_between_half_and_all_of_a_doubling_capped_wait(
    attempts: int, seed: int
) -> None:
    ceiling = min(FIRST_RETRY * 2 ** min(attempts - 1, 30), LONGEST_RETRY)

    wait = retry_delay(attempts, random.Random(seed))

    assert ceiling / 2 <= wait <= ceiling


def test_retries_reach_the_longest_wait_and_keep_to_it() -> None:
    rng = random.Random(1)
    assert retry_delay(1, rng) <= timedelta(seconds=5)
    assert retry_delay(100, rng) <= timedelta(hours=6)
    assert retry_delay(100, rng) >= timedelta(hours=3)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.8",
        "172.16.4.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",  # noqa: S104 - an address refused, not one bound
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
    ],
)
def test_private_and_special_addresses_are_not_public(address: str) -> None:
    assert not is_public_address(address)


@pytest.mark.parametrize("address", ["93.184.215.14", "1.1.1.1", "2606:4700:4700::1111"])
def test_ordinary_internet_addresses_are_public(address: str) -> None:
    assert is_public_address(address)
