"""Vouchers on the pages, as a browser without JavaScript drives them: the console's counter
(look up, redeem at a shop, undo within the window, every refusal in words), its list, and the
shopper's order page with the code, its QR code and the refund."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response

from pintuan.domain.roles import Role
from pintuan.kit.time import clock
from pintuan.services import Services
from pintuan.worker import Worker
from tests.console_data import HTML, csrf_of, form_post, log_in, speak_chinese
from tests.factories import Account, create_account, create_merchant
from tests.features.vouchering import VoucherTeam, redeem, sound, terms, voucher_team


def counter(team: VoucherTeam, rest: str = "") -> str:
    return f"/console/merchants/{team.merchant.id}/vouchers{rest}"


def at_counter(client: TestClient, team: VoucherTeam, rest: str, **fields: str) -> Response:
    """Post one of the counter's forms, as a browser that opened the counter would."""
    return form_post(client, counter(team), counter(team, rest), fields)


def voucher_of(client: TestClient, shopper: Account, voucher_id: str) -> dict[str, Any]:
    found = client.get(f"/v1/me/vouchers/{voucher_id}", headers=shopper.headers)
    assert found.status_code == 200, found.text
    return dict(found.json())


def alert(page: str) -> str:
    found = re.search(r'<p class="form-error" role="alert"[^>]*>([^<]*)</p>', page)
    assert found, "the page shows no refusal"
    return found.group(1)


# ---------------------------------------------------------------------------- the counter


def test_staff_look_up_a_code_redeem_it_and_undo_the_redemption(
    client: TestClient, services: Services
) -> None:
    team = voucher_team(client, services)
    first, second = team.vouchers(client)
    log_in(client, team.staff)

    empty = client.get(counter(team), headers=HTML)
    looked = at_counter(client, team, "/lookup", code=first["code"].lower().replace("-", " "))

    assert empty.status_code == 200
    assert "camera=(self)" in empty.headers["permissions-policy"]
    assert 'href="/console/merchants/' in empty.text
    assert 'aria-current="page">Vouchers' in empty.text
    assert looked.status_code == 200, looked.text
    page = looked.text
    assert "Hotpot for two" in page
    assert "$15.00" in page
    assert "Ready to use" in page
    assert "Jing&#39;an shop" in page
    assert f'value="{first["code"]}"' in page
    assert 'action="' + counter(team, "/redeem") + '"' in page

    done = at_counter(client, team, "/redeem", code=first["code"])

    assert done.status_code == 200, done.text
    assert "Redeemed: the shopper&#39;s order now shows the voucher as used." in done.text
    assert counter(team, f"/{first['id']}/undo") in done.text
    used = voucher_of(client, team.shoppers[0], first["id"])
    assert (used["status"], used["redeemed_via"]) == ("redeemed", "console")
    assert used["redeemed_location"] == "Jing'an shop"
    assert voucher_of(client, team.shoppers[1], second["id"])["status"] == "issued"

    undone = at_counter(client, team, f"/{first['id']}/undo", code=first["code"])

    assert undone.status_code == 200, undone.text
    assert "The redemption is undone: the voucher can be used again." in undone.text
    assert 'action="' + counter(team, "/redeem") + '"' in undone.text
    assert voucher_of(client, team.shoppers[0], first["id"])["status"] == "issued"
    sound(services)


def test_the_list_shows_only_the_codes_last_characters_newest_first_with_undo(
    client: TestClient, services: Services
) -> None:
    team = voucher_team(client, services)
    first, second = team.vouchers(client)
    assert redeem(client, team.staff, first["code"]).status_code == 200
    log_in(client, team.staff)

    page = client.get(counter(team), headers=HTML).text
    redeemed_only = client.get(counter(team, "?status=redeemed"), headers=HTML).text

    for voucher in (first, second):
        assert voucher["code"] not in page
        assert f"…{voucher['code'][-3:]}" in page
    rows = re.findall(r'<tr id="voucher-(vch_\w+)">', page)
    assert rows == sorted(rows, reverse=True)
    assert len(rows) == 2
    assert page.count('/undo"') == 1  # the redemption of a moment ago
    assert re.findall(r'<tr id="voucher-(vch_\w+)">', redeemed_only) == [first["id"]]
    assert "through the API" in redeemed_only


def test_a_voucher_valid_at_several_shops_is_redeemed_at_the_one_chosen(
    client: TestClient, services: Services
) -> None:
    team = voucher_team(client, services, voucher=terms(locations=("North", "South")))
    code = team.vouchers(client)[0]["code"]
    log_in(client, team.staff)

    looked = at_counter(client, team, "/lookup", code=code)
    missing = at_counter(client, team, "/redeem", code=code)
    wrong = at_counter(client, team, "/redeem", code=code, location="East")
    chosen = at_counter(client, team, "/redeem", code=code, location="South")

    assert '<select id="redeem-location" name="location" required>' in looked.text
    assert '<option value="South">South</option>' in looked.text
    assert missing.status_code == 422
    assert alert(missing.text) == (
        "Choose the shop where the voucher is used: it is valid at several."
    )
    assert wrong.status_code == 422
    assert alert(wrong.text) == (
        "The voucher is not valid at this shop; choose one of the shops it lists."
    )
    assert chosen.status_code == 200, chosen.text
    assert voucher_of(client, team.shoppers[0], team.vouchers(client)[0]["id"])[
        "redeemed_location"
    ] == ("South")


def test_the_counter_says_why_it_refuses_a_code(client: TestClient, services: Services) -> None:
    team = voucher_team(client, services, size=3)
    first, second, third = team.vouchers(client)
    theirs = voucher_team(client, services).vouchers(client)[0]
    assert redeem(client, team.staff, first["code"], location="Jing'an shop").status_code == 200
    refunded = client.post(f"/v1/vouchers/{second['id']}/refund", headers=team.shoppers[1].headers)
    assert refunded.status_code == 200, refunded.text
    log_in(client, team.staff)

    unknown = at_counter(client, team, "/lookup", code="ZZZZZ-ZZZZZ")
    foreign = at_counter(client, team, "/lookup", code=theirs["code"])
    used = at_counter(client, team, "/redeem", code=first["code"])
    given_back = at_counter(client, team, "/redeem", code=second["code"])

    assert unknown.status_code == 404
    assert alert(unknown.text) == "There is no such voucher. Check the code letter by letter."
    assert 'aria-invalid="true"' in unknown.text
    assert 'value="ZZZZZ-ZZZZZ"' in unknown.text
    assert foreign.status_code == 403
    assert alert(foreign.text) == (
        "This voucher is for another merchant; it cannot be redeemed here."
    )
    assert "Hotpot for two" not in foreign.text.split('id="list-title"')[0]
    assert used.status_code == 409
    assert re.fullmatch(
        r"This voucher was already used on .+ at Jing&#39;an shop\.", alert(used.text)
    )
    assert given_back.status_code == 409
    assert alert(given_back.text) == "This voucher was refunded; it can no longer be used."
    assert "Refunded" in given_back.text
    not_redeemed = at_counter(client, team, f"/{third['id']}/undo")
    assert not_redeemed.status_code == 409
    assert alert(not_redeemed.text) == (
        "This voucher has not been redeemed, so there is nothing to undo."
    )

    clock.offset = timedelta(minutes=services.settings.voucher_undo_minutes + 1)
    too_late = at_counter(client, team, f"/{first['id']}/undo", code=first["code"])

    assert too_late.status_code == 409
    minutes = services.settings.voucher_undo_minutes
    assert alert(too_late.text) == (
        f"It is too late to undo: a redemption can be undone within {minutes} minutes of it."
    )
    assert voucher_of(client, team.shoppers[0], first["id"])["status"] == "redeemed"
    sound(services)


def test_an_expired_voucher_is_refused_before_and_after_the_worker_refunds_it(
    client: TestClient, services: Services
) -> None:
    team = voucher_team(client, services, voucher=terms(valid_days=2))
    code = team.vouchers(client)[0]["code"]
    log_in(client, team.staff)
    clock.offset = timedelta(days=2, minutes=1)

    looked = at_counter(client, team, "/lookup", code=code)
    before = at_counter(client, team, "/redeem", code=code)
    Worker(services).run_until_idle()
    after = at_counter(client, team, "/redeem", code=code)

    assert looked.status_code == 200
    assert "Expired" in looked.text
    assert counter(team, "/redeem") not in looked.text
    for refused in (before, after):
        assert refused.status_code == 409
        assert alert(refused.text) == (
            "This voucher has expired; unused vouchers are refunded in full."
        )


def test_a_redeem_form_sent_twice_redeems_once_and_answers_the_same(
    client: TestClient, services: Services
) -> None:
    team = voucher_team(client, services)
    code = team.vouchers(client)[0]["code"]
    log_in(client, team.staff)
    page = client.get(counter(team), headers=HTML).text
    fields = {"csrf_token": csrf_of(page), "form_key": uuid.uuid4().hex, "code": code}

    first = client.post(counter(team, "/redeem"), data=fields, headers=HTML)
    again = client.post(counter(team, "/redeem"), data=fields, headers=HTML)

    assert first.status_code == again.status_code == 200
    assert 'role="alert"' not in again.text
    assert "Redeemed: the shopper" in again.text
    sound(services)


def test_counter_forms_need_the_csrf_token_and_the_merchants_staff(
    client: TestClient, services: Services
) -> None:
    team = voucher_team(client, services)
    code = team.vouchers(client)[0]["code"]
    outsider = create_account(services, role=Role.MERCHANT, merchant=create_merchant(services.db))
    log_in(client, team.staff)

    forged = client.post(
        counter(team, "/redeem"),
        data={"code": code, "form_key": uuid.uuid4().hex},
        headers=HTML,
        follow_redirects=False,
    )
    forged_look = client.post(counter(team, "/lookup"), data={"code": code}, headers=HTML)

    assert forged.status_code == 403
    assert forged_look.status_code == 403
    assert code not in forged_look.text
    log_in(client, outsider)
    shown = client.get(counter(team), headers=HTML)
    csrf = csrf_of(client.get("/orders", headers=HTML).text)
    refused = client.post(
        counter(team, "/redeem"),
        data={"csrf_token": csrf, "form_key": uuid.uuid4().hex, "code": code},
        headers=HTML,
    )

    assert shown.status_code == 403
    assert refused.status_code == 403
    assert code not in refused.text
    assert team.vouchers(client)[0]["status"] == "issued"


def test_the_counter_speaks_chinese(client: TestClient, services: Services) -> None:
    team = voucher_team(client, services)
    code = team.vouchers(client)[0]["code"]
    speak_chinese(services, team.staff)
    log_in(client, team.staff)

    looked = at_counter(client, team, "/lookup", code=code)
    unknown = at_counter(client, team, "/lookup", code="ZZZZZ-ZZZZZ")

    assert "核销团购券" in looked.text
    assert "可使用" in looked.text
    assert alert(unknown.text) == "没有这张券。请逐个字符核对券码。"


# ---------------------------------------------------------------------------- the order page


def test_the_order_page_shows_the_voucher_code_qr_and_where_it_is_valid(
    client: TestClient, services: Services
) -> None:
    team = voucher_team(client, services)
    mine, theirs = team.vouchers(client)
    log_in(client, team.shoppers[0])

    page = client.get("/orders", headers=HTML).text

    section = re.search(
        rf'<section class="voucher voucher-issued" id="voucher-{mine["id"]}".*?</section>',
        page,
        re.S,
    )
    assert section, "no voucher on the order"
    text = section.group(0)
    assert (
        f'<p class="voucher-code"><span class="visually-hidden">Code: </span>{mine["code"]}</p>'
        in text
    )
    assert '<div class="voucher-qr" role="img"' in text
    assert "<svg" in text
    assert "Valid until" in text
    assert "Jing&#39;an shop" in text
    assert f'action="/vouchers/{mine["id"]}/refund"' in text
    assert theirs["code"] not in page


def test_the_shopper_refunds_a_voucher_from_the_order_page(
    client: TestClient, services: Services
) -> None:
    team = voucher_team(client, services, refund_to="wallet")
    mine = team.vouchers(client)[0]
    log_in(client, team.shoppers[0])
    page = client.get("/orders", headers=HTML).text
    action = f"/vouchers/{mine['id']}/refund"
    form = re.search(rf'<form method="post" action="{re.escape(action)}".*?</form>', page, re.S)
    assert form
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', form.group(0)))

    done = client.post(action, data=fields, headers=HTML, follow_redirects=False)
    again = client.post(
        action, data={**fields, "form_key": uuid.uuid4().hex}, headers=HTML, follow_redirects=False
    )

    assert done.status_code == 303
    assert done.headers["location"] == (
        f"/orders?voucher={mine['id']}&voucher_done=refunded#voucher-{mine['id']}"
    )
    assert voucher_of(client, team.shoppers[0], mine["id"])["status"] == "refunded"
    after = client.get(done.headers["location"], headers=HTML).text
    assert "The voucher is given back: its code no longer works, and it is refunded." in after
    assert re.search(r"You gave this voucher back on .+ and it was refunded\.", after)
    assert "Refunded to your wallet" in after
    assert action not in after
    assert again.headers["location"].startswith(
        f"/orders?voucher={mine['id']}&voucher_error=voucher_refunded"
    )
    shown = client.get(again.headers["location"], headers=HTML).text
    assert alert(shown) == "This voucher was refunded; it can no longer be used."
    made_up = client.get(f"/orders?voucher={mine['id']}&voucher_error=<b>lies</b>", headers=HTML)
    assert 'class="form-error"' not in made_up.text
    unsigned = client.post(action, data={"form_key": "x"}, headers=HTML, follow_redirects=False)
    assert unsigned.status_code == 403
    sound(services)


def test_a_voucher_that_is_not_refundable_has_no_refund_button_and_a_forced_one_is_refused(
    client: TestClient, services: Services
) -> None:
    team = voucher_team(client, services, voucher=terms(refund_anytime=False))
    mine = team.vouchers(client)[0]
    log_in(client, team.shoppers[0])

    page = client.get("/orders", headers=HTML).text
    forced = client.post(
        f"/vouchers/{mine['id']}/refund",
        data={"csrf_token": csrf_of(page), "form_key": uuid.uuid4().hex},
        headers=HTML,
        follow_redirects=False,
    )

    assert f"/vouchers/{mine['id']}/refund" not in page
    assert "This voucher cannot be refunded before it expires" in page
    assert "voucher_error=voucher_not_refundable" in forced.headers["location"]
    assert voucher_of(client, team.shoppers[0], mine["id"])["status"] == "issued"


def test_the_order_page_says_when_and_where_a_voucher_was_used_and_that_one_expired(
    client: TestClient, services: Services
) -> None:
    team = voucher_team(client, services, voucher=terms(valid_days=2), size=2)
    used = team.vouchers(client)[0]
    assert redeem(client, team.staff, used["code"]).status_code == 200
    clock.offset = timedelta(days=2, minutes=1)
    Worker(services).run_until_idle()

    log_in(client, team.shoppers[0])
    first = client.get("/orders", headers=HTML).text
    notices = client.get("/notifications", headers=HTML).text
    log_in(client, team.shoppers[1])
    second = client.get("/orders", headers=HTML).text
    second_notices = client.get("/notifications", headers=HTML).text

    assert re.search(r"Used on .+ at Jing&#39;an shop\.", first)
    assert "<svg" not in first
    assert "Your voucher was used at Jing&#39;an shop." in notices
    assert re.search(r"This voucher expired unused on .+ and was refunded\.", second)
    assert "/refund" not in second
    assert "Your voucher expired unused, so it is refunded." in second_notices


def test_a_voucher_past_its_end_reads_expired_before_the_worker_refunds_it(
    client: TestClient, services: Services
) -> None:
    team = voucher_team(client, services, voucher=terms(valid_days=2))
    log_in(client, team.shoppers[0])
    clock.offset = timedelta(days=2, minutes=1)

    page = client.get("/orders", headers=HTML).text

    assert re.search(r"This voucher expired unused on .+; it is being refunded\.", page)
    assert "/refund" not in page
