"""Vouchers of local services: issued to each seat of a successful team, redeemed once at the
counter (and undone within the window), refunded by the shopper at any time or by the worker at
expiry; the merchant's part waits in ``merchant_unredeemed`` until the redemption."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from pintuan.domain.apps import AppPrincipal
from pintuan.domain.roles import Role
from pintuan.domain.vouchers import SettleOn, normalize_code
from pintuan.kit.time import clock, utc_now
from pintuan.notifications.models import Notification
from pintuan.payments.refund_models import Refund
from pintuan.services import Services
from pintuan.worker import Worker
from tests.apps_support import store_access_token
from tests.factories import create_account, create_merchant, deal_body
from tests.features.test_ledger import balance, wallet
from tests.features.vouchering import (
    PRICE,
    merchant_part,
    redeem,
    sound,
    terms,
    voucher_team,
)
from tests.partnering import create_app_record


def _refunds_of(session: Session, seat_id: str) -> list[tuple[int, str]]:
    return [
        (r.amount, r.status)
        for r in session.scalars(select(Refund).where(Refund.seat_id == seat_id))
    ]


def test_each_seat_of_a_successful_team_gets_a_voucher_and_its_money_waits(
    client: TestClient, services: Services
) -> None:
    team = voucher_team(client, services)
    vouchers = team.vouchers(client)

    assert [v["status"] for v in vouchers] == ["issued", "issued"]
    assert {v["seat_id"] for v in vouchers} == set(team.seat_ids)
    assert len({v["code"] for v in vouchers}) == 2
    assert all(len(v["code"]) == 11 and v["code"][5] == "-" for v in vouchers)
    assert vouchers[0]["locations"] == ["Jing'an shop"]
    assert vouchers[0]["price"] == {"amount": PRICE, "currency": "USD"}
    expires = datetime.fromisoformat(vouchers[0]["expires_at"].replace("Z", "+00:00"))
    assert abs((utc_now() + timedelta(days=30) - expires).total_seconds()) < 120
    # Earned, but the merchant's part waits for the counter; the fee is the platform's now.
    unredeemed = f"merchant_unredeemed:{team.merchant.id}"
    payable = f"merchant_payable:{team.merchant.id}"
    assert -balance(services, unredeemed) == 2 * merchant_part()
    assert -balance(services, payable) == 0
    sound(services)


def test_staff_redeem_a_code_once_and_the_money_becomes_payable(
    client: TestClient, services: Services
) -> None:
    team = voucher_team(client, services)
    first, second = team.vouchers(client)
    typed = first["code"].lower().replace("-", " ")

    done = redeem(client, team.staff, typed)

    assert done.status_code == 200, done.text
    assert done.json()["status"] == "redeemed"
    assert done.json()["redeemed_location"] == "Jing'an shop"
    assert done.json()["redeemed_via"] == "api"
    again = redeem(client, team.staff, first["code"])
    assert again.status_code == 409
    assert again.json()["code"] == "voucher_already_redeemed"
    assert again.json()["redeemed_location"] == "Jing'an shop"
    assert -balance(services, f"merchant_payable:{team.merchant.id}") == merchant_part()
    assert -balance(services, f"merchant_unredeemed:{team.merchant.id}") == merchant_part()
    mine = client.get(f"/v1/me/vouchers/{first['id']}", headers=team.shoppers[0].headers)
    assert mine.json()["status"] == "redeemed"
    assert second["status"] == "issued"
    Worker(services).run_until_idle()
    kinds = services.db.run_sync(
        lambda s: [
            n.kind for n in s.query(Notification).filter_by(user_id=team.shoppers[0].user_id)
        ]
    )
    assert "voucher_redeemed" in kinds
    sound(services)


def test_wrong_foreign_and_malformed_codes_are_refused_clearly(
    client: TestClient, services: Services
) -> None:
    team = voucher_team(client, services)
    code = team.vouchers(client)[0]["code"]
    other = create_account(services, role=Role.MERCHANT, merchant=create_merchant(services.db))
    shopper = team.shoppers[1]

    assert redeem(client, team.staff, "ZZZZZ-ZZZZZ").json()["code"] == "voucher_not_found"
    assert redeem(client, team.staff, "not a code!").json()["code"] == "voucher_not_found"
    foreign = redeem(client, other, code)
    assert (foreign.status_code, foreign.json()["code"]) == (403, "voucher_of_another_merchant")
    # A shopper is no counter: their own code is not theirs to redeem.
    assert redeem(client, shopper, code).json()["code"] == "voucher_of_another_merchant"
    assert redeem(client, team.staff, code, location="Elsewhere").json()["code"] == (
        "voucher_location_invalid"
    )
    assert redeem(client, team.staff, "").status_code == 422
    assert client.post("/v1/vouchers/redeem", json={"code": code}).status_code == 401
    # Nothing changed.
    assert team.vouchers(client)[0]["status"] == "issued"
    sound(services)


def test_a_voucher_valid_at_several_shops_needs_the_shop(
    client: TestClient, services: Services
) -> None:
    team = voucher_team(client, services, voucher=terms(locations=("North", "South")))
    code = team.vouchers(client)[0]["code"]

    missing = redeem(client, team.staff, code)
    assert (missing.status_code, missing.json()["code"]) == (422, "voucher_location_required")
    assert redeem(client, team.staff, code, location="South").json()["redeemed_location"] == (
        "South"
    )


def test_a_redemption_is_undone_within_the_window_and_not_after(
    client: TestClient, services: Services
) -> None:
    team = voucher_team(client, services)
    first, second = team.vouchers(client)
    assert redeem(client, team.staff, first["code"]).status_code == 200

    undone = client.post(f"/v1/vouchers/{first['id']}/undo", headers=team.staff.headers)

    assert undone.status_code == 200, undone.text
    assert undone.json()["status"] == "issued"
    assert undone.json()["redeemed_at"] is None
    assert -balance(services, f"merchant_unredeemed:{team.merchant.id}") == 2 * merchant_part()
    assert -balance(services, f"merchant_payable:{team.merchant.id}") == 0
    sound(services)
    # Redeemed again, then too late to undo.
    assert redeem(client, team.staff, first["code"]).status_code == 200
    assert redeem(client, team.staff, second["code"]).status_code == 200
    clock.offset = timedelta(minutes=services.settings.voucher_undo_minutes + 1)
    late = client.post(f"/v1/vouchers/{first['id']}/undo", headers=team.staff.headers)
    assert (late.status_code, late.json()["code"]) == (409, "voucher_undo_closed")
    never = client.post(f"/v1/vouchers/{first['id']}/undo", headers=team.shoppers[0].headers)
    assert never.json()["code"] == "voucher_not_found"
    assert -balance(services, f"merchant_payable:{team.merchant.id}") == 2 * merchant_part()
    assert balance(services, f"merchant_unredeemed:{team.merchant.id}") == 0
    sound(services)


def test_the_shopper_refunds_an_unused_voucher_in_full_and_it_can_no_longer_be_used(
    client: TestClient, services: Services
) -> None:
    team = voucher_team(client, services, refund_to="wallet")
    first, _ = team.vouchers(client)
    shopper = team.shoppers[0]

    refunded = client.post(f"/v1/vouchers/{first['id']}/refund", headers=shopper.headers)

    assert refunded.status_code == 200, refunded.text
    assert refunded.json()["status"] == "refunded"
    assert refunded.json()["refund_id"]
    assert wallet(services, shopper.user_id) == PRICE
    assert redeem(client, team.staff, first["code"]).json()["code"] == "voucher_refunded"
    again = client.post(f"/v1/vouchers/{first['id']}/refund", headers=shopper.headers)
    assert again.json()["code"] == "voucher_refunded"
    stranger = client.post(f"/v1/vouchers/{first['id']}/refund", headers=team.shoppers[1].headers)
    assert stranger.json()["code"] == "voucher_not_found"
    # The other voucher still waits; nothing of the refunded one is left to the merchant.
    assert -balance(services, f"merchant_unredeemed:{team.merchant.id}") == merchant_part()
    assert balance(services, f"merchant_payable:{team.merchant.id}") == 0
    sound(services)


def test_a_redeemed_voucher_is_not_refundable_and_a_no_refund_deal_refuses(
    client: TestClient, services: Services
) -> None:
    team = voucher_team(client, services, voucher=terms(refund_anytime=False))
    first, second = team.vouchers(client)
    assert redeem(client, team.staff, second["code"]).status_code == 200

    kept = client.post(f"/v1/vouchers/{first['id']}/refund", headers=team.shoppers[0].headers)
    used = client.post(f"/v1/vouchers/{second['id']}/refund", headers=team.shoppers[1].headers)

    assert (kept.status_code, kept.json()["code"]) == (409, "voucher_not_refundable")
    assert used.json()["code"] == "voucher_not_refundable"


def test_unused_vouchers_are_refunded_by_the_worker_at_expiry(
    client: TestClient, services: Services
) -> None:
    team = voucher_team(client, services, voucher=terms(valid_days=2))
    first, second = team.vouchers(client)
    assert redeem(client, team.staff, second["code"]).status_code == 200
    paid_back = services.db.run_sync(lambda s: _refunds_of(s, team.seat_ids[0]))
    assert paid_back == []

    clock.offset = timedelta(days=2, minutes=1)
    report = Worker(services).tick()
    Worker(services).run_until_idle()

    assert report.vouchers_expired == 1
    expired = client.get(f"/v1/me/vouchers/{first['id']}", headers=team.shoppers[0].headers)
    assert expired.json()["status"] == "expired"
    assert services.db.run_sync(lambda s: _refunds_of(s, team.seat_ids[0])) == [
        (PRICE, "succeeded")
    ]
    late = redeem(client, team.staff, first["code"])
    assert late.json()["code"] == "voucher_expired"
    kinds = services.db.run_sync(
        lambda s: [
            n.kind for n in s.query(Notification).filter_by(user_id=team.shoppers[0].user_id)
        ]
    )
    assert "voucher_expired" in kinds
    assert "money_returned" in kinds
    # The redeemed one stays redeemed, its money the merchant's.
    assert -balance(services, f"merchant_payable:{team.merchant.id}") == merchant_part()
    assert balance(services, f"merchant_unredeemed:{team.merchant.id}") == 0
    sound(services)


def test_a_deal_that_settles_on_success_pays_the_merchant_at_once(
    client: TestClient, services: Services
) -> None:
    team = voucher_team(client, services, voucher=terms(settle_on=SettleOn.SUCCESS))
    first, second = team.vouchers(client)
    payable = f"merchant_payable:{team.merchant.id}"
    assert -balance(services, payable) == 2 * merchant_part()

    assert redeem(client, team.staff, first["code"]).status_code == 200
    assert (
        client.post(f"/v1/vouchers/{second['id']}/refund", headers=team.shoppers[1].headers).json()[
            "status"
        ]
        == "refunded"
    )

    assert -balance(services, payable) == merchant_part()
    assert balance(services, f"merchant_unredeemed:{team.merchant.id}") == 0
    sound(services)


def test_a_staff_refund_of_an_unused_voucher_takes_what_waits_not_the_payable(
    client: TestClient, services: Services
) -> None:
    team = voucher_team(client, services)
    part = client.post(
        f"/v1/seats/{team.seat_ids[0]}/refunds",
        json={"amount": 500, "reason": "cold soup"},
        headers={**team.staff.headers, "Idempotency-Key": "cold-soup"},
    )
    assert part.status_code == 201, part.text
    assert balance(services, f"merchant_payable:{team.merchant.id}") == 0
    sound(services)
    # The voucher's refund gives back what is left.
    first = team.vouchers(client)[0]
    done = client.post(f"/v1/vouchers/{first['id']}/refund", headers=team.shoppers[0].headers)
    assert done.status_code == 200, done.text
    assert balance(services, f"merchant_payable:{team.merchant.id}") == 0
    assert -balance(services, f"merchant_unredeemed:{team.merchant.id}") == merchant_part()
    sound(services)


def test_a_seat_refunded_in_full_by_its_staff_ends_its_voucher_which_can_no_longer_be_used(
    client: TestClient, services: Services
) -> None:
    # Given a voucher's seat refunded by its staff, 500 and then the remaining 1000
    team = voucher_team(client, services)
    for key, amount in (("part", 500), ("rest", PRICE - 500)):
        made = client.post(
            f"/v1/seats/{team.seat_ids[0]}/refunds",
            json={"amount": amount, "reason": "the shop closed that day"},
            headers={**team.staff.headers, "Idempotency-Key": key},
        )
        assert made.status_code == 201, made.text
        # Then the voucher stays usable while some of its money is kept, and no longer after
        first = team.vouchers(client)[0]
        assert first["status"] == ("issued" if key == "part" else "refunded")

    # And its code is refused at the counter, and nothing of its money waits
    refused = redeem(client, team.staff, first["code"])
    assert (refused.status_code, refused.json()["code"]) == (409, "voucher_refunded")
    sound(services)


def test_the_merchants_list_hides_codes_and_the_shopper_gets_a_qr(
    client: TestClient, services: Services
) -> None:
    team = voucher_team(client, services)
    mine = team.vouchers(client)[0]

    listed = client.get(f"/v1/merchants/{team.merchant.id}/vouchers", headers=team.staff.headers)
    qr = client.get(f"/v1/me/vouchers/{mine['id']}/qr.svg", headers=team.shoppers[0].headers)

    assert listed.status_code == 200
    assert [v["code"] for v in listed.json()["data"]] == [None, None]
    assert any(mine["code"].endswith(v["code_hint"]) for v in listed.json()["data"])
    assert qr.status_code == 200
    assert qr.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in qr.content
    outsider = create_account(services, role=Role.MERCHANT, merchant=create_merchant(services.db))
    refused = client.get(f"/v1/merchants/{team.merchant.id}/vouchers", headers=outsider.headers)
    assert refused.status_code == 403


def test_a_repeated_redemption_with_its_key_answers_as_the_first(
    client: TestClient, services: Services
) -> None:
    team = voucher_team(client, services)
    code = team.vouchers(client)[0]["code"]
    headers = {**team.staff.headers, "Idempotency-Key": "counter-1"}

    first = client.post("/v1/vouchers/redeem", json={"code": code}, headers=headers)
    again = client.post("/v1/vouchers/redeem", json={"code": code}, headers=headers)

    assert first.status_code == again.status_code == 200
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json()


def test_voucher_terms_are_checked_on_the_deal(client: TestClient, services: Services) -> None:
    merchant = create_merchant(services.db)
    staff = create_account(services, role=Role.MERCHANT, merchant=merchant)

    def create(**body: object) -> Response:
        return client.post("/v1/deals", json=deal_body(merchant.id, **body), headers=staff.headers)

    goods = create(vertical="goods", voucher={"valid_days": 30})
    both = create(
        vertical="food", voucher={"valid_days": 30, "valid_until": "2030-01-01T00:00:00Z"}
    )
    fine = create(vertical="movies", voucher={"valid_days": 14, "locations": ["Screen 1"]})

    assert goods.status_code == 422
    assert both.status_code == 422
    assert fine.status_code == 201, fine.text
    made = fine.json()
    assert made["voucher"] == {
        "valid_days": 14,
        "valid_until": None,
        "locations": ["Screen 1"],
        "refund_anytime": True,
        "settle_on": "redemption",
    }
    # A draft may drop its vouchers; a vertical of goods then fits again.
    dropped = client.patch(f"/v1/deals/{made['id']}", json={"voucher": None}, headers=staff.headers)
    assert dropped.status_code == 200, dropped.text
    assert dropped.json()["voucher"] is None


def test_codes_are_read_as_people_type_them() -> None:
    assert normalize_code("abcde-fghjk") == "ABCDEFGHJK"
    assert normalize_code(" o1iL2 34567 ") == "0111234567"
    assert normalize_code("ABCDEFGHJU") is None  # U is not in the alphabet
    assert normalize_code("ABC") is None


def test_an_app_installed_on_the_shop_redeems_with_its_scope(
    client: TestClient, services: Services
) -> None:
    team = voucher_team(client, services)
    first, second = team.vouchers(client)
    app_id = create_app_record(services.db, team.staff.user_id)

    def bearer(name: str, scopes: set[str], merchant_id: str | None) -> dict[str, str]:
        token = f"pta_{name}-{team.merchant.id}"
        principal = AppPrincipal(app_id, frozenset(scopes), None, merchant_id)
        store_access_token(services.db, token, principal)
        return {"Authorization": f"Bearer {token}"}

    counter = bearer("counter", {"vouchers:redeem"}, team.merchant.id)
    reader = bearer("reader", {"offers:read"}, team.merchant.id)
    nowhere = bearer("nowhere", {"vouchers:redeem"}, None)
    elsewhere = bearer("elsewhere", {"vouchers:redeem"}, create_merchant(services.db).id)

    refused = [
        client.post("/v1/vouchers/redeem", json={"code": first["code"]}, headers=h).json()["code"]
        for h in (reader, nowhere, elsewhere)
    ]
    done = client.post("/v1/vouchers/redeem", json={"code": first["code"]}, headers=counter)

    assert refused == ["insufficient_scope", "app_not_installed", "voucher_of_another_merchant"]
    assert done.status_code == 200, done.text
    assert (done.json()["redeemed_via"], done.json()["status"]) == ("app", "redeemed")
    undone = client.post(f"/v1/vouchers/{first['id']}/undo", headers=counter)
    assert undone.json()["status"] == "issued"
    looked = client.post("/v1/vouchers/lookup", json={"code": second["code"]}, headers=counter)
    assert looked.json()["id"] == second["id"]
    sound(services)


def test_a_refund_asked_after_the_end_ends_the_voucher_as_the_sweep_would(
    client: TestClient, services: Services
) -> None:
    team = voucher_team(client, services, voucher=terms(valid_days=1), refund_to="wallet")
    first, _ = team.vouchers(client)
    clock.offset = timedelta(days=1, minutes=1)  # past its end; no sweep has run

    late = client.post(f"/v1/vouchers/{first['id']}/refund", headers=team.shoppers[0].headers)

    assert late.status_code == 200, late.text
    assert late.json()["status"] == "expired"
    assert wallet(services, team.shoppers[0].user_id) == PRICE
    sound(services)
