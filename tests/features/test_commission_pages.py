"""Referral commissions and wallet withdrawals on the pages, as a browser without JavaScript
drives them: the sharer's commissions and totals, withdrawing through the wallet's form (once,
never beyond the balance, every refusal in words), the operators' withdrawals list that marks
one failed and gives the money back, the deal form's referral commission, and nobody seeing
another person's money."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select

from pintuan.deals.models import Deal
from pintuan.domain.roles import Role
from pintuan.kit.time import utc_now
from pintuan.ledger.models import Payout
from pintuan.services import Services
from tests.console_data import HTML, csrf_of, form_post, log_in, speak_chinese
from tests.factories import Account, create_account, create_merchant
from tests.features import sharing
from tests.features.test_commissions import (  # clock_back: the clock moves back after each test
    WINDOW,
    clock_back,  # noqa: F401
    released_commission,
    settle,
    shared_team,
)
from tests.features.test_ledger import sound, wallet
from tests.features.test_merchant_console import deal_fields

WALLET = "/me/wallet"
COMMISSIONS = "/me/commissions"
OPS = "/console/operator/withdrawals"


def withdraw(client: TestClient, **fields: str) -> Response:
    """Fill in the wallet's withdrawal form and send it."""
    typed = {"currency": "USD", "destination": "IBAN DE89 3704", **fields}
    return form_post(client, WALLET, WALLET + "/withdrawals", typed)


def payouts(services: Services) -> list[Payout]:
    return services.db.run_sync(
        lambda s: list(s.scalars(select(Payout).order_by(Payout.id))), write=False
    )


def field_error(page: str, name: str) -> str:
    found = re.search(rf'<p class="field-error" id="{name}-error">([^<]*)</p>', page)
    assert found, f"no message next to {name}"
    return found.group(1)


# ---------------------------------------------------------------------------- commissions


def test_a_sharer_sees_the_commission_frozen_then_paid_with_its_totals(
    client: TestClient, services: Services
) -> None:
    _, sharer, _ = shared_team(client, services, brought=1)
    settle(services)
    log_in(client, sharer)

    frozen = client.get(COMMISSIONS, headers=HTML)

    assert frozen.status_code == 200, frozen.text
    page = frozen.text
    assert "Dumplings for three" in page
    assert "frozen until the order can no longer be refunded, then paid into your wallet" in page
    assert "Frozen: $1.50" in page
    assert "Paid to your wallet: nothing yet" in page
    assert page.count('<li class="order" id="commission-') == 1
    assert 'class="badge ">Frozen<' in page

    sharing.move_to(utc_now() + WINDOW + timedelta(minutes=1))
    settle(services)
    log_in(client, sharer)  # the log-in of a month ago has run out
    paid = client.get(COMMISSIONS, headers=HTML).text
    account = client.get("/account", headers=HTML).text
    purse = client.get(WALLET, headers=HTML).text

    assert "Frozen: nothing yet" in paid
    assert "Paid to your wallet: $1.50" in paid
    assert 'class="badge good">Paid to your wallet<' in paid
    assert 'href="/me/wallet"' in account
    assert 'href="/me/commissions"' in account
    assert "$1.50" in purse
    assert "No withdrawals yet." in purse

    speak_chinese(services, sharer)
    chinese = client.get(COMMISSIONS, headers=HTML).text
    assert "我的佣金" in chinese
    assert "已入账到钱包：US$1.50" in chinese  # noqa: RUF001 - Chinese writes a full-width colon


# ---------------------------------------------------------------------------- withdrawing


def test_a_withdrawal_through_the_form_leaves_the_wallet_once_and_shows_pending(
    client: TestClient, services: Services
) -> None:
    sharer = released_commission(client, services)
    log_in(client, sharer)
    page = client.get(WALLET, headers=HTML)
    data = {
        "csrf_token": csrf_of(page.text),
        "form_key": uuid.uuid4().hex,
        "amount": "1.00",
        "currency": "USD",
        "destination": "  IBAN   DE89 3704 ",
    }

    sent = client.post(WALLET + "/withdrawals", data=data, headers=HTML, follow_redirects=False)
    again = client.post(WALLET + "/withdrawals", data=data, headers=HTML, follow_redirects=False)

    assert sent.status_code == 303, sent.text
    assert sent.headers["location"] == WALLET + "?done=withdrawn"
    assert again.status_code == 303  # a double click: the same withdrawal, not a second one
    assert wallet(services, sharer.user_id) == 50
    (made,) = payouts(services)
    assert (made.user_id, made.amount, made.status) == (sharer.user_id, 100, "pending")
    assert made.destination == "IBAN DE89 3704"
    shown = client.get(sent.headers["location"], headers=HTML).text
    assert "the money has left your wallet" in shown
    assert f'id="withdrawal-{made.id}"' in shown
    assert "Waiting to be sent" in shown
    assert "To IBAN DE89 3704" in shown
    assert "$0.50" in shown
    sound(services)


def test_too_much_or_an_unreadable_amount_is_refused_in_words_and_changes_nothing(
    client: TestClient, services: Services
) -> None:
    sharer = released_commission(client, services)
    log_in(client, sharer)

    too_much = withdraw(client, amount="1.51")
    unreadable = withdraw(client, amount="a lot")
    nowhere = withdraw(client, amount="1.00", destination="   ")
    zero = withdraw(client, amount="0")

    assert too_much.status_code == 409, too_much.text
    assert field_error(too_much.text, "amount") == (
        "Your wallet holds less than that in this currency."
    )
    assert 'value="1.51"' in too_much.text
    assert unreadable.status_code == 422
    assert field_error(unreadable.text, "amount") == (
        "Type an amount like 10.00, with at most 2 decimals."
    )
    assert nowhere.status_code == 422
    assert field_error(nowhere.text, "destination").startswith("Say where the money goes")
    assert zero.status_code == 422
    assert field_error(zero.text, "amount").startswith("Type an amount above zero")
    assert wallet(services, sharer.user_id) == 150
    assert payouts(services) == []

    speak_chinese(services, sharer)
    chinese = withdraw(client, amount="2")
    assert chinese.status_code == 409
    assert field_error(chinese.text, "amount") == "您的钱包中该币种的余额不足。"
    sound(services)


def test_an_operator_marks_a_withdrawal_failed_and_the_money_is_back_in_the_wallet(
    client: TestClient, services: Services
) -> None:
    sharer = released_commission(client, services)
    log_in(client, sharer)
    assert withdraw(client, amount="1.20").status_code == 303
    (made,) = payouts(services)
    assert wallet(services, sharer.user_id) == 30
    operator = create_account(services, role=Role.OPERATOR)
    log_in(client, operator)

    pending = client.get(OPS, headers=HTML)

    assert pending.status_code == 200, pending.text
    assert 'aria-current="page">Withdrawals' in pending.text
    assert f'id="withdrawal-{made.id}"' in pending.text
    assert sharer.email in pending.text
    assert f'action="{OPS}/{made.id}/sent"' in pending.text
    assert f'action="{OPS}/{made.id}/failed"' in pending.text
    assert f'action="{OPS}/{made.id}/paid"' not in pending.text  # it has not been sent

    failed = form_post(
        client, OPS, f"{OPS}/{made.id}/failed", {"reason": "The account is closed", "next": OPS}
    )

    assert failed.status_code == 303, failed.text
    assert failed.headers["location"] == OPS + "?done=failed"
    assert wallet(services, sharer.user_id) == 150
    (ended,) = payouts(services)
    assert (ended.status, ended.reason) == ("failed", "The account is closed")
    after = client.get(failed.headers["location"], headers=HTML).text
    assert "its money is back in the wallet" in after
    assert f'id="withdrawal-{made.id}"' not in after  # no longer waiting
    assert f'id="withdrawal-{made.id}"' in client.get(OPS + "?status=failed", headers=HTML).text
    log_in(client, sharer)
    mine = client.get(WALLET, headers=HTML).text
    assert "Failed: the money is back in your wallet" in mine
    assert "Why: The account is closed" in mine
    sound(services)


# ---------------------------------------------------------------------------- the consoles


def test_the_deal_form_saves_the_referral_commission_and_shows_it(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    log_in(client, create_account(services, role=Role.MERCHANT, merchant=merchant))
    base = f"/console/merchants/{merchant.id}"

    made = form_post(
        client, base + "/deals/new", base + "/deals", deal_fields(referral_commission="7.5")
    )
    too_much = form_post(
        client, base + "/deals/new", base + "/deals", deal_fields(referral_commission="31")
    )

    assert made.status_code == 303, made.text
    deal = services.db.run_sync(lambda s: s.scalars(select(Deal)).one())
    assert deal.referral_commission_bps == 750
    assert (
        'name="referral_commission" type="text" value="7.5"'
        in client.get(made.headers["location"], headers=HTML).text
    )
    assert too_much.status_code == 422
    assert field_error(too_much.text, "referral_commission").startswith(
        "Enter a percentage from 0 to 30"
    )
    assert services.db.run_sync(lambda s: s.scalar(select(func.count()).select_from(Deal))) == 1

    changed = form_post(
        client,
        base + f"/deals/{deal.id}",
        base + f"/deals/{deal.id}",
        {**deal_fields(), "referral_commission": "12"},
    )
    assert changed.status_code == 303, changed.text
    assert services.db.run_sync(lambda s: s.get(Deal, deal.id)).referral_commission_bps == 1200


def test_the_merchant_sees_the_commissions_it_pays_in_its_console(
    client: TestClient, services: Services
) -> None:
    merchant, _, seats = shared_team(client, services, brought=1)
    settle(services)
    log_in(client, create_account(services, role=Role.MERCHANT, merchant=merchant))

    listed = client.get(f"/console/merchants/{merchant.id}/commissions", headers=HTML)
    released_only = client.get(
        f"/console/merchants/{merchant.id}/commissions?status=released", headers=HTML
    )

    assert listed.status_code == 200, listed.text
    assert 'aria-current="page">Commissions' in listed.text
    assert "Dumplings for three" in listed.text
    assert seats[0][1] in listed.text
    assert "$1.50" in listed.text
    assert "10 %" in listed.text
    assert seats[0][1] not in released_only.text


# ---------------------------------------------------------------------------- who sees what


def test_nobody_else_sees_or_moves_someones_commissions_and_withdrawals(
    client: TestClient, services: Services
) -> None:
    merchant, sharer, (buyer_seat, *_) = shared_team(client, services, brought=1)
    settle(services)
    log_in(client, sharer)
    assert "There is nothing to withdraw yet." in client.get(WALLET, headers=HTML).text
    sharing.move_to(utc_now() + WINDOW + timedelta(minutes=1))
    settle(services)
    log_in(client, sharer)  # the log-in of a month ago has run out
    assert withdraw(client, amount="1.00").status_code == 303
    (made,) = payouts(services)
    stranger: Account = buyer_seat[0]
    other_staff = create_account(
        services, role=Role.MERCHANT, merchant=create_merchant(services.db)
    )
    client.cookies.clear()

    signed_out = client.get(COMMISSIONS, headers=HTML, follow_redirects=False)
    assert signed_out.status_code == 303
    assert signed_out.headers["location"].startswith("/login")

    log_in(client, stranger)
    theirs = client.get(COMMISSIONS, headers=HTML).text
    their_wallet = client.get(WALLET, headers=HTML).text
    assert "Dumplings for three" not in theirs
    assert "No commissions yet." in theirs
    assert made.id not in their_wallet
    assert "No withdrawals yet." in their_wallet
    assert client.get(OPS, headers=HTML).status_code == 403
    moved = client.post(
        f"{OPS}/{made.id}/failed",
        data={"csrf_token": csrf_of(their_wallet), "form_key": uuid.uuid4().hex},
        headers=HTML,
        follow_redirects=False,
    )
    assert moved.status_code == 403
    assert payouts(services)[0].status == "pending"
    assert wallet(services, sharer.user_id) == 50
    commissions_of = f"/console/merchants/{merchant.id}/commissions"
    assert client.get(commissions_of, headers=HTML).status_code == 403

    log_in(client, other_staff)
    assert client.get(commissions_of, headers=HTML).status_code == 403
    sound(services)
