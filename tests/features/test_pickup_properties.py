"""The money machine with pickup points: the refunds machine's walks (payments through a
faltering provider, refunds after success in parts, the clock and the worker) on pickup deals of
goods, plus shoppers choosing a point, its leader marking the goods arrived and handing orders
over by their codes, and days passing beyond the claim so that the worker refunds what was not
collected. After every step the ledger's checks and the recomputing audit pass, each order
handed over has its leader's commission, and the leader's wallet holds exactly what was released
of them and their frozen account what is still frozen, less what refunds took back."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, run_state_machine_as_test
from sqlalchemy import select

from pintuan.commissions.models import Commission
from pintuan.kit.time import clock
from pintuan.pickups.models import Pickup
from pintuan.services import Services
from tests.features.pickingup import open_point
from tests.features.test_ledger import balance, wallet
from tests.features.test_payment_properties import (
    PICK,
    SHOPPERS,
    RefundingMoneyMachine,
    Tally,
    answer,
    step,
)
from tests.properties import walks

UNCLAIMED_DAYS = 1
# Every refusal a pickup step may meet when another step got there first.
CHOOSING = {"order_closed", "pickup_not_changeable", "pickup_point_full"}
HANDING = {
    "pickup_already_handed_over",
    "pickup_refunded",
    "pickup_not_arrived",
    "pickup_payment_pending",
}


class PickupMoneyMachine(RefundingMoneyMachine):
    def __init__(self, services: Services, client: TestClient, tally: Tally) -> None:
        super().__init__(services, client, tally)
        self.leader, self.point = open_point(client, services, self.operator, capacity=20)

    def deal_fields(self) -> dict[str, Any]:
        return {
            "vertical": "goods",
            "pickup": {"commission_bps": 1500, "unclaimed_days": UNCLAIMED_DAYS},
        }

    # Not steps here, as with vouchers: money taken back at the provider before its news
    # arrives would be refunded again by the unclaimed refund, which the sandbox does not refuse.
    def refund_in_the_dashboard(self, pick: int, amount: int) -> None:
        raise NotImplementedError

    def dispute_opens(self, pick: int) -> None:
        raise NotImplementedError

    def dispute_is_decided(self, pick: int, won: bool) -> None:
        raise NotImplementedError

    def _pickups(self, *statuses: str) -> list[Pickup]:
        return self.db.run_sync(
            lambda s: list(
                s.scalars(
                    select(Pickup).where(Pickup.status.in_(statuses)).order_by(Pickup.seat_id)
                )
            ),
            write=False,
        )

    def _choose(self, seat_id: str, user: int) -> Any:
        return answer(
            self.client.post(
                f"/v1/seats/{seat_id}/pickup",
                json={"pickup_point_id": self.point["id"]},
                headers=self.shoppers[user % SHOPPERS].headers,
            ),
            CHOOSING,
        )

    @step(pick=PICK)
    def shopper_chooses_the_point(self, pick: int) -> None:
        if not self.seats:
            return
        seat_id, user = self.seats[pick % len(self.seats)]
        done = self._choose(seat_id, user)
        event(f"pickup choose: {'done' if done else 'refused'}")

    def _arrive(self, deal_id: str) -> int:
        done = answer(
            self.client.post(
                f"/v1/pickup-points/{self.point['id']}/arrivals",
                json={"deal_id": deal_id},
                headers=self.leader.headers,
            ),
            set(),
        )
        return int(done["arrived"])

    @step(deal=st.integers(0, 1))
    def goods_arrive(self, deal: int) -> None:
        if not self.deals:
            return
        arrived = self._arrive(self.deals[deal % len(self.deals)])
        event(f"pickup arrivals: {min(arrived, 2)}")

    @step(pick=PICK, ended=st.booleans())
    def leader_hands_over(self, pick: int, ended: bool) -> None:
        """The leader hands an order over (or, sometimes, one already ended, and is refused)."""
        pickups = self._pickups(*(("handed_over", "refunded") if ended else ("arrived",)))
        if not pickups and not ended:
            # Nothing at the point yet: a team succeeds if none has, every seat so far chooses
            # the point, and the goods arrive.
            self._earned(fill=True)
            chosen = {p.seat_id for p in self._pickups("waiting", "arrived", "handed_over")}
            for seat_id, user in self.seats:
                if seat_id not in chosen:
                    self._choose(seat_id, user)
            for deal_id in self.deals:
                self._arrive(deal_id)
            pickups = self._pickups("arrived")
        if not pickups:
            return
        pickup = pickups[pick % len(pickups)]
        done = answer(
            self.client.post(
                "/v1/pickups/handover", json={"code": pickup.code}, headers=self.leader.headers
            ),
            HANDING,
        )
        event(f"pickup hand-over: {'done' if done else 'refused'}")

    @step(ticks=st.integers(1, 2))
    def the_claim_runs_out(self, ticks: int) -> None:
        """Days pass beyond an arrived order's claim; the worker refunds what is uncollected."""
        clock.advance(timedelta(days=UNCLAIMED_DAYS, minutes=1))
        for _ in range(ticks):
            self.worker.tick()

    @invariant()
    def the_leaders_wallet_holds_their_released_commissions(self) -> None:
        def read(s: Any) -> tuple[set[str], dict[str, tuple[int, int]], dict[str, int]]:
            handed = set(
                s.scalars(
                    select(Pickup.seat_id).where(
                        Pickup.status == "handed_over", Pickup.commission_amount > 0
                    )
                )
            )
            rows = s.scalars(select(Commission).where(Commission.kind == "pickup")).all()
            kept: dict[str, int] = {"frozen": 0, "released": 0, "clawed_back": 0}
            for c in rows:
                kept[c.status] += c.amount - c.clawed_back
            return handed, {c.seat_id: (c.amount, c.clawed_back) for c in rows}, kept

        handed, rows, kept = self.db.run_sync(read, write=False)
        assert set(rows) == handed
        assert kept["clawed_back"] == 0
        assert wallet(self.services, self.leader.user_id) == kept["released"]
        frozen = -balance(self.services, f"commissions_frozen:{self.leader.user_id}")
        assert frozen == kept["frozen"]

    def _settle(self) -> None:
        super()._settle()
        for status in ("waiting", "arrived", "handed_over", "refunded", "cancelled"):
            self.tally.seen[f"pickup {status}"] += len(self._pickups(status))


def test_pickups_keep_money_balanced_under_random_events(
    services: Services, client: TestClient
) -> None:
    tally = Tally()
    run_state_machine_as_test(
        lambda: PickupMoneyMachine(services, client, tally),
        settings=settings(
            max_examples=walks(10 if services.db.is_sqlite else 5),
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )
    seen = tally.seen
    assert seen["pickup handed_over"], seen
    assert seen["pickup refunded"] + seen["pickup arrived"] + seen["pickup waiting"], seen
