"""The home page's kept feed cards are the cards the macro renders: for any item, moment and
language, with this slate's link and slot put in, and rendered anew when the item changes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pintuan.domain.deals import Vertical
from pintuan.feed.snapshot import DealEntry, Item, TeamEntry
from pintuan.web.kit.i18n import duration_text
from pintuan.web.shopper.feed_cards import (
    CardRenderer,
    FeedCard,
    FeedCards,
    countdown_key,
    list_item,
    render_card,
)
from pintuan.web.shopper.home_feed import _money, own_images
from pintuan.web.shopper.shopping import _labels

NOW = datetime(2026, 12, 4, 3, 0, tzinfo=UTC)
LOCALES = ("en", "zh_Hans")


def deal(n: int, ends_in: timedelta, **changes: Any) -> DealEntry:
    entry = DealEntry(
        id=f"deal_{n:026d}",
        merchant_id="mer_1",
        vertical=list(Vertical)[n % len(Vertical)].value,
        country="DE",
        currency=("EUR", "IDR", "CNY")[n % 3],
        is_partner=False,
        title=f"Offer <{n}> & more",
        image_urls=("/media/abc-large.webp",) if n % 2 else (),
        list_price=10_000 + n,
        group_price=5_000 + n,
        team_size=3,
        stock=10,
        committed=1,
        starts_at=NOW - timedelta(days=1),
        ends_at=NOW + ends_in,
        lat=None,
        lon=None,
        merchant_name='Shop "1"',
        forming=n % 3,
        fill=0.5,
    )
    return replace(entry, **changes)


def item(n: int, ends_in: timedelta, team: bool) -> Item:
    offer = deal(n, ends_in)
    if not team:
        return Item("deal", offer, None, 1.0)
    window = TeamEntry(f"team_{n:026d}", offer.id, 3, 2, NOW - timedelta(hours=1), NOW + ends_in)
    return Item("team", offer, window, 2.0)


def context(locale: str, now: datetime) -> dict[str, Any]:
    return {
        **_labels(),
        "locale": locale,
        "now": now,
        "time_zone": "UTC",
        "feed_images": own_images,
        "feed_money": lambda amount, currency: _money(amount, currency, locale),
    }


def direct(shown: Item, url: str, position: int, locale: str, now: datetime) -> str:
    card = FeedCard(shown.kind, shown.deal, shown.team, url, position)
    return str(render_card(card, context(locale, now)))


seconds = st.integers(-3600, 400 * 86400)


def listed(shown: Item, impression: str, slots: range, locale: str, now: datetime) -> str:
    """``shown`` in each of ``slots`` of the slate ``impression``, as the macro renders it, each
    in its list item."""
    return "".join(
        list_item(
            shown,
            direct(shown, f"/feed/go/{impression}/{slot}/{shown.item_id}", slot, locale, now),
        )
        for slot in slots
    )


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 50),
    seconds,
    st.integers(0, 600),
    st.booleans(),
    st.sampled_from(LOCALES),
    st.integers(0, 49),
)
def test_a_kept_card_is_the_card_the_macro_renders(
    n: int, ends_in: int, later: int, team: bool, locale: str, position: int
) -> None:
    cards = FeedCards()
    shown = item(n, timedelta(seconds=ends_in), team)
    # The card in every slot up to ``position``: rendered once, then kept for the others.
    slots = [shown] * (position + 1)
    first = cards.list_items(
        slots, "imp_A", locale, NOW, CardRenderer(lambda: context(locale, NOW))
    )
    assert first.decode() == listed(shown, "imp_A", range(position + 1), locale, NOW)
    # Another slate, a little later: kept or rendered again, it is what the macro renders.
    then = NOW + timedelta(seconds=later)
    again = cards.list_items(
        [*slots, shown], "imp_B", locale, then, CardRenderer(lambda: context(locale, then))
    )
    assert again.decode() == listed(shown, "imp_B", range(position + 2), locale, then)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 30), seconds, st.booleans()), max_size=25),
    st.sampled_from(LOCALES),
    st.sampled_from(["imp_A", "imp_<&>"]),
)
def test_a_slate_s_list_items_are_its_cards_each_in_its_list_item(
    drawn: list[tuple[int, int, bool]], locale: str, impression: str
) -> None:
    # The home page lists a slate's cards in one call: the text is each card, as the macro
    # renders it for its slot, in its list item, one after the other; kept or rendered anew.
    items = [item(n, timedelta(seconds=ends_in), team) for n, ends_in, team in drawn]
    cards, render = FeedCards(), CardRenderer(lambda: context(locale, NOW))
    for _ in range(2):
        text = cards.list_items(items, impression, locale, NOW, render).decode()
        one_by_one = "".join(
            listed(shown, impression, range(n, n + 1), locale, NOW) for n, shown in enumerate(items)
        )
        assert text == one_by_one
        assert all(
            f'href="/feed/go/imp_&lt;&amp;&gt;/{n}/' in text or impression == "imp_A"
            for n in range(len(items))
        )


def test_a_card_is_rendered_once_while_its_item_and_countdown_stay_the_same() -> None:
    cards = FeedCards()
    shown = item(1, timedelta(days=3), team=False)
    for n in range(5):
        cards.list_items(
            [shown] * n, f"imp_{n}", "en", NOW, CardRenderer(lambda: context("en", NOW))
        )
    # An equal item from a refreshed snapshot is the same card.
    cards.list_items(
        [item(1, timedelta(days=3), team=False)], "imp_x", "en", NOW, CardRenderer(dict)
    )
    assert cards.rendered == 1
    # Another language is another card.
    zh = CardRenderer(lambda: context("zh_Hans", NOW))
    cards.list_items([shown], "imp_x", "zh_Hans", NOW, zh)
    assert cards.rendered == 2


def test_a_changed_item_is_rendered_anew() -> None:
    cards = FeedCards()
    shown = item(2, timedelta(days=3), team=False)
    render = CardRenderer(lambda: context("en", NOW))
    before = cards.list_items([shown], "imp_x", "en", NOW, render)
    changed = replace(shown, deal=replace(shown.deal, group_price=1, forming=7))
    after = cards.list_items([changed], "imp_x", "en", NOW, render)
    assert cards.rendered == 2
    assert before != after
    assert after.decode() == listed(changed, "imp_x", range(1), "en", NOW)


@settings(max_examples=300, deadline=None)
@given(seconds, seconds, st.sampled_from(LOCALES))
def test_equal_countdown_keys_read_the_same(a: int, b: int, locale: str) -> None:
    until_a, until_b = NOW + timedelta(seconds=a), NOW + timedelta(seconds=b)
    key_a, key_b = countdown_key(until_a, NOW), countdown_key(until_b, NOW)
    if key_a is not None and key_a == key_b:
        assert duration_text(until_a, NOW, locale) == duration_text(until_b, NOW, locale)
