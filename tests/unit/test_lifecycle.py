"""Merchants and deals move only along their state machines; anything else is a 409 conflict."""

from __future__ import annotations

import itertools

import pytest

from pintuan.domain.lifecycle import (
    DEAL_FIELDS_EDITABLE_WHEN_PUBLISHED,
    DealStatus,
    MerchantStatus,
    next_deal_status,
    next_merchant_status,
)
from pintuan.errors import Conflict

# The state machines (deals as DESIGN.md draws them), written out independently of the code.
DEAL_MOVES: dict[tuple[DealStatus, str], DealStatus] = {
    (DealStatus.DRAFT, "publish"): DealStatus.LIVE,
    (DealStatus.PAUSED, "publish"): DealStatus.LIVE,
    (DealStatus.LIVE, "pause"): DealStatus.PAUSED,
    (DealStatus.LIVE, "end"): DealStatus.ENDED,
    (DealStatus.PAUSED, "end"): DealStatus.ENDED,
}
DEAL_ACTIONS = ("publish", "pause", "end")
DEAL_REFUSALS = [
    pair for pair in itertools.product(DealStatus, DEAL_ACTIONS) if pair not in DEAL_MOVES
]

MERCHANT_MOVES: dict[tuple[MerchantStatus, str], MerchantStatus] = {
    (MerchantStatus.PENDING, "approve"): MerchantStatus.APPROVED,
    (MerchantStatus.SUSPENDED, "approve"): MerchantStatus.APPROVED,
    (MerchantStatus.PENDING, "suspend"): MerchantStatus.SUSPENDED,
    (MerchantStatus.APPROVED, "suspend"): MerchantStatus.SUSPENDED,
}
MERCHANT_ACTIONS = ("approve", "suspend")
MERCHANT_REFUSALS = [
    pair
    for pair in itertools.product(MerchantStatus, MERCHANT_ACTIONS)
    if pair not in MERCHANT_MOVES
]


@pytest.mark.parametrize(
    ("current", "action", "expected"), [(*k, v) for k, v in DEAL_MOVES.items()]
)
def test_a_deal_moves_along_its_state_machine(
    current: DealStatus, action: str, expected: DealStatus
) -> None:
    # given a deal in a status where the action is allowed
    # when the action is taken
    result = next_deal_status(current, action)

    # then the deal is in the status the design names
    assert result is expected


@pytest.mark.parametrize(("current", "action"), DEAL_REFUSALS)
def test_a_deal_action_outside_its_state_machine_is_a_conflict(
    current: DealStatus, action: str
) -> None:
    # given a deal in a status where the action is not allowed
    # when the action is taken
    with pytest.raises(Conflict) as caught:
        next_deal_status(current, action)

    # then it is refused with a stable code and a 409
    assert caught.value.code == "invalid_deal_transition"
    assert caught.value.status == 409
    assert current.value in caught.value.detail


# What operators may do besides (DESIGN.md's machine plus the moderated stop of issue 12).
OPERATOR_MOVES: dict[tuple[DealStatus, str], DealStatus] = {
    **DEAL_MOVES,
    (DealStatus.LIVE, "moderate"): DealStatus.MODERATED,
    (DealStatus.PAUSED, "moderate"): DealStatus.MODERATED,
    (DealStatus.MODERATED, "unmoderate"): DealStatus.PAUSED,
    (DealStatus.MODERATED, "end"): DealStatus.ENDED,
}
ALL_ACTIONS = (*DEAL_ACTIONS, "moderate", "unmoderate")


@pytest.mark.parametrize(("current", "action"), list(itertools.product(DealStatus, ALL_ACTIONS)))
def test_operators_alone_moderate_and_only_an_operator_leaves_moderation(
    current: DealStatus, action: str
) -> None:
    expected = OPERATOR_MOVES.get((current, action))
    if expected is None:
        with pytest.raises(Conflict):
            next_deal_status(current, action, operator=True)
    else:
        assert next_deal_status(current, action, operator=True) is expected
    if (current, action) not in DEAL_MOVES:
        with pytest.raises(Conflict):
            next_deal_status(current, action)


@pytest.mark.parametrize("action", DEAL_ACTIONS)
def test_an_ended_deal_never_changes_again(action: str) -> None:
    with pytest.raises(Conflict):
        next_deal_status(DealStatus.ENDED, action)


@pytest.mark.parametrize(
    ("current", "action", "detail"),
    [
        (DealStatus.LIVE, "publish", "This deal is live; it cannot be published."),
        (DealStatus.DRAFT, "pause", "This deal is draft; it cannot be paused."),
        (DealStatus.DRAFT, "end", "This deal is draft; it cannot be ended."),
    ],
)
def test_a_refused_deal_action_says_why_in_plain_words(
    current: DealStatus, action: str, detail: str
) -> None:
    with pytest.raises(Conflict) as caught:
        next_deal_status(current, action)
    assert caught.value.detail == detail


@pytest.mark.parametrize(
    ("current", "action", "expected"), [(*k, v) for k, v in MERCHANT_MOVES.items()]
)
def test_a_merchant_moves_along_its_state_machine(
    current: MerchantStatus, action: str, expected: MerchantStatus
) -> None:
    assert next_merchant_status(current, action) is expected


@pytest.mark.parametrize(("current", "action"), MERCHANT_REFUSALS)
def test_a_merchant_action_outside_its_state_machine_is_a_conflict(
    current: MerchantStatus, action: str
) -> None:
    # given a merchant in a status where the action is not allowed
    # when the action is taken
    with pytest.raises(Conflict) as caught:
        next_merchant_status(current, action)

    # then it is refused with a stable code and a 409
    assert caught.value.code == "invalid_merchant_transition"
    assert caught.value.status == 409
    assert current.value in caught.value.detail


def test_approving_an_approved_merchant_says_it_cannot_be_approved() -> None:
    with pytest.raises(Conflict) as caught:
        next_merchant_status(MerchantStatus.APPROVED, "approve")
    assert caught.value.detail.endswith("cannot be approved.")


def test_suspending_a_suspended_merchant_says_it_cannot_be_suspended() -> None:
    with pytest.raises(Conflict) as caught:
        next_merchant_status(MerchantStatus.SUSPENDED, "suspend")
    assert caught.value.detail.endswith("cannot be suspended.")


@pytest.mark.parametrize("field", ["list_price", "group_price", "team_size", "currency"])
def test_prices_and_team_terms_cannot_change_once_a_deal_is_published(field: str) -> None:
    # given teams already forming were promised the published terms
    # when / then those terms are not among the fields editable after publishing
    assert field not in DEAL_FIELDS_EDITABLE_WHEN_PUBLISHED


@pytest.mark.parametrize("field", ["title", "description", "stock", "ends_at"])
def test_descriptive_fields_and_stock_stay_editable_once_a_deal_is_published(field: str) -> None:
    assert field in DEAL_FIELDS_EDITABLE_WHEN_PUBLISHED
