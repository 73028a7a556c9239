"""Builders of the history the consoles read: teams that filled or failed at chosen instants,
and seats paid through the sandbox so that they have payments and refunds.

The engine's own functions run with an explicit ``now``, so a test can place a team's start and
success anywhere in the past without moving the application clock.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response

from pintuan.accounts import service as accounts
from pintuan.deals import service as deals
from pintuan.deals.models import Deal
from pintuan.domain.deals import Vertical
from pintuan.domain.roles import Principal, Role
from pintuan.kit.money import Money
from pintuan.kit.time import utc_now
from pintuan.merchants.models import Merchant
from pintuan.services import Services
from pintuan.teams import service as teams
from tests.factories import PASSWORD, Account

HOLD = timedelta(minutes=10)


def past_deal(
    services: Services,
    merchant: Merchant,
    *,
    team_size: int = 2,
    group_price: int = 1500,
    list_price: int = 2000,
    leader_price: int | None = None,
    title: str = "Noodles for two",
    started_days_ago: int = 90,
) -> Deal:
    """A live deal that has been running for ``started_days_ago`` days and runs a week more."""
    staff = Principal("usr_system", Role.MERCHANT, "Staff", "en", "UTC", frozenset({merchant.id}))
    now = utc_now()
    draft = deals.DealDraft(
        merchant_id=merchant.id,
        title=title,
        description="",
        vertical=Vertical.FOOD,
        list_price=Money(list_price, merchant.currency),
        group_price=Money(group_price, merchant.currency),
        leader_price=Money(leader_price, merchant.currency) if leader_price is not None else None,
        team_size=team_size,
        stock=1000,
        per_user_limit=100,
        starts_at=now - timedelta(days=started_days_ago),
        ends_at=now + timedelta(days=7),
    )

    def work(session: Any) -> Deal:
        deal = deals.create_deal(session, staff, draft)
        return deals.change_deal_status(session, staff, deal.id, "publish")

    return services.db.run_sync(work)


def filled_team(
    services: Services, deal: Deal, members: list[Account], *, started: datetime, filled: datetime
) -> str:
    """A team started at ``started`` by the first member that succeeds at ``filled``: the
    others join a minute before and the last payment arrives at ``filled``."""
    assert len(members) == deal.team_size
    assert filled - started >= timedelta(minutes=2)

    def work(tx: Any) -> str:
        start = teams.start_team(tx, members[0].user_id, deal.id, started, hold=HOLD)
        if start.seat.status == "held":
            teams.mark_seat_paid(tx, start.seat.id, started + timedelta(minutes=1))
        joined = [
            teams.join_team(tx, m.user_id, start.team_id, filled - timedelta(minutes=1), hold=HOLD)
            for m in members[1:]
        ]
        for seat in joined:
            teams.mark_seat_paid(tx, seat.id, filled)
        return start.team_id

    return services.db.run_raw_sync(work)


def failed_team(
    services: Services, deal: Deal, leader: Account, *, started: datetime, failed: datetime
) -> str:
    """A team whose leader paid but that nobody else joined; it fails at ``failed``."""

    def work(tx: Any) -> str:
        start = teams.start_team(tx, leader.user_id, deal.id, started, hold=HOLD)
        teams.mark_seat_paid(tx, start.seat.id, started + timedelta(minutes=1))
        assert teams.fail_teams(tx, [start.team_id], failed)[0] == [start.team_id]
        return start.team_id

    return services.db.run_raw_sync(work)


@dataclass(frozen=True)
class Joined:
    team_id: str
    seat_id: str


def start_over_api(client: TestClient, account: Account, deal_id: str) -> Joined:
    response = client.post(f"/v1/deals/{deal_id}/teams", headers=account.headers)
    assert response.status_code == 201, response.text
    body = response.json()
    return Joined(body["team"]["id"], body["seat"]["id"])


def join_over_api(client: TestClient, account: Account, team_id: str) -> Joined:
    response = client.post(f"/v1/teams/{team_id}/seats", headers=account.headers)
    assert response.status_code == 201, response.text
    return Joined(team_id, response.json()["seat"]["id"])


def pay_over_api(client: TestClient, account: Account, seat_id: str) -> str:
    """Pay a held seat through the sandbox; returns the payment's id."""
    payment = client.post(
        f"/v1/seats/{seat_id}/payments", json={"provider": "sandbox"}, headers=account.headers
    )
    assert payment.status_code == 201, payment.text
    payment_id: str = payment.json()["id"]
    done = client.post(f"/v1/test_helpers/payments/{payment_id}/succeed", headers=account.headers)
    assert done.status_code == 200, done.text
    return payment_id


# ---------------------------------------------------------------------------- pages

HTML = {"accept": "text/html"}


def log_in(client: TestClient, account: Account) -> None:
    """Give the test client a browser session of ``account`` (the session cookie)."""
    response = client.post("/v1/sessions", json={"email": account.email, "password": PASSWORD})
    assert response.status_code in (200, 201), response.text


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "the page has no CSRF field"
    return found.group(1)


def form_post(client: TestClient, page_path: str, action: str, fields: dict[str, str]) -> Response:
    """Open ``page_path`` as a browser would, then submit a form of it to ``action``."""
    page = client.get(page_path, headers=HTML)
    assert page.status_code == 200, page.text
    data = {"csrf_token": csrf_of(page.text), "form_key": uuid.uuid4().hex, **fields}
    response: Response = client.post(action, data=data, headers=HTML, follow_redirects=False)
    return response


def speak_chinese(services: Services, account: Account) -> None:
    services.db.run_sync(lambda s: accounts.update_profile(s, account.user_id, locale="zh-Hans"))
