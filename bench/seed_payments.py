"""Seed a Pintuan database for the payment scenarios of ``bench.load``, and verify it after.

Run with the project's Python, the database named by ``PINTUAN_DATABASE_URL`` as everywhere:

    pintuan migrate
    python -m bench.seed_payments seed --payments 40000 --out payments.json
    ... deliver some of the webhooks in payments.json to POST /v1/webhooks/sandbox ...
    python -m bench.seed_payments verify --seed payments.json --out verified.json

``seed`` does what shoppers and the sandbox would have done up to the moment the sandbox sends
its notifications:

* one approved merchant with ``--deals`` live deals of teams of ``--team-size``;
* ``--payments`` shoppers; ``--payments / --team-size`` teams over the deals round-robin, each
  started by one shopper and joined by the others through the engine's own
  ``teams.service.start_team``/``join_team``, so every shopper holds one seat;
* for every seat an open sandbox payment whose checkout the shopper has completed at the
  sandbox, and the ``payment.authorized`` notification the sandbox then sends. The first one
  goes the whole way through the code: opened as ``POST /v1/seats/{id}/payments`` opens it
  (``payments.service.start_payment``, the sandbox's ``create_checkout``, ``attach_checkout``),
  paid with the sandbox's ``complete_checkout`` (a shopper pressing "pay"), which returns the
  notification. Every other payment and sandbox checkout is a copy of those two rows with its
  own ids and price, written in bulk, and its notification is made by the sandbox's own
  ``webhook``: through the ORM and the sandbox's one-transaction-per-call methods each payment
  took several milliseconds, minutes for a benchmark's worth of them.

The JSON written to ``--out`` lists the payments team by team (leader first), each with its
seat, team and the notification's body. The signatures are not kept: they carry a timestamp
that Pintuan accepts for five minutes only, so ``bench.load`` signs each body again right before
the run that sends it, with the same secret (``PINTUAN_SANDBOX_WEBHOOK_SECRET``, set for both).

Holds last ``HOLD`` rather than the product's ten minutes: the seats must still be held when the
benchmark reaches them, after seeding and the other suites. A seat whose hold had run out would
take the late-payment path (seat released, money owed back) instead of the one measured.

``verify`` checks the state the deliveries left (see :func:`verify`) and writes what it found.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from bench.seed_joins import add_users, create_live_deals, create_merchant
from pintuan.audit.ledger import check_ledger
from pintuan.bootstrap import build_services
from pintuan.config import get_settings
from pintuan.domain.ledger import JournalKind
from pintuan.domain.payments import CheckoutRequest, PaymentStyle
from pintuan.events.models import OutboxEvent
from pintuan.kit.db import Database
from pintuan.kit.ids import new_id
from pintuan.kit.orm import table_of
from pintuan.kit.rawsql import RawTx
from pintuan.kit.time import utc_now
from pintuan.ledger.models import Journal
from pintuan.payments import service as payments
from pintuan.payments.models import Payment, WebhookEvent
from pintuan.payments.owed import FIRST_POLL
from pintuan.payments.providers.sandbox import SandboxIntent, SandboxProvider
from pintuan.services import Services
from pintuan.teams import reads as team_reads
from pintuan.teams import service as teams
from pintuan.teams.models import Seat, Team

HOLD = timedelta(hours=3)
# Teams, and then payments, written per transaction while seeding.
TEAMS_PER_TRANSACTION = 200
PAYMENTS_PER_TRANSACTION = 500
# How many problems of each run of ``verify`` are written out in full.
PROBLEMS_SHOWN = 20


def _sandbox(services: Services) -> SandboxProvider:
    provider = services.provider("sandbox")
    if not isinstance(provider, SandboxProvider):
        raise SystemExit("the sandbox provider is disabled (PINTUAN_SANDBOX_ENABLED)")
    return provider


def seed(services: Services, count: int, team_size: int, deal_count: int) -> dict[str, Any]:
    """``count`` held seats in teams of ``team_size`` over ``deal_count`` deals, each with an
    open sandbox payment paid at the sandbox; lists each payment's notification."""
    sandbox = _sandbox(services)
    db = services.db
    slug = f"bench-pay-{secrets.token_hex(4)}"
    staff = create_merchant(db, slug)
    titles = [f"Bench payments deal {n}" for n in range(deal_count)]
    # Each shopper holds one seat, so a limit of 1 is never reached.
    deal_ids = create_live_deals(db, staff, titles, team_size=team_size, per_user_limit=1)
    password_hash = services.passwords.hash(secrets.token_urlsafe(24))
    shoppers = db.run_sync(
        lambda s: [
            u.id for u in add_users(s, password_hash, f"{slug}.bench.invalid", "payer", count)
        ]
    )

    # Teams: team t is started by shopper t*K and joined by the next K-1 shoppers.
    team_count = -(-count // team_size)
    seats: list[tuple[str, str, str]] = []  # (seat, team, shopper), team by team

    def start_teams(tx: RawTx, first: int, last: int) -> list[tuple[str, str, str]]:
        now = utc_now()
        made = []
        for t in range(first, last):
            members = shoppers[t * team_size : (t + 1) * team_size]
            started = teams.start_team(tx, members[0], deal_ids[t % deal_count], now, hold=HOLD)
            made.append((started.seat.id, started.team_id, members[0]))
            for shopper in members[1:]:
                seat = teams.join_team(tx, shopper, started.team_id, now, hold=HOLD)
                made.append((seat.id, started.team_id, shopper))
        return made

    for first in range(0, team_count, TEAMS_PER_TRANSACTION):
        last = min(first + TEAMS_PER_TRANSACTION, team_count)
        seats += db.run_raw_sync(start_teams, first, last)

    # The first seat's payment goes the whole way through the code, the others copy it (see the
    # module's docstring).
    first_seat, rest = seats[0], seats[1:]
    template = _pay_through_the_api_path(db, sandbox, first_seat)
    rows = [template.row]
    for first in range(0, len(rest), PAYMENTS_PER_TRANSACTION):
        chunk = rest[first : first + PAYMENTS_PER_TRANSACTION]
        rows += db.run_sync(_copy_payments, sandbox, template, chunk)
    return {
        "database": db.dialect,
        "team_size": team_size,
        "teams": team_count,
        "deals": deal_count,
        "payments": rows,
    }


@dataclass(frozen=True)
class _Template:
    """A payment opened and paid through the real code, for the bulk copies to follow."""

    payment: dict[str, Any]
    intent: dict[str, Any]
    event_type: str
    row: dict[str, str]


def _pay_through_the_api_path(
    db: Database, sandbox: SandboxProvider, seat_row: tuple[str, str, str]
) -> _Template:
    """Open the seat's payment as ``POST /v1/seats/{id}/payments`` does (payment, then the
    provider's checkout between two transactions, then attached), then pay it at the sandbox."""
    seat_id, team_id, shopper = seat_row
    capabilities = sandbox.capabilities

    def begin(session: Session) -> tuple[str, payments.NewPayment]:
        now = utc_now()
        seat = team_reads.owned_seat(session, shopper, seat_id)
        kind = payments.check_checkout(capabilities, seat.currency, None)
        style = payments.choose_style(
            capabilities, sandbox.default_style(), team_reads.team_expiry(session, team_id), now
        )
        started = payments.start_payment(
            session, shopper, seat, sandbox.name, kind, style, "original", now
        )
        return kind, started

    kind, started = db.run_sync(begin)
    payment = started.payment
    checkout = sandbox.create_checkout(
        CheckoutRequest(
            payment.id,
            payment.amount,
            payment.currency,
            PaymentStyle(payment.style),
            f"Pintuan seat {seat_id}",
            kind=kind,
            expires_at=started.expires_at,
        )
    )
    db.run_sync(payments.attach_checkout, payment.id, kind, checkout)
    body, _headers = sandbox.complete_checkout(checkout.provider_ref, approve=True)

    def read(session: Session) -> tuple[dict[str, Any], dict[str, Any]]:
        found = session.execute(select(Payment.__table__).where(Payment.id == payment.id))
        intent = session.execute(
            select(SandboxIntent.__table__).where(SandboxIntent.ref == checkout.provider_ref)
        )
        return dict(found.one()._mapping), dict(intent.one()._mapping)

    payment_row, intent_row = db.run_sync(read, write=False)
    event = json.loads(body)
    return _Template(
        payment_row,
        intent_row,
        event["type"],
        {
            "payment": payment.id,
            "seat": seat_id,
            "team": team_id,
            "event": event["id"],
            "body": body.decode(),
        },
    )


def _copy_payments(
    session: Session,
    sandbox: SandboxProvider,
    template: _Template,
    chunk: Sequence[tuple[str, str, str]],
) -> list[dict[str, str]]:
    """The template's payment and completed checkout again for each seat of ``chunk``, with
    the seat's own ids and price; returns what ``seed`` lists for each."""
    now = utc_now()
    old_ref = template.payment["provider_ref"]
    prices = dict(
        session.execute(
            select(Seat.id, Seat.price_amount).where(Seat.id.in_([s for s, _, _ in chunk]))
        ).all()
    )
    payment_rows, intent_rows, listed = [], [], []
    for seat_id, team_id, shopper in chunk:
        payment_id, ref = new_id("pay"), new_id("sbx")
        payment_rows.append(
            template.payment
            | {
                "id": payment_id,
                "seat_id": seat_id,
                "team_id": team_id,
                "user_id": shopper,
                "amount": prices[seat_id],
                "provider_ref": ref,
                "next_action": template.payment["next_action"].replace(old_ref, ref),
                "created_at": now,
                "updated_at": now,
                "next_attempt_at": now + FIRST_POLL,
            }
        )
        intent = template.intent | {
            "ref": ref,
            "payment_id": payment_id,
            "amount": prices[seat_id],
            "created_at": now,
            "completed_at": now,
        }
        intent_rows.append(intent)
        body, _headers = sandbox.webhook(template.event_type, SandboxIntent(**intent))
        listed.append(
            {
                "payment": payment_id,
                "seat": seat_id,
                "team": team_id,
                "event": json.loads(body)["id"],
                "body": body.decode(),
            }
        )
    session.execute(insert(table_of(Payment)), payment_rows)
    session.execute(insert(table_of(SandboxIntent)), intent_rows)
    return listed


def verify(services: Services, seeded: dict[str, Any]) -> dict[str, Any]:
    """What the deliveries left, checked against what one delivery of each notification must do.

    A payment counts as delivered when its notification is in the inbox. Then, with the seeded
    payments and nothing else:

    * the inbox holds no event but the seeded ones, each once (its key makes that so);
    * a delivered payment is authorised (captured, if a worker ran) with exactly one
      authorisation journal and one ``payment.authorized`` outbox event; its seat is paid, or
      confirmed when its team succeeded;
    * a payment not delivered is still ``requires_action`` with no journal and its seat held;
    * a team succeeded exactly when the notifications of all its seats were delivered, and then
      all its seats are confirmed and every hold of it is being (or has been) captured;
    * ``pintuan.audit.ledger.check_ledger`` finds no breach in the whole ledger.
    """
    rows = seeded["payments"]
    team_size = int(seeded["team_size"])
    event_of = {r["event"]: r["payment"] for r in rows}
    payment_ids = {r["payment"] for r in rows}
    problems: list[str] = []
    started = time.monotonic()

    def read(session: Session) -> dict[str, Any]:
        inbox = session.execute(
            select(WebhookEvent.event_id, WebhookEvent.type).where(
                WebhookEvent.provider == "sandbox"
            )
        ).all()
        found = {
            p.id: p
            for p in session.execute(
                select(Payment.id, Payment.status, Payment.pending_action, Payment.seat_id).where(
                    Payment.provider == "sandbox"
                )
            ).all()
        }
        journals = Counter(
            session.execute(
                select(Journal.payment_id).where(Journal.kind == JournalKind.AUTHORIZE.value)
            ).scalars()
        )
        announced = Counter(
            session.execute(
                select(OutboxEvent.subject_id).where(OutboxEvent.type == "payment.authorized")
            ).scalars()
        )
        seats = dict(
            session.execute(
                select(Seat.id, Seat.status).join(Payment, Payment.seat_id == Seat.id)
            ).all()
        )
        team_rows = {
            t.id: t
            for t in session.execute(
                select(Team.id, Team.status, Team.team_size, Team.paid).where(
                    Team.id.in_(select(Payment.team_id).where(Payment.provider == "sandbox"))
                )
            ).all()
        }
        ledger = check_ledger(session)
        journal_count = session.scalar(select(func.count()).select_from(Journal)) or 0
        return {
            "inbox": inbox,
            "payments": found,
            "journals": journals,
            "announced": announced,
            "seats": seats,
            "teams": team_rows,
            "ledger": ledger,
            "journal_count": journal_count,
        }

    state = services.db.run_sync(read, write=False)

    stored = Counter(event_id for event_id, _ in state["inbox"])
    strangers = [e for e in stored if e not in event_of]
    if strangers:
        problems.append(f"{len(strangers)} inbox events were never seeded, e.g. {strangers[0]}")
    repeated = [e for e, n in stored.items() if n > 1]
    if repeated:
        problems.append(f"{len(repeated)} events stored more than once, e.g. {repeated[0]}")
    delivered = {event_of[e] for e in stored if e in event_of}
    missing = payment_ids - set(state["payments"])
    if missing:
        problems.append(f"{len(missing)} seeded payments are gone")

    counts: Counter[str] = Counter()
    delivered_per_team: Counter[str] = Counter()
    for row in rows:
        payment_id, seat_id = row["payment"], row["seat"]
        payment = state["payments"].get(payment_id)
        if payment is None:
            continue
        journals = state["journals"].get(payment_id, 0)
        announced = state["announced"].get(payment_id, 0)
        seat = state["seats"].get(seat_id)
        if payment_id in delivered:
            delivered_per_team[row["team"]] += 1
            counts["delivered"] += 1
            if payment.status in ("authorized", "captured"):
                counts["authorized"] += 1
            else:
                problems.append(f"delivered payment {payment_id} is {payment.status}")
            if journals != 1 or announced != 1:
                problems.append(
                    f"delivered payment {payment_id} has {journals} authorisation journals "
                    f"and {announced} payment.authorized events (1 each expected)"
                )
            else:
                counts["authorized_once"] += 1
            if seat in ("paid", "confirmed"):
                counts[f"seats_{seat}"] += 1
            else:
                problems.append(f"seat {seat_id} of delivered payment {payment_id} is {seat}")
        else:
            counts["not_delivered"] += 1
            if payment.status != "requires_action" or journals or announced:
                problems.append(
                    f"undelivered payment {payment_id} is {payment.status} with {journals} "
                    f"journals and {announced} events"
                )
            if seat != "held":
                problems.append(f"seat {seat_id} of undelivered payment {payment_id} is {seat}")

    capture_owed = {
        p.id
        for p in state["payments"].values()
        if p.pending_action == "capture" or p.status == "captured"
    }
    members: defaultdict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        members[row["team"]].append(row)
    for team_id, team_members in members.items():
        team = state["teams"].get(team_id)
        if team is None:
            problems.append(f"team {team_id} is gone")
            continue
        paid = delivered_per_team[team_id]
        full = paid == team.team_size == team_size == len(team_members)
        if team.paid != paid:
            problems.append(f"team {team_id} counts {team.paid} paid seats, {paid} were delivered")
        if full:
            counts["teams_full"] += 1
            if team.status != "succeeded":
                problems.append(f"team {team_id} has every seat paid but is {team.status}")
                continue
            counts["teams_succeeded"] += 1
            unconfirmed = [
                r["seat"] for r in team_members if state["seats"].get(r["seat"]) != "confirmed"
            ]
            uncaptured = [r["payment"] for r in team_members if r["payment"] not in capture_owed]
            if unconfirmed or uncaptured:
                problems.append(
                    f"succeeded team {team_id}: {len(unconfirmed)} seats not confirmed, "
                    f"{len(uncaptured)} holds not being captured"
                )
        elif team.status != "forming":
            problems.append(f"team {team_id} with {paid} of {team.team_size} paid is {team.status}")
        else:
            counts["teams_forming"] += 1

    ledger = state["ledger"]
    problems += [f"ledger: {b.detail}" for b in ledger.breaches]
    return {
        "ok": not problems,
        "seeded_payments": len(rows),
        "teams": len(members),
        "team_size": team_size,
        "inbox_events": sum(stored.values()),
        "delivered": counts["delivered"],
        "authorized": counts["authorized"],
        "authorized_once": counts["authorized_once"],
        "seats_paid": counts["seats_paid"],
        "seats_confirmed": counts["seats_confirmed"],
        "not_delivered": counts["not_delivered"],
        "teams_full": counts["teams_full"],
        "teams_succeeded": counts["teams_succeeded"],
        "teams_forming": counts["teams_forming"],
        "journals": state["journal_count"],
        "ledger_breaches": len(ledger.breaches),
        "problems": len(problems),
        "problems_shown": problems[:PROBLEMS_SHOWN],
        "seconds": round(time.monotonic() - started, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True)
    seeding = commands.add_parser("seed", help="seed held seats with open sandbox payments")
    seeding.add_argument("--payments", type=int, default=1_000)
    seeding.add_argument("--team-size", type=int, default=3)
    seeding.add_argument("--deals", type=int, default=100)
    seeding.add_argument("--out", type=Path, required=True)
    checking = commands.add_parser("verify", help="check the state the deliveries left")
    checking.add_argument("--seed", type=Path, required=True, help="the JSON `seed` wrote")
    checking.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    started = time.monotonic()
    if args.command == "seed" and (
        args.payments < 1 or not 2 <= args.team_size <= 100 or args.deals < 1
    ):
        parser.error("--payments ≥ 1, --team-size 2..100 and --deals ≥ 1, please")
    services = build_services(get_settings())
    try:
        if args.command == "verify":
            found = verify(services, json.loads(args.seed.read_text()))
            args.out.write_text(json.dumps(found, indent=2))
            return 0
        seeded = seed(services, args.payments, args.team_size, args.deals)
    finally:
        services.db.dispose()
    args.out.write_text(json.dumps(seeded))
    print(
        f"seeded {args.payments} payments in {seeded['teams']} teams of {args.team_size} over "
        f"{args.deals} deals in {time.monotonic() - started:.1f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
