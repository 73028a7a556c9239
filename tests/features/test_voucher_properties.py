"""The money machine with vouchers: the refunds machine's walks (payments through a faltering
provider, refunds after success in parts, the clock and the worker) on deals whose seats get
vouchers, one rewarding its leaders and one a lottery, plus the counter redeeming and undoing,
shoppers refunding unused vouchers, and a day's jump making them expire (the worker refunds
them). After every step the ledger's
checks and the recomputing audit pass: what waits for a redemption is never more than the
merchant's part, and nothing waits for a voucher that is used, refunded or expired."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test
from sqlalchemy import select

from pintuan.payments.refund_models import Refund
from pintuan.services import Services
from pintuan.vouchers.models import Voucher
from tests.features.test_payment_properties import (
    PICK,
    RefundingMoneyMachine,
    Tally,
    answer,
    step,
)
from tests.properties import walks

# Every refusal a voucher step may meet when another step got there first.
ENDED = {"voucher_already_redeemed", "voucher_refunded", "voucher_expired"}


class VoucherMoneyMachine(RefundingMoneyMachine):
    def deal_fields(self) -> dict[str, Any]:
        # A day's validity: the walk's day-long jumps make unused vouchers expire. The first
        # deal settles on redemption and rewards its leaders; a second one settles on success
        # and is a lottery (one winner a team; the others are refunded and get no voucher).
        first = not self.deals
        return {
            "vertical": "food",
            "voucher": {
                "valid_days": 1,
                "locations": ["Counter"],
                "settle_on": "redemption" if first else "success",
            },
            **(
                {"leader_reward": {"kind": "percent", "basis_points": 2000}}
                if first
                else {"lottery": {"winners": 1}}
            ),
        }

    # Not steps here: money taken back at the provider (a dashboard refund, a dispute) before
    # its news arrives would be refunded again by the expiry's automatic refund. A real
    # provider refuses such a refund (the payments queue then has it); the sandbox does not
    # model that refusal, so these walks leave those two out. Refunds after success in parts,
    # by staff, stay in.
    def refund_in_the_dashboard(self, pick: int, amount: int) -> None:
        raise NotImplementedError

    def dispute_opens(self, pick: int) -> None:
        raise NotImplementedError

    def dispute_is_decided(self, pick: int, won: bool) -> None:
        raise NotImplementedError

    def _vouchers(self, *statuses: str) -> list[Voucher]:
        return self.db.run_sync(
            lambda s: list(
                s.scalars(select(Voucher).where(Voucher.status.in_(statuses)).order_by(Voucher.id))
            ),
            write=False,
        )

    @step(pick=PICK, ended=st.booleans())
    def counter_redeems(self, pick: int, ended: bool) -> None:
        """Staff redeem an unused voucher (or, sometimes, one already ended, and are refused)."""
        vouchers = self._vouchers(*(("redeemed", "refunded", "expired") if ended else ("issued",)))
        if not vouchers:
            return
        voucher = vouchers[pick % len(vouchers)]
        done = answer(
            self.client.post(
                "/v1/vouchers/redeem", json={"code": voucher.code}, headers=self.staff.headers
            ),
            ENDED,
        )
        event(f"voucher redeem: {'done' if done else 'refused'}")

    @step(pick=PICK)
    def counter_undoes(self, pick: int) -> None:
        vouchers = self._vouchers("redeemed")
        if not vouchers:
            return
        voucher = vouchers[pick % len(vouchers)]
        done = answer(
            self.client.post(f"/v1/vouchers/{voucher.id}/undo", headers=self.staff.headers),
            {"voucher_undo_closed"},
        )
        event(f"voucher undo: {'done' if done else 'too late'}")

    @step(pick=PICK)
    def shopper_refunds_voucher(self, pick: int) -> None:
        vouchers = self._vouchers("issued", "redeemed")
        if not vouchers:
            return
        voucher = vouchers[pick % len(vouchers)]
        shopper = next(a for a in self.shoppers if a.user_id == voucher.user_id)
        done = answer(
            self.client.post(f"/v1/vouchers/{voucher.id}/refund", headers=shopper.headers),
            ENDED | {"voucher_payment_pending"},
        )
        event(f"voucher refund: {'done' if done else 'refused'}")

    def _settle(self) -> None:
        super()._settle()
        for status in ("issued", "redeemed", "refunded", "expired"):
            self.tally.seen[f"voucher {status}"] += len(self._vouchers(status))
        for (source,) in self.db.run_sync(
            lambda s: s.execute(select(Refund.source)).all(), write=False
        ):
            self.tally.seen[f"refund source {source}"] += 1


def test_vouchers_keep_money_balanced_under_random_events(
    services: Services, client: TestClient
) -> None:
    tally = Tally()
    run_state_machine_as_test(
        lambda: VoucherMoneyMachine(services, client, tally),
        settings=settings(
            max_examples=walks(10 if services.db.is_sqlite else 5),
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )
    seen = tally.seen
    assert seen["voucher redeemed"] + seen["voucher refunded"] + seen["voucher expired"], seen
    assert seen["refund source reward"] + seen["refund source lottery"], seen
