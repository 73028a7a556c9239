"""Every refund after success ends: one its provider refuses, or whose calls run out of
attempts or time, stops being asked and waits in the operators' queue, still owed to the payer;
an operator retries it, or pays it into the payer's wallet on the provider's word that it was
not made. On both databases; the sandbox is real, only its line fails."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pintuan.audit.service import audit_database
from pintuan.domain.reconciliation import Reconciliation, reconcile
from pintuan.domain.roles import Role
from pintuan.kit.rawsql import RawTx
from pintuan.kit.time import clock, utc_now
from pintuan.ledger.reconcile import our_movements, their_movements
from pintuan.payments.endings import CallLimits
from pintuan.payments.refund_models import Refund
from pintuan.payments.refunds import REFUND_CALL, claim_due_refunds, retry_refund_later
from pintuan.services import Services
from pintuan.worker import Worker
from tests.console_data import HTML, form_post, log_in
from tests.factories import Account, create_account
from tests.features.test_ledger import balance, wallet
from tests.features.test_payment_endings import notices_of, sound
from tests.features.test_payment_properties import FalteringSandbox, Fault, faltering_sandbox
from tests.features.test_refunds import confirmed_team, refund, sandbox_refunds

LIMITS = CallLimits(
    max_attempts=3, deadline_after=timedelta(hours=72), capture_margin=timedelta(hours=1)
)
_keys = itertools.count()


@pytest.fixture(autouse=True)
def still_time(monkeypatch: pytest.MonkeyPatch) -> None:
    start = datetime.now(UTC)
    monkeypatch.setattr(clock, "now", lambda: start + clock.offset)


class Refunding:
    """A team of two that succeeded on sandbox holds, its merchant's staff, an operator, and
    the sandbox behind a line that fails as told."""

    def __init__(self, services: Services, client: TestClient) -> None:
        self.services, self.client = services, client
        self.merchant, self.staff, self.seats = confirmed_team(client, services)
        self.operator = create_account(services, role=Role.OPERATOR)
        self.provider: FalteringSandbox = faltering_sandbox(services)
        self.worker = Worker(services)
        self.worker._limits = LIMITS  # a small cap, so that a test reaches it in a few ticks

    @property
    def payer(self) -> Account:
        return self.seats[1][0]

    def refund(self, amount: int, *faults: Fault) -> str:
        """The staff refund ``amount`` of the joiner's seat; its calls meet ``faults`` first."""
        self.provider.faults["refund"].extend(faults)
        made = refund(self.client, self.staff, self.seats[1][1], amount)
        assert made.status_code == 201, made.text
        return str(made.json()["id"])

    def row(self, refund_id: str) -> Refund:
        found = self.services.db.run_sync(lambda s: s.get(Refund, refund_id), write=False)
        assert found is not None
        return found

    def tick_until_due(self, refund_id: str) -> None:
        due = self.row(refund_id).next_attempt_at
        assert due is not None
        clock.advance(max(due - utc_now(), timedelta(0)))
        self.worker.tick()

    def calls(self) -> list[str]:
        return [c.key for c in self.provider.calls if c.kind == "refund"]

    def act(self, refund_id: str, action: str, who: Account | None = None) -> Any:
        headers = {**(who or self.operator).headers, "Idempotency-Key": f"act-{next(_keys)}"}
        return self.client.post(
            f"/v1/operator/refunds/{refund_id}/actions", json={"action": action}, headers=headers
        )

    def progress(self, refund_id: str) -> str:
        """Where the refund stands, as its payer reads it."""
        page = self.client.get(f"/v1/seats/{self.seats[1][1]}/refunds", headers=self.payer.headers)
        assert page.status_code == 200, page.text
        [found] = [r for r in page.json()["items"] if r["id"] == refund_id]
        return str(found["progress"])

    def page_of(self, who: Account, path: str) -> str:
        """A page as ``who`` sees it in their browser."""
        log_in(self.client, who)
        try:
            page = self.client.get(path)
        finally:
            self.client.cookies.clear()  # the other calls carry their own tokens
        assert page.status_code == 200, page.text
        return page.text

    def orders_page(self) -> str:
        """The payer's orders page."""
        return self.page_of(self.payer, "/orders")

    def history(self, refund_id: str) -> list[tuple[str, str, str | None]]:
        """The refund's history as the operators read it: action, outcome, who."""
        one = self.client.get(f"/v1/operator/refunds/{refund_id}", headers=self.operator.headers)
        assert one.status_code == 200, one.text
        return [(a["action"], a["outcome"], a["actor_id"]) for a in one.json()["history"]]

    def queue(self) -> list[dict[str, Any]]:
        page = self.client.get("/v1/operator/refunds/queue", headers=self.operator.headers)
        assert page.status_code == 200, page.text
        return list(page.json()["data"])


@pytest.fixture
def world(services: Services, client: TestClient) -> Refunding:
    return Refunding(services, client)


def test_a_refund_the_provider_refuses_waits_for_an_operator_who_pays_it_into_the_wallet(
    world: Refunding, services: Services
) -> None:
    # Given a refund the sandbox declines for good
    refund_id = world.refund(600, Fault.DECLINED)
    before = wallet(services, world.payer.user_id)
    assert world.progress(refund_id) == "on_its_way"

    # When the worker asks once
    world.worker.tick()

    # Then it is asked no more: it waits in the queue, still owed, and the operator is told
    row = world.row(refund_id)
    assert (row.status, row.next_attempt_at, row.last_outcome) == ("pending", None, "refused")
    assert row.queued_at is not None
    assert row.attempts == 1
    [queued] = world.queue()
    assert (queued["id"], queued["actions"]) == (refund_id, ["retry", "wallet"])
    assert "declined for good" in queued["last_error"]
    [(told, data)] = notices_of(services, "refund_queued")
    assert told == world.operator.user_id
    assert (data["amount"], data["currency"], data["subject_id"]) == (600, "USD", refund_id)
    clock.advance(timedelta(hours=5))
    world.worker.run_until_idle()
    assert world.calls() == [refund_id]
    assert balance(services, "refunds_payable") == -600
    sound(services)  # with the operators: not money in limbo
    # And the payer reads that it is delayed and still theirs, not that it is on its way
    assert world.progress(refund_id) == "delayed"
    assert "Refund delayed" in world.orders_page()
    # And the merchant's staff read that the operators have it
    order = world.page_of(
        world.staff, f"/console/merchants/{world.merchant.id}/seats/{world.seats[1][1]}"
    )
    assert "Refused or unanswered by the provider: with the operators" in order

    # When an operator pays it into the payer's wallet
    paid = world.act(refund_id, "wallet")

    # Then the payer has it at once, nothing is owed, and the payer is told
    assert paid.status_code == 200, paid.text
    assert paid.json()["refund"]["status"] == "succeeded"
    assert paid.json()["refund"]["destination"] == "wallet"
    assert paid.json()["refund"]["resolution"] == "wallet"
    assert paid.json()["refund"]["resolved_by"] == world.operator.user_id
    assert paid.json()["refund"]["actions"] == []
    assert wallet(services, world.payer.user_id) == before + 600
    assert balance(services, "refunds_payable") == 0
    world.worker.run_until_idle()
    assert [d["amount"] for _, d in notices_of(services, "money_returned")] == [600]
    assert world.queue() == []
    assert world.progress(refund_id) == "in_wallet"
    assert notices_of(services, "refund_sent_back") == []
    sound(services)

    # And a second action changes nothing
    again = world.act(refund_id, "wallet")
    assert (again.status_code, again.json()["code"]) == (409, "refund_not_queued")
    assert wallet(services, world.payer.user_id) == before + 600
    sound(services)
    # And its history says what happened, and who acted
    assert world.history(refund_id) == [
        ("refund", "refused", None),
        ("give_up", "refused", None),
        ("operator_wallet", "accepted", world.operator.user_id),
    ]


def test_a_refund_whose_calls_keep_failing_stops_at_its_cap_and_an_operator_retries_it(
    world: Refunding, services: Services
) -> None:
    # Given a refund whose every answer is lost three times (each may have made it)
    refund_id = world.refund(400, Fault.LOST, Fault.LOST, Fault.LOST)

    # When the worker tries it with backoff until its cap of three attempts
    world.worker.tick()
    world.tick_until_due(refund_id)
    assert world.row(refund_id).queued_at is None  # two failures: tried again
    world.tick_until_due(refund_id)

    # Then it waits for an operator, who may only retry it: it may have been made
    row = world.row(refund_id)
    assert (row.status, row.next_attempt_at, row.last_outcome) == ("pending", None, "failed")
    assert row.attempts == 3
    assert [q["actions"] for q in world.queue()] == [["retry"]]
    refused = world.act(refund_id, "wallet")
    assert (refused.status_code, refused.json()["code"]) == (409, "refund_outcome_unknown")
    sound(services)

    # When the operator retries it
    retried = world.act(refund_id, "retry")
    assert retried.status_code == 200, retried.text
    assert retried.json()["refund"]["attempts"] == 0
    world.worker.tick()

    # Then the sandbox answers under the same key with the refund it made once, and it is done
    row = world.row(refund_id)
    assert (row.status, row.resolution, row.destination) == ("succeeded", "retry", "original")
    assert world.calls() == [refund_id] * 4
    assert sandbox_refunds(services) == [(refund_id, 400)]
    assert world.queue() == []
    sound(services)
    assert world.history(refund_id) == [
        *[("refund", "failed", None)] * 3,
        ("give_up", "attempts", None),
        ("operator_retry", "accepted", world.operator.user_id),
        ("refund", "done", None),
    ]


def test_a_refund_whose_worker_stops_during_every_call_waits_for_an_operator_at_its_cap(
    world: Refunding, services: Services
) -> None:
    # Given a refund owed at the sandbox
    refund_id = world.refund(400)

    # When a worker takes its call and stops before it answers, as often as it may be made,
    # and each time the next worker takes it over once the lease has run out
    lease = timedelta(minutes=2)
    for _ in range(LIMITS.max_attempts):
        [due] = services.db.run_raw_sync(claim_due_refunds, utc_now(), 10, lease, LIMITS)
        assert due.id == refund_id
        clock.advance(lease + timedelta(seconds=1))
    assert world.row(refund_id).attempts == LIMITS.max_attempts

    # Then the next worker makes no call: the refund waits for an operator, who may only retry
    # it (any of those calls may have made it)
    world.worker.tick()
    row = world.row(refund_id)
    assert (row.status, row.next_attempt_at, row.attempts) == ("pending", None, 3)
    assert "stopped" in (row.last_error or "")
    assert world.calls() == []
    assert [q["actions"] for q in world.queue()] == [["retry"]]
    assert world.history(refund_id) == [("refund", "failed", None), ("give_up", "attempts", None)]
    sound(services)

    # And the operator's retry makes it once
    assert world.act(refund_id, "retry").status_code == 200
    world.worker.tick()
    assert world.row(refund_id).status == "succeeded"
    assert sandbox_refunds(services) == [(refund_id, 400)]
    sound(services)


def test_a_refund_failing_past_its_deadline_waits_for_an_operator_before_its_cap(
    world: Refunding, services: Services
) -> None:
    # Given the worker gives a refund 72 hours from its first failure, and twenty attempts
    world.worker._limits = CallLimits(
        max_attempts=20, deadline_after=timedelta(hours=72), capture_margin=timedelta(hours=1)
    )
    refund_id = world.refund(300, Fault.REFUSED, Fault.REFUSED)
    world.worker.tick()
    first = world.row(refund_id)
    assert first.call_deadline is not None
    assert first.next_attempt_at is not None

    # When its next failure comes after the deadline
    clock.advance(timedelta(hours=73))
    world.worker.tick()

    # Then it waits for an operator after two attempts, and the audit does not call it limbo
    row = world.row(refund_id)
    assert (row.attempts, row.next_attempt_at, row.last_outcome) == (2, None, "failed")
    assert row.call_deadline == first.call_deadline
    assert services.db.run_sync(lambda s: audit_database(s, timedelta(0)), write=False) == []
    assert [line[:2] for line in world.history(refund_id)] == [
        ("refund", "failed"),
        ("refund", "failed"),
        ("give_up", "deadline"),
    ]

    # And a retry starts a fresh count and deadline, and the sandbox makes it
    assert world.act(refund_id, "retry").status_code == 200
    assert world.row(refund_id).call_deadline is None
    world.worker.tick()
    assert world.row(refund_id).status == "succeeded"
    sound(services)


def test_only_operators_see_and_act_on_the_refund_queue_and_the_wallet_needs_a_key(
    world: Refunding, client: TestClient
) -> None:
    refund_id = world.refund(200, Fault.DECLINED)
    world.worker.tick()
    for who in (world.staff, world.payer):
        listed = client.get("/v1/operator/refunds/queue", headers=who.headers)
        assert listed.status_code == 403, listed.text
        acted = world.act(refund_id, "wallet", who)
        assert acted.status_code == 403, acted.text
    keyless = client.post(
        f"/v1/operator/refunds/{refund_id}/actions",
        json={"action": "wallet"},
        headers=world.operator.headers,
    )
    assert (keyless.status_code, keyless.json()["code"]) == (422, "idempotency_key_required")
    unknown = world.act("rfd_nothing", "retry")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "refund_not_found")
    nonsense = world.act(refund_id, "forget")
    assert nonsense.status_code == 422
    one = client.get(f"/v1/operator/refunds/{refund_id}", headers=world.operator.headers)
    assert (one.status_code, one.json()["actions"]) == (200, ["retry", "wallet"])
    # Nothing of it changed the refund
    assert world.row(refund_id).resolved_at is None


def test_the_console_shows_the_refund_queue_and_an_operator_acts_from_it(
    world: Refunding, services: Services, client: TestClient
) -> None:
    # Given one refund the provider refused and one whose answers were lost to its cap
    refused = world.refund(500, Fault.DECLINED)
    world.worker.tick()
    lost = world.refund(250, Fault.LOST, Fault.LOST, Fault.LOST)
    for _ in range(3):
        clock.advance(timedelta(minutes=5))
        world.worker.tick()
    assert world.row(lost).queued_at is not None

    # When the operator opens the refunds queue in the console
    log_in(client, world.operator)
    page = client.get("/console/operator/refund-queue", headers=HTML)

    # Then each shows why it is there, and only the refused one may go to the wallet
    assert page.status_code == 200, page.text
    assert "The provider refused it" in page.text
    assert "No answer: it may have been made" in page.text
    assert f"/console/operator/refund-queue/{refused}/wallet" in page.text
    assert f"/console/operator/refund-queue/{lost}/retry" in page.text
    assert f"/console/operator/refund-queue/{lost}/wallet" not in page.text
    # And each its history of attempts
    assert "4 lines" in page.text  # three lost answers and the giving up
    assert "give_up: attempts" in page.text

    # When the operator pays the refused one into the wallet from the page
    before = wallet(services, world.payer.user_id)
    done = form_post(
        client,
        "/console/operator/refund-queue",
        f"/console/operator/refund-queue/{refused}/wallet",
        {},
    )

    # Then it is done, the page says so, and only the other waits
    assert done.status_code == 303, done.text
    assert wallet(services, world.payer.user_id) == before + 500
    after = client.get(done.headers["location"], headers=HTML)
    assert "The refund went into the payer&#39;s wallet." in after.text
    assert [q["id"] for q in world.queue()] == [lost]
    sound(services)


def _deliver(client: TestClient, hook: tuple[bytes, dict[str, str]]) -> Any:
    body, headers = hook
    delivered = client.post("/v1/webhooks/sandbox", content=body, headers=headers)
    assert delivered.status_code == 200, delivered.text
    return delivered.json()


@pytest.mark.parametrize("answered", [True, False], ids=["paid", "answer_lost"])
def test_a_refund_whose_money_came_back_is_owed_again_and_only_the_wallet_pays_it(
    world: Refunding, services: Services, client: TestClient, answered: bool
) -> None:
    # Given a refund the sandbox made (its answer reached us, or was lost)
    refund_id = world.refund(450, *([] if answered else [Fault.LOST]))
    world.worker.tick()
    assert (world.row(refund_id).status == "succeeded") is answered
    ref = world.provider.sandbox.intent_of_payment(world.row(refund_id).payment_id).ref
    before = wallet(services, world.payer.user_id)

    # When the sandbox says its money came back (the payer's card was closed)
    hook = world.provider.sandbox.return_refund_after_success(ref, refund_id)
    _deliver(client, hook)

    # Then it is owed again, paid and returned in the ledger as at the sandbox, and queued
    row = world.row(refund_id)
    assert (row.status, row.last_outcome, row.next_attempt_at) == ("pending", "returned", None)
    assert row.provider_ref == f"re_{refund_id}"
    assert balance(services, "refunds_payable") == -450
    assert [q["actions"] for q in world.queue()] == [["wallet"]]
    world.worker.run_until_idle()
    assert len(notices_of(services, "refund_queued")) == 1
    sound(services)  # the sandbox's refund and its return are both in the ledger
    # And the payer, who may have been told it went back to them, is told it came back
    [(told, data)] = notices_of(services, "refund_sent_back")
    assert (told, data["amount"], data["currency"]) == (world.payer.user_id, 450, "USD")
    assert world.progress(refund_id) == "sent_back"
    assert "Sent back by your bank" in world.orders_page()

    # And the same news again changes nothing; a retry is refused: it would find the same
    # failed refund under its key
    assert _deliver(client, hook)["duplicate"] is True
    _deliver(client, world.provider.sandbox.refund_notice(ref, refund_id))  # a stale success
    assert world.row(refund_id).status == "pending"
    again = world.act(refund_id, "retry")
    assert (again.status_code, again.json()["code"]) == (409, "refund_came_back")
    clock.advance(timedelta(hours=2))
    world.worker.run_until_idle()
    assert world.calls() == [refund_id]

    # When the operator pays it into the wallet
    assert world.act(refund_id, "wallet").status_code == 200

    # Then the payer has it, nothing is owed, and every check holds
    assert wallet(services, world.payer.user_id) == before + 450
    assert world.progress(refund_id) == "in_wallet"
    world.worker.run_until_idle()
    assert len(notices_of(services, "refund_sent_back")) == 1  # the repeat told nobody again
    # And its history shows the call, the news (once) and the operator's act
    assert world.history(refund_id) == [
        ("refund", "done" if answered else "failed", None),
        ("news", "returned", None),
        ("operator_wallet", "accepted", world.operator.user_id),
    ]
    assert balance(services, "refunds_payable") == 0
    assert world.queue() == []
    sound(services)
    # And the sandbox's statement (the refund, then its return) matches the ledger item by item
    assert _reconciled(services, world.provider).findings == []


def _reconciled(services: Services, provider: FalteringSandbox) -> Reconciliation:
    today = utc_now().date()
    records = [r for d in (today - timedelta(days=1), today) for r in provider.records_for_day(d)]
    ours = services.db.run_sync(
        lambda s: our_movements(
            s, "sandbox", utc_now() - timedelta(days=2), utc_now() + timedelta(days=1)
        ),
        write=False,
    )
    return reconcile(ours, their_movements(records))


def test_a_call_that_fails_after_news_of_the_refund_came_leaves_it_as_the_news_did(
    world: Refunding, services: Services, client: TestClient
) -> None:
    # Given a refund the worker has claimed (its call under way), made at the sandbox
    refund_id = world.refund(300)
    [due] = services.db.run_raw_sync(claim_due_refunds, utc_now(), 10, timedelta(minutes=2), LIMITS)
    ref = world.provider.sandbox.intent_of_payment(due.payment_id).ref
    world.provider.sandbox.refund(ref, due.amount, due.idempotency_key)

    # When news that it came back arrives before the call's failure is recorded
    _deliver(client, world.provider.sandbox.return_refund_after_success(ref, refund_id))
    queued = services.db.run_raw_sync(
        partial(retry_refund_later, refused=False), due, "timed out", utc_now(), LIMITS
    )

    # Then the failure changes nothing: it waits for the wallet, as the news left it
    row = world.row(refund_id)
    assert queued is False
    assert (row.last_outcome, row.next_attempt_at, row.attempts) == ("returned", None, 1)
    assert [q["actions"] for q in world.queue()] == [["wallet"]]
    sound(services)


def test_news_committed_between_a_failed_calls_read_and_its_write_still_wins(
    world: Refunding, services: Services, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    if services.db.is_sqlite:
        pytest.skip("SQLite's write lock runs the two one after the other (the test above)")
    # Given a refund the worker has claimed, made at the sandbox, whose call is reported failed
    refund_id = world.refund(300)
    [due] = services.db.run_raw_sync(claim_due_refunds, utc_now(), 10, timedelta(minutes=2), LIMITS)
    ref = world.provider.sandbox.intent_of_payment(due.payment_id).ref
    world.provider.sandbox.refund(ref, due.amount, due.idempotency_key)
    hook = world.provider.sandbox.return_refund_after_success(ref, refund_id)

    # When the news that it came back commits after the failure's transaction read the refund
    # and before it writes (another connection, as another process's webhook would)
    read_it = RawTx.one_as
    delivered: list[Any] = []

    def one_as(tx: RawTx, shape: Any, sql: Any, values: Any) -> Any:
        found = read_it(tx, shape, sql, values)
        if sql is REFUND_CALL and not delivered:
            news = threading.Thread(target=lambda: delivered.append(_deliver(client, hook)))
            news.start()
            news.join(timeout=30)
        return found

    monkeypatch.setattr(RawTx, "one_as", one_as)
    queued = services.db.run_raw_sync(
        partial(retry_refund_later, refused=False), due, "timed out", utc_now(), LIMITS
    )
    monkeypatch.undo()

    # Then the failure's write sees the news and changes nothing: it waits for the wallet
    assert len(delivered) == 1
    assert delivered[0]["duplicate"] is False
    row = world.row(refund_id)
    assert queued is False
    assert (row.last_outcome, row.next_attempt_at, row.attempts) == ("returned", None, 1)
    assert [q["actions"] for q in world.queue()] == [["wallet"]]
    sound(services)
