"""Alipay's refund notifications, read against its local fake: partial refunds under our
request numbers, and refunds made in its merchant dashboard."""

from __future__ import annotations

from datetime import UTC, datetime

from pintuan.domain.refunds import NoticeKind
from pintuan.payments.providers.alipay import AlipayProvider
from tests.fakes.alipay_api import FakeAlipay
from tests.features import test_alipay_provider as alipay_tests
from tests.features.test_alipay_provider import paid_trade

# The adapter talks to the fake as in its own tests.
app_keys, alipay_keys = alipay_tests.app_keys, alipay_tests.alipay_keys
running_fake, fake, alipay = alipay_tests.running_fake, alipay_tests.fake, alipay_tests.alipay


def now() -> datetime:
    return datetime.now(UTC)


def test_alipay_partial_refunds_are_told_by_our_request_number_and_the_total_so_far(
    alipay: AlipayProvider, fake: FakeAlipay
) -> None:
    paid_trade(alipay, fake, "pay_01PART")
    alipay.refund("pay_01PART", 500, "rfd_01FIRST")
    alipay.refund("pay_01PART", 300, "rfd_01SECOND")
    assert [r.amount for r in fake.refunds_of("pay_01PART")] == [500, 300]

    first = alipay.verify_webhook(fake.refund_notification("pay_01PART", "rfd_01FIRST"), {}, now())
    second = alipay.verify_webhook(
        fake.refund_notification("pay_01PART", "rfd_01SECOND"), {}, now()
    )

    assert first.provider_ref == "pay_01PART"
    assert [n.request_no for n in (*first.notices, *second.notices)] == [
        "rfd_01FIRST",
        "rfd_01SECOND",
    ]
    # Alipay says only what the trade has refunded in all (both are done when it is asked)
    assert {n.refunded_total for n in second.notices} == {800}
    assert second.notices[0].kind is NoticeKind.REFUNDED


def test_alipay_tells_of_a_dashboard_refund_under_its_own_number(
    alipay: AlipayProvider, fake: FakeAlipay
) -> None:
    paid_trade(alipay, fake, "pay_01DASH")
    alipay.refund("pay_01DASH", 400, "rfd_01OURS")

    event = alipay.verify_webhook(fake.refund_in_dashboard("pay_01DASH", 600), {}, now())

    [notice] = event.notices
    assert notice.request_no is not None
    assert notice.request_no.startswith("HZ")
    assert (notice.amount, notice.refunded_total) == (None, 1000)


def test_a_payment_notification_from_alipay_carries_no_refund_news(
    alipay: AlipayProvider, fake: FakeAlipay
) -> None:
    event = alipay.verify_webhook(paid_trade(alipay, fake, "pay_01PLAIN"), {}, now())
    assert event.notices == ()
