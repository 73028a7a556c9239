"""Carrier and tracking numbers, the queue's words and the order's timeline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pintuan.domain.fulfilment import (
    MAX_CSV_ROWS,
    CsvInvalid,
    CsvRow,
    DispatchInvalid,
    OrderFacts,
    QueueState,
    Step,
    check_dispatch,
    queue_state,
    read_shipments_csv,
    timeline,
)

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def test_tracking_numbers_are_kept_as_the_carrier_prints_them() -> None:
    dispatch = check_dispatch("  Royal   Mail ", "ab 1234 5678 9gb")

    assert (dispatch.carrier, dispatch.tracking_number) == ("Royal Mail", "AB123456789GB")


@pytest.mark.parametrize(
    ("carrier", "number", "fields"),
    [
        ("", "", {"carrier", "tracking_number"}),
        ("UPS", "1Z!", {"tracking_number"}),
        ("x" * 61, "1Z999AA10123456784", {"carrier"}),
        ("DHL\x00", "1234567890", {"carrier"}),
    ],
)
def test_an_unusable_carrier_or_number_names_each_field(
    carrier: str, number: str, fields: set[str]
) -> None:
    with pytest.raises(DispatchInvalid) as refused:
        check_dispatch(carrier, number)

    assert set(refused.value.problems) == fields


@given(st.text(max_size=80), st.text(max_size=80))
def test_any_carrier_and_number_is_accepted_clean_or_refused(carrier: str, number: str) -> None:
    try:
        dispatch = check_dispatch(carrier, number)
    except DispatchInvalid as refused:
        problems = refused.problems
        assert problems
        return
    assert dispatch.carrier == dispatch.carrier.strip()
    assert dispatch.carrier.isprintable()
    assert dispatch.tracking_number.isalnum() or "-" in dispatch.tracking_number
    assert dispatch.tracking_number == dispatch.tracking_number.upper()


def test_the_queue_calls_a_seat_without_shipment_awaiting_its_address() -> None:
    assert queue_state(None) is QueueState.AWAITING_ADDRESS
    assert queue_state("addressed") is QueueState.TO_SHIP
    assert queue_state("shipped") is QueueState.SHIPPED
    assert queue_state("received") is QueueState.RECEIVED


def test_the_timeline_shows_the_steps_taken_in_order() -> None:
    facts = OrderFacts(
        paid_at=T0,
        team_succeeded_at=T0 + timedelta(hours=1),
        address_at=T0 - timedelta(minutes=1),  # chosen at checkout, before paying
        shipped_at=T0 + timedelta(days=1),
        carrier="SF Express",
        tracking_number="SF1",
        received_at=None,
        received_by=None,
    )

    steps = timeline(facts)

    assert [s.step for s in steps] == [Step.ADDRESS, Step.PAID, Step.TEAM_SUCCEEDED, Step.SHIPPED]
    assert steps[-1].detail == {"carrier": "SF Express", "tracking_number": "SF1"}


@given(st.lists(st.sampled_from(list(Step)), unique=True))
def test_steps_at_the_same_moment_keep_the_lifecycles_order(taken: list[Step]) -> None:
    at = {step: T0 if step in taken else None for step in Step}
    facts = OrderFacts(
        paid_at=at[Step.PAID],
        team_succeeded_at=at[Step.TEAM_SUCCEEDED],
        address_at=at[Step.ADDRESS],
        shipped_at=at[Step.SHIPPED],
        carrier="c",
        tracking_number="t",
        received_at=at[Step.RECEIVED],
        received_by="shopper",
    )

    assert [s.step for s in timeline(facts)] == [s for s in Step if s in taken]


def test_a_spreadsheets_csv_with_a_bom_semicolons_and_extra_columns_is_read() -> None:
    data = (
        "\ufeffSeat ID;Carrier;Tracking Number;Recipient\r\n"
        "seat_1;SF Express;SF1;Chen\r\n"
        ";;;\r\n"
        "seat_2;;\r\n"
    ).encode()

    rows = read_shipments_csv(data)

    assert rows == [
        CsvRow(2, "seat_1", "SF Express", "SF1"),
        CsvRow(4, "seat_2", "", ""),
    ]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"seat_id,carrier\nseat_1,SF\n", "missing_columns"),
        ("seat_id,carrier,tracking_number\n".encode("utf-16"), "not_utf8"),
        (b"seat_id,carrier,tracking_number\nseat\x00,a,b\n", "not_csv"),
        (b"seat_id,carrier,tracking_number\n" + b"s,c,t\n" * (MAX_CSV_ROWS + 1), "too_many_rows"),
    ],
)
def test_a_file_that_is_not_a_shipping_csv_is_refused_whole(data: bytes, reason: str) -> None:
    with pytest.raises(CsvInvalid) as refused:
        read_shipments_csv(data)

    assert refused.value.reason == reason


@given(st.binary(max_size=400))
def test_any_upload_is_read_into_rows_or_refused_with_a_reason(data: bytes) -> None:
    try:
        rows = read_shipments_csv(data)
    except CsvInvalid as refused:
        reason = refused.reason
        assert reason in {"empty", "missing_columns", "not_utf8", "not_csv", "too_many_rows"}
        return
    assert all(row.line >= 2 for row in rows)
