"""Where a refund after success stands, as its payer is told, from its row."""

from __future__ import annotations

import pytest

from pintuan.domain.refunds import RefundProgress, refund_progress


@pytest.mark.parametrize(
    ("status", "to_wallet", "waiting", "last_outcome", "told"),
    [
        ("pending", False, False, None, RefundProgress.ON_ITS_WAY),
        # A failed call the worker will try again: still on its way
        ("pending", False, False, "failed", RefundProgress.ON_ITS_WAY),
        # Given up and with the operators, whatever the provider said
        ("pending", False, True, "failed", RefundProgress.DELAYED),
        ("pending", False, True, "refused", RefundProgress.DELAYED),
        # An operator's retry takes it out of the queue: asked again
        ("pending", False, False, "refused", RefundProgress.ON_ITS_WAY),
        # Its money came back: so until it is paid again
        ("pending", False, True, "returned", RefundProgress.SENT_BACK),
        ("pending", False, False, "returned", RefundProgress.SENT_BACK),
        ("succeeded", False, False, None, RefundProgress.DONE),
        ("succeeded", True, False, None, RefundProgress.IN_WALLET),
        ("succeeded", True, False, "returned", RefundProgress.IN_WALLET),
        ("failed", False, False, "refused", RefundProgress.DELAYED),
    ],
)
def test_a_refunds_progress_follows_its_row(
    status: str, to_wallet: bool, waiting: bool, last_outcome: str | None, told: RefundProgress
) -> None:
    assert (
        refund_progress(status, to_wallet=to_wallet, waiting=waiting, last_outcome=last_outcome)
        is told
    )
