"""The money machine with referral commissions: the refunds machine's walks (payments through a
faltering provider, refunds after success in parts, disputes, the clock and the worker) on deals
that pay the shopper whose share brought a seat a tenth of it, with shoppers arriving through
shares (a sharer of their own, or another shopper) and refund windows closing.

After every step the ledger's checks and the recomputing audit pass (each commission's journals
say what its row says, each sharer's frozen account holds their frozen commissions, no refund
people asked for comes after a release), and each frozen commission is the commission on what is
still paid of its seat; the sharer who never buys has in their wallet exactly what was
released to them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, run_state_machine_as_test
from sqlalchemy import select

from pintuan.commissions.models import Commission
from pintuan.domain.commissions import commission_on
from pintuan.errors import Conflict
from pintuan.kit.time import clock, utc_now
from pintuan.payments.models import Payment
from pintuan.services import Services
from pintuan.shares.models import Share
from tests.factories import create_account
from tests.features import sharing
from tests.features.test_ledger import wallet
from tests.features.test_payment_properties import (
    DEAL_SPECS,
    PICK,
    SHOPPERS,
    RefundingMoneyMachine,
    Tally,
    step,
)
from tests.properties import walks

RATE = 1000
# The walk's clock stays well within the API tokens' 90 days and its deals' 60.
LAST_JUMP = timedelta(days=45)


class CommissionMoneyMachine(RefundingMoneyMachine):
    def __init__(self, services: Services, client: TestClient, tally: Tally) -> None:
        super().__init__(services, client, tally)
        self.sharer = create_account(services)
        self.shares: dict[tuple[str, str], Share] = {}

    def deal_fields(self) -> dict[str, Any]:
        return {"referral_commission_bps": RATE}

    @initialize(
        specs=st.lists(DEAL_SPECS, min_size=1, max_size=2),
        commission_bps=st.sampled_from([0, 250, 1000]),
    )
    def open_deals(self, specs: list[dict[str, int]], commission_bps: int) -> None:
        """The deals open, and the sharer's link of each reaches every shopper but the first
        (for a week, the attribution window): most walks' orders are credited to shares."""
        super().open_deals(specs, commission_bps)
        for deal_id in self.deals:
            self.shares[(self.sharer.user_id, deal_id)] = shared = sharing.share(
                self.services, self.sharer, deal_id=deal_id
            )
            for shopper in self.shoppers[1:]:
                sharing.visit(self.services, shared, user=shopper)

    @step(
        user=st.integers(0, SHOPPERS - 1),
        pick=PICK,
        by_a_shopper=st.booleans(),
        then=st.sampled_from(["wait", "pay", "fill"]),
    )
    def shopper_arrives_by_a_share(
        self, user: int, pick: int, by_a_shopper: bool, then: str
    ) -> None:
        """A shopper opens a share of a deal (the sharer's own, or another shopper's) signed in
        and starts a team of it, perhaps paying at once, perhaps with everybody else joining and
        paying too; the orders are credited to the share."""
        deal = pick % len(self.deals)
        sharer = self.sharer
        if by_a_shopper and user != 0:
            sharer = self.shoppers[0]
        key = (sharer.user_id, self.deals[deal])
        if key not in self.shares:
            try:
                self.shares[key] = sharing.share(self.services, sharer, deal_id=self.deals[deal])
            except Conflict:
                return  # the deal has ended
        sharing.visit(self.services, self.shares[key], user=self.shoppers[user])
        event(f"arrives by a share of {'a shopper' if sharer is not self.sharer else 'the sharer'}")
        before = len(self.seats)
        self._start(deal, user)
        if len(self.seats) == before or then == "wait":
            return
        if then == "pay":
            self._pay(self.seats[-1][0], user, "charge", "original", False, "approve_and_notify")
        else:
            self.fill_team(pick=0, methods=["charge"] * SHOPPERS, refund_to="original")

    @step(days=st.sampled_from([1, 31]))
    def refund_windows_close(self, days: int) -> None:
        """Days pass (a month closes every refund window open now) and the housekeeping sweeps
        the commissions."""
        if clock.offset + timedelta(days=days) <= LAST_JUMP:
            clock.advance(timedelta(days=days))
        self.worker.tick()
        frozen, released = self.worker.sweep_commissions(utc_now())
        event(
            f"commissions swept: {'some' if frozen else 'none'} frozen, "
            f"{'some' if released else 'none'} released"
        )

    def _commissions(self) -> list[tuple[Commission, Payment]]:
        return self.db.run_sync(
            lambda s: [
                (c, p)
                for c, p in s.execute(
                    select(Commission, Payment).join(Payment, Payment.id == Commission.payment_id)
                ).all()
            ],
            write=False,
        )

    @invariant()
    def commissions_follow_what_is_still_paid(self) -> None:
        released = 0
        for c, p in self._commissions():
            kept = c.amount - c.clawed_back
            if c.status == "frozen":
                assert kept == min(c.amount, commission_on(p.amount - p.refunded_amount, RATE))
                assert kept > 0
            elif c.status == "clawed_back":
                assert kept == 0
            elif c.sharer_id == self.sharer.user_id:
                released += kept
            assert c.sharer_id != c.buyer_id
        assert wallet(self.services, self.sharer.user_id) == released

    def _settle(self) -> None:
        super()._settle()
        # Every refund window open at the walk's end closes: what is frozen is paid.
        clock.advance(timedelta(days=31))
        self.worker.sweep_commissions(utc_now())
        self.commissions_follow_what_is_still_paid()
        self.money_is_sound()
        assert not [c for c, _ in self._commissions() if c.status == "frozen"]
        for c, _ in self._commissions():
            self.tally.seen[f"commission {c.status}"] += 1
            if c.clawed_back and c.status != "clawed_back":
                self.tally.seen["commission shrunk"] += 1


def test_commissions_keep_money_balanced_under_random_events(
    services: Services, client: TestClient
) -> None:
    tally = Tally()
    run_state_machine_as_test(
        lambda: CommissionMoneyMachine(services, client, tally),
        settings=settings(
            max_examples=walks(10 if services.db.is_sqlite else 5),
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )
    seen = tally.seen
    assert seen["commission frozen"] + seen["commission released"], seen
    assert seen["commission released"], seen
