"""WeChat Pay's refund notifications, read against its local fake: partial refunds under our
refund numbers, the failed team's refund, and refunds made in its merchant platform."""

from __future__ import annotations

from datetime import UTC, datetime

from pintuan.domain.refunds import MoneyNotice, NoticeKind
from pintuan.payments.providers.wechatpay import WeChatPayProvider
from tests.fakes.wechatpay_api import FakeWeChatPay
from tests.features import test_wechatpay_provider as wechat_tests
from tests.features.test_wechatpay_provider import paid_order

# The adapter talks to the fake as in its own tests.
server, fake = wechat_tests.server, wechat_tests.fake
shared_provider, wechat = wechat_tests.shared_provider, wechat_tests.wechat


def now() -> datetime:
    return datetime.now(UTC)


def test_wechat_pay_tells_each_partial_refund_with_its_amount_and_our_number(
    wechat: WeChatPayProvider, fake: FakeWeChatPay
) -> None:
    payment_id = paid_order(fake, wechat, 1500)
    wechat.refund(payment_id, 500, "rfd_01WXONE")
    wechat.refund(payment_id, 700, "rfd_01WXTWO")

    notices = [
        wechat.verify_webhook(n.body, n.headers, now()).notices
        for n in (fake.settle_refund("rfd_01WXONE"), fake.settle_refund("rfd_01WXTWO"))
    ]

    assert [(n.request_no, n.amount) for [n] in notices] == [
        ("rfd_01WXONE", 500),
        ("rfd_01WXTWO", 700),
    ]
    assert all(n.kind is NoticeKind.REFUNDED and n.ref.startswith("50") for [n] in notices)


def test_wechat_pay_names_the_failed_teams_refund_by_our_key(
    wechat: WeChatPayProvider, fake: FakeWeChatPay
) -> None:
    payment_id = paid_order(fake, wechat, 1500)
    wechat.refund(payment_id, 1500, f"{payment_id}:refund")
    notice = fake.settle_refund(f"{payment_id}-refund")
    [news] = wechat.verify_webhook(notice.body, notice.headers, now()).notices
    assert news.request_no == f"{payment_id}:refund"


def test_wechat_pay_tells_of_a_refund_made_in_its_merchant_platform(
    wechat: WeChatPayProvider, fake: FakeWeChatPay
) -> None:
    payment_id = paid_order(fake, wechat, 1500)
    notice = fake.refund_in_dashboard(payment_id, 250)
    [news] = wechat.verify_webhook(notice.body, notice.headers, now()).notices
    assert isinstance(news, MoneyNotice)
    assert news.amount == 250
    assert news.request_no is not None
    assert news.request_no.startswith("MP")


def test_wechat_pay_tells_a_refund_that_could_not_reach_the_payer_by_our_number(
    wechat: WeChatPayProvider, fake: FakeWeChatPay
) -> None:
    payment_id = paid_order(fake, wechat, 1500)
    wechat.refund(payment_id, 400, "rfd_01WXBACK")
    for status in ("ABNORMAL", "CLOSED"):
        notice = fake.abandon_refund("rfd_01WXBACK", status)
        [news] = wechat.verify_webhook(notice.body, notice.headers, now()).notices
        assert (news.kind, news.request_no, news.amount) == (
            NoticeKind.REFUND_FAILED,
            "rfd_01WXBACK",
            400,
        )
        assert news.reason == f"REFUND.{status}"
