"""Lottery teams (抽奖团): a commitment to a secret seed is published when the deal goes live;
each successful team's winners are drawn from the seed and its seat ids; the others are refunded
in full (and get no voucher); once the deal has ended the seed is revealed, and anyone can
recompute the draw (``pintuan lottery verify``), which finds a changed seed or winner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from pintuan.cli import app as cli
from pintuan.domain.lottery import commitment, draw
from pintuan.domain.roles import Role
from pintuan.payments.refund_models import Refund
from pintuan.services import Services
from pintuan.vouchers.models import Voucher
from pintuan.worker import Worker
from tests.factories import create_account, create_deal, create_merchant, deal_body
from tests.features.test_ledger import paid_team
from tests.features.vouchering import sound, terms

PRICE = 1500


def lottery_team(client: TestClient, services: Services) -> tuple[Any, Any, list[str], str]:
    merchant = create_merchant(services.db)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)
    deal = create_deal(services.db, merchant, team_size=3, lottery_winners=1, voucher=terms())
    team_id, seats = paid_team(client, deal.id, [create_account(services) for _ in range(3)])
    Worker(services).run_until_idle()
    return deal, staff, seats, team_id


def test_a_lottery_team_draws_its_winner_and_refunds_the_others_in_full(
    client: TestClient, services: Services
) -> None:
    deal, _, seats, team_id = lottery_team(client, services)
    published = client.get(f"/v1/deals/{deal.id}").json()["lottery"]
    record = client.get(f"/v1/deals/{deal.id}/lottery").json()

    assert published["winners"] == 1
    assert len(published["commitment"]) == 64
    assert record["seed"] is None  # secret while the deal runs
    (drawn,) = record["draws"]
    assert (drawn["team_id"], sorted(drawn["seat_ids"])) == (team_id, sorted(seats))
    (winner,) = drawn["winners"]
    refunded = services.db.run_sync(
        lambda s: sorted(
            (r.seat_id, r.amount)
            for r in s.scalars(select(Refund).where(Refund.source == "lottery"))
        )
    )
    assert refunded == sorted((seat, PRICE) for seat in seats if seat != winner)
    vouchered = services.db.run_sync(lambda s: set(s.scalars(select(Voucher.seat_id))))
    assert vouchered == {winner}
    sound(services)
    # Refunded once, however often the worker passes.
    Worker(services).run_until_idle()
    assert (
        services.db.run_sync(
            lambda s: len(list(s.scalars(select(Refund).where(Refund.source == "lottery"))))
        )
        == 2
    )


def test_after_the_deal_ends_the_seed_is_revealed_and_anyone_can_verify_the_draw(
    client: TestClient, services: Services, tmp_path: Path
) -> None:
    deal, staff, seats, team_id = lottery_team(client, services)
    ended = client.post(f"/v1/deals/{deal.id}/end", headers=staff.headers)
    assert ended.status_code == 200, ended.text
    Worker(services).tick()  # a fresh worker's first pass does the housekeeping

    record = client.get(f"/v1/deals/{deal.id}/lottery").json()

    seed = record["seed"]
    assert seed is not None
    assert record["revealed_at"] is not None
    assert commitment(seed) == record["commitment"]
    assert set(record["draws"][0]["winners"]) == draw(seed, team_id, seats, 1)
    saved = tmp_path / "lottery.json"
    saved.write_text(json.dumps(record))
    runner = CliRunner()
    fair = runner.invoke(cli, ["lottery", "verify", "--file", str(saved)])
    assert fair.exit_code == 0, fair.output
    assert "verified" in fair.output
    # A changed seed no longer matches the commitment; a changed winner no longer recomputes.
    saved.write_text(json.dumps({**record, "seed": "0" * 64}))
    assert runner.invoke(cli, ["lottery", "verify", "--file", str(saved)]).exit_code == 1
    other = next(s for s in seats if s not in record["draws"][0]["winners"])
    moved = {**record, "draws": [{**record["draws"][0], "winners": [other]}]}
    saved.write_text(json.dumps(moved))
    swapped = runner.invoke(cli, ["lottery", "verify", "--file", str(saved)])
    assert swapped.exit_code == 1
    assert "MISMATCH team" in swapped.output


def test_a_lottery_draws_fewer_than_the_team_and_a_deal_without_one_has_no_record(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)

    too_many = client.post(
        "/v1/deals",
        json=deal_body(merchant.id, team_size=3, lottery={"winners": 3}),
        headers=staff.headers,
    )
    plain = create_deal(services.db, merchant)

    assert too_many.status_code == 422
    assert client.get(f"/v1/deals/{plain.id}/lottery").json()["code"] == "lottery_not_found"
