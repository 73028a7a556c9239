"""Log-in and sign-up keep the action that ran into them: tap Start signed out (or with an
expired session), log in or sign up, and the team is started, once, by the same form."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select

from pintuan.accounts import service as accounts
from pintuan.accounts.dependencies import SESSION_COOKIE
from pintuan.kit.time import clock
from pintuan.services import Services
from pintuan.teams.models import Seat, Team
from tests.factories import PASSWORD, create_account, create_deal, create_merchant
from tests.features.test_shopper_pages import HTML, hidden, submit

SAME_SITE = {**HTML, "sec-fetch-site": "same-origin"}


def teams(services: Services) -> int:
    return int(services.db.run_sync(lambda s: s.scalar(select(func.count()).select_from(Team))))


def form_of(page: str, action: str) -> dict[str, str]:
    form = re.search(rf'<form method="post" action="{re.escape(action)}".*?</form>', page, re.S)
    assert form, f"no form posting to {action}"
    return dict(re.findall(r'name="([^"]+)" value="([^"]*)"', form.group(0)))


def log_in_on_the_page(client: TestClient, login_location: str, email: str) -> Response:
    page = client.get(login_location, headers=HTML).text
    fields = {**form_of(page, "/login"), "email": email, "password": PASSWORD}
    return client.post("/login", data=fields, headers=HTML, follow_redirects=False)


def continue_the_action(client: TestClient, location: str) -> tuple[str, Response]:
    """Open ``/continue`` and send its form, as the page's script does."""
    page = client.get(location, headers=HTML).text
    action = re.search(r'<form method="post" action="([^"]+)" data-auto-submit', page)
    assert action, page
    answer = client.post(
        action.group(1), data=form_of(page, action.group(1)), headers=HTML, follow_redirects=False
    )
    return action.group(1), answer


def test_a_visitor_who_taps_start_logs_in_and_comes_back_with_the_team_started(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db))
    shopper = create_account(services)

    _, tapped = submit(client, f"/deals/{deal.id}", f"/deals/{deal.id}/teams")
    login_location = tapped.headers["location"]  # type: ignore[attr-defined]
    logged_in = log_in_on_the_page(client, login_location, shopper.email)
    path, started = continue_the_action(client, logged_in.headers["location"])

    assert login_location.startswith(f"/login?next=/deals/{deal.id}&action=")
    assert logged_in.headers["location"].startswith("/continue?action=")
    assert path == f"/deals/{deal.id}/teams"
    assert started.status_code == 303
    assert "/sandbox/checkout/" in started.headers["location"]
    assert teams(services) == 1
    leader = services.db.run_sync(lambda s: s.scalar(select(Seat.user_id)))
    assert leader == shopper.user_id


def test_the_kept_action_takes_effect_once_however_often_it_is_continued(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db), per_user_limit=5)
    shopper = create_account(services)
    _, tapped = submit(client, f"/deals/{deal.id}", f"/deals/{deal.id}/teams")
    logged_in = log_in_on_the_page(
        client,
        tapped.headers["location"],  # type: ignore[attr-defined]
        shopper.email,
    )

    _, first = continue_the_action(client, logged_in.headers["location"])
    _, again = continue_the_action(client, logged_in.headers["location"])

    assert first.headers["location"] == again.headers["location"]
    assert teams(services) == 1


def test_signing_up_keeps_the_action_too(client: TestClient, services: Services) -> None:
    deal = create_deal(services.db, create_merchant(services.db))
    _, tapped = submit(client, f"/deals/{deal.id}", f"/deals/{deal.id}/teams")
    login_page = client.get(tapped.headers["location"], headers=HTML).text  # type: ignore[attr-defined]
    signup_link = re.search(r'href="(/signup\?[^"]+)"', login_page)
    assert signup_link
    signup_location = signup_link.group(1).replace("&amp;", "&")
    page = client.get(signup_location, headers=HTML).text
    fields = {
        **form_of(page, "/signup"),
        "display_name": "Amy Lin",
        "email": "amy@example.com",
        "password": PASSWORD,
    }

    signed_up = client.post("/signup", data=fields, headers=HTML, follow_redirects=False)
    _, started = continue_the_action(client, signed_up.headers["location"])

    assert "action=" in signup_location
    assert "we will finish what you started" in page
    assert signed_up.headers["location"].startswith("/continue?action=")
    assert "/sandbox/checkout/" in started.headers["location"]
    assert teams(services) == 1


def test_a_session_that_expired_sends_the_tap_to_log_in_and_back_not_to_csrf_failed(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db))
    shopper = create_account(services)
    log_in_on_the_page(client, f"/login?next=/deals/{deal.id}", shopper.email)
    page = client.get(f"/deals/{deal.id}", headers=HTML).text
    fields = form_of(page, f"/deals/{deal.id}/teams")
    # the browser dropped the expired session cookie; the page's token was bound to it
    client.cookies.delete(SESSION_COOKIE)

    tapped = client.post(
        f"/deals/{deal.id}/teams",
        data=fields,
        headers={**SAME_SITE, "referer": f"http://testserver/deals/{deal.id}"},
        follow_redirects=False,
    )
    logged_in = log_in_on_the_page(client, tapped.headers["location"], shopper.email)
    _, started = continue_the_action(client, logged_in.headers["location"])

    assert tapped.status_code == 303
    assert tapped.headers["location"].startswith(f"/login?next=/deals/{deal.id}&action=")
    assert "/sandbox/checkout/" in started.headers["location"]
    assert teams(services) == 1


def test_a_session_that_ended_on_the_server_keeps_the_action_as_well(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db))
    shopper = create_account(services)
    log_in_on_the_page(client, f"/login?next=/deals/{deal.id}", shopper.email)
    page = client.get(f"/deals/{deal.id}", headers=HTML).text
    # signed out everywhere (or expired): the browser still sends the cookie, now worthless
    services.db.run_sync(lambda s: accounts.revoke_all_credentials(s, shopper.user_id))

    tapped = client.post(
        f"/deals/{deal.id}/teams",
        data=form_of(page, f"/deals/{deal.id}/teams"),
        headers=HTML,
        follow_redirects=False,
    )
    logged_in = log_in_on_the_page(client, tapped.headers["location"], shopper.email)
    _, started = continue_the_action(client, logged_in.headers["location"])

    assert tapped.headers["location"].startswith(f"/login?next=/deals/{deal.id}&action=")
    assert "/sandbox/checkout/" in started.headers["location"]
    assert teams(services) == 1


def test_a_cross_site_post_with_a_stale_token_is_still_refused_and_nothing_is_kept(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db))
    page = client.get(f"/deals/{deal.id}", headers=HTML).text
    fields = {"csrf_token": "forged", "form_key": hidden(page, "form_key")}

    cross_site = client.post(
        f"/deals/{deal.id}/teams",
        data=fields,
        headers={**HTML, "sec-fetch-site": "cross-site"},
        follow_redirects=False,
    )
    other_origin = client.post(
        f"/deals/{deal.id}/teams",
        data=fields,
        headers={**HTML, "origin": "https://evil.example"},
        follow_redirects=False,
    )
    no_word = client.post(
        f"/deals/{deal.id}/teams", data=fields, headers=HTML, follow_redirects=False
    )

    for answer in (cross_site, other_origin, no_word):
        assert answer.status_code == 403
        assert "csrf_failed" in answer.text or "did not come from this site" in answer.text
    assert teams(services) == 0


def test_a_kept_action_works_only_in_the_browser_that_kept_it_and_only_for_a_while(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db))
    shopper = create_account(services)
    _, tapped = submit(client, f"/deals/{deal.id}", f"/deals/{deal.id}/teams")
    token = parse_qs(urlsplit(tapped.headers["location"]).query)["action"][0]  # type: ignore[attr-defined]

    # another browser (another CSRF nonce) holding the link gets no action
    client.cookies.clear()
    elsewhere = client.get(f"/login?next=/&action={token}", headers=HTML).text
    logged_in = log_in_on_the_page(client, f"/login?next=/&action={token}", shopper.email)
    stolen = client.get(f"/continue?action={token}", headers=HTML, follow_redirects=False)
    tampered = client.get(f"/continue?action={token[:-2]}xx", headers=HTML, follow_redirects=False)

    assert 'name="action"' not in elsewhere
    assert logged_in.headers["location"] == "/"
    assert stolen.headers["location"] == "/"
    assert tampered.headers["location"] == "/"
    assert teams(services) == 0


def test_a_kept_action_expires(client: TestClient, services: Services) -> None:
    deal = create_deal(services.db, create_merchant(services.db))
    shopper = create_account(services)
    _, tapped = submit(client, f"/deals/{deal.id}", f"/deals/{deal.id}/teams")
    clock.advance(timedelta(minutes=31))

    logged_in = log_in_on_the_page(
        client,
        tapped.headers["location"],  # type: ignore[attr-defined]
        shopper.email,
    )

    assert logged_in.headers["location"] == f"/deals/{deal.id}"
    assert teams(services) == 0


def test_an_action_that_is_not_kept_still_goes_to_log_in_and_back_to_its_page(
    client: TestClient, services: Services
) -> None:
    deal = create_deal(services.db, create_merchant(services.db))
    shopper = create_account(services)
    log_in_on_the_page(client, f"/login?next=/deals/{deal.id}", shopper.email)
    submit(client, f"/deals/{deal.id}", f"/deals/{deal.id}/teams")
    team_id = services.db.run_sync(lambda s: s.scalar(select(Team.id)))
    seat_id = services.db.run_sync(lambda s: s.scalar(select(Seat.id)))
    page = client.get(f"/teams/{team_id}", headers=HTML).text
    fields = form_of(page, f"/seats/{seat_id}/cancel")
    client.cookies.delete(SESSION_COOKIE)

    left = client.post(
        f"/seats/{seat_id}/cancel",
        data=fields,
        headers={**SAME_SITE, "referer": f"http://testserver/teams/{team_id}"},
        follow_redirects=False,
    )

    # leaving a team is not done behind the shopper's back: they log in and tap it again
    assert left.headers["location"] == f"/login?next=/teams/{team_id}"
    assert services.db.run_sync(lambda s: s.get(Seat, seat_id).status) == "held"


def test_log_in_never_sends_a_shopper_off_the_site(client: TestClient, services: Services) -> None:
    shopper = create_account(services)

    logged_in = log_in_on_the_page(client, "/login?next=//evil.example/x", shopper.email)
    away = client.get("/login?next=https://evil.example", headers=HTML, follow_redirects=False)

    assert logged_in.headers["location"] == "/"
    assert away.headers["location"] == "/"
