"""Pages write money, dates and durations the viewer's way, and render in the viewer's zone
from the first page on."""

from __future__ import annotations

from fastapi.testclient import TestClient

from pintuan.domain.roles import Role
from pintuan.services import Services
from tests.console_data import HTML, log_in, speak_chinese
from tests.factories import create_account, create_deal, create_merchant


def test_a_deal_in_rupiah_is_written_the_indonesian_way(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db, currency="IDR", country="ID", time_zone="Asia/Jakarta")
    deal = create_deal(services.db, merchant, list_price=9_900_000, group_price=5_900_000)

    page = client.get(f"/deals/{deal.id}", headers=HTML).text

    assert "Rp59.000" in page
    assert "Rp99.000" in page
    assert "IDR59" not in page


def test_the_deal_end_is_said_once_in_each_language(client: TestClient, services: Services) -> None:
    deal = create_deal(services.db, create_merchant(services.db))

    english = client.get(f"/deals/{deal.id}", headers=HTML).text
    client.headers["accept-language"] = "zh-CN"
    chinese = client.get(f"/deals/{deal.id}", headers=HTML).text

    assert "ends in in " not in english
    assert "Deal ends in" in english
    assert 'data-days-format="%(days)sd %(clock)s"' in english
    assert 'data-days-format="%(days)s天 %(clock)s"' in chinese
    assert "2周后" not in chinese
    assert "活动剩余" in chinese


def test_a_first_visit_asks_the_browser_for_its_zone_and_later_pages_use_it(
    client: TestClient, services: Services
) -> None:
    first = client.get("/", headers=HTML).text
    client.cookies.set("tz", "Asia/Jakarta")
    later = client.get("/", headers=HTML).text

    client.cookies.set("tz", "America%2FNew_York")  # as a script may have encoded it
    encoded = client.get("/", headers=HTML).text

    assert '<meta name="time-zone-guessed" content="UTC">' in first
    assert "America/New_York" in encoded
    assert "time-zone-guessed" not in later
    assert "Asia/Jakarta" in later


def test_the_chinese_growth_report_names_channels_in_chinese(
    client: TestClient, services: Services
) -> None:
    operator = create_account(services, role=Role.OPERATOR)
    speak_chinese(services, operator)
    log_in(client, operator)

    page = client.get("/console/operator/growth", headers=HTML).text

    assert '<option value="copy">复制粘贴</option>' in page
    assert '<option value="copy">copy</option>' not in page
