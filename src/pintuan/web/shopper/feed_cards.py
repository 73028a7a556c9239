"""The home page's feed cards, each rendered once and kept in the process.

A card shows only its deal or team (from the feed's snapshot), the reader's language and how
long is left; nothing of the viewer. So each card is rendered once per item, locale and shown
countdown, with markers where its click link and slot go, and every page puts its own link
(impression and slot) into the kept parts. A kept card is used only while its item is equal to
the snapshot's: when the outbox refresh brings a changed deal or team (stock, seats, price), the
card is rendered again. The countdown's text is Babel's rounding of the time left to its largest
unit ("3 days", "5 hours"), so the card is kept per that unit and rounded value and changes
exactly when the text would; the page's script counts down from the ``datetime`` anyway.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from babel.dates import TIMEDELTA_UNITS
from markupsafe import Markup, escape

from pintuan.feed.snapshot import DealEntry, Item, TeamEntry
from pintuan.web.kit.rendering import templates

MAX_CARDS = 20_000
# Stand-ins for the link and slot while a card is rendered for keeping; random per process, so
# no title or merchant name can contain them.
_MARK = "feedcard" + secrets.token_hex(8)
_URL_MARK = f"/{_MARK}u"
_POSITION_MARK = f"{_MARK}p"


@dataclass(frozen=True, slots=True)
class FeedCard:
    """What the feed card macro shows (``shopper/_feed_card.html``)."""

    kind: str
    deal: DealEntry
    team: TeamEntry | None
    url: str
    position: int | str


def countdown_key(until: datetime, now: datetime) -> tuple[str, int] | None:
    """What the card's countdown text depends on: None when the time is up, else the unit and
    rounded count ``babel.dates.format_timedelta`` writes (threshold 1, in seconds)."""
    if until <= now:
        return None
    delta = until - now
    seconds = delta.days * 86400 + delta.seconds
    for unit, per_unit in TIMEDELTA_UNITS:
        value = seconds / per_unit
        if value >= 1.0 or unit == "second":
            if unit == "second" and value > 0:
                value = max(1, value)
            return unit, round(value)
    return None  # pragma: no cover - "second" always answers


class CardRenderer:
    """Renders cards with the macro for one page: its template module (costlier than a card)
    is made at the first miss and serves the page's other misses."""

    def __init__(self, context: Callable[[], Mapping[str, Any]]) -> None:
        self._context = context
        self._module: Any = None

    def __call__(self, card: FeedCard) -> Markup:
        if self._module is None:
            template = templates.get_template("shopper/_feed_card.html")
            self._module = template.make_module(dict(self._context()))
        return Markup(self._module.feed_card(card))  # noqa: S704 - the macro's autoescaped output


@dataclass(slots=True)
class _Kept:
    item: Item
    # The card in the home page's list item, in UTF-8: before its link's impression, between
    # the link and its slot, after the slot (``_render``).
    listed: tuple[bytes, bytes, bytes]


def list_item(item: Item, card: str) -> str:
    """``card`` as the home page lists it."""
    return f"{_list_item_start(item)}{card}{_LIST_ITEM_END}"


def _list_item_start(item: Item) -> str:
    return f'      <li class="card{" card-team" if item.team is not None else ""}">'


_LIST_ITEM_END = "</li>\n"


_SLOTS = tuple(str(n).encode() for n in range(100))  # a slot's text, made once


class FeedCards:
    """Rendered cards by item, locale and countdown, at most ``max_cards`` (all dropped when
    full: an hour's worth of cards is rebuilt in milliseconds)."""

    def __init__(self, max_cards: int = MAX_CARDS) -> None:
        self.max_cards = max_cards
        self._kept: dict[tuple[str, str, tuple[str, int] | None], _Kept] = {}
        self.rendered = 0  # cards rendered (misses), for the tests

    def list_items(
        self,
        items: Iterable[Item],
        impression_id: str,
        locale: str,
        now: datetime,
        render: CardRenderer,
    ) -> bytes:
        """The cards of a slate's ``items`` (in slot order) as the home page lists them, each
        in its ``list_item`` and linking to its click (``feed.encoding.click_url``), in UTF-8
        (``web.kit.frames`` puts it in as it is); ``render`` renders a card that is not kept
        (in a context of ``locale`` and ``now``). The kept parts are the autoescaped render's,
        with the link's fixed start and end in them; the impression is escaped once, as the
        template would escape it, and the slot is a number."""
        impression = str(escape(impression_id)).encode()
        parts: list[bytes] = []
        for position, item in enumerate(items):
            head, middle, tail = self._kept_card(item, locale, now, render).listed
            slot = _SLOTS[position] if position < len(_SLOTS) else str(position).encode()
            parts += (head, impression, b"/", slot, middle, slot, tail)
        return b"".join(parts)

    def _kept_card(self, item: Item, locale: str, now: datetime, render: CardRenderer) -> _Kept:
        until = item.team.expires_at if item.team is not None else item.deal.ends_at
        key = (item.key, locale, countdown_key(until, now))
        kept = self._kept.get(key)
        if kept is None or (kept.item is not item and kept.item != item):
            kept = _Kept(item, self._render(item, render))
            if len(self._kept) >= self.max_cards:
                self._kept.clear()
            self._kept[key] = kept
        else:
            kept.item = item  # the next look-up compares by identity
        return kept

    def _render(self, item: Item, render: CardRenderer) -> tuple[bytes, bytes, bytes]:
        self.rendered += 1
        head, middle, tail = split_card(
            render(FeedCard(item.kind, item.deal, item.team, _URL_MARK, _POSITION_MARK))
        )
        # The link is /feed/go/<impression>/<slot>/<item>: its start goes with the head and
        # its end with the middle, so that a page adds only the impression and the slot. Joined
        # as plain text: adding a str to a Markup would escape it.
        return (
            f"{_list_item_start(item)}{head}/feed/go/".encode(),
            f"{escape(f'/{item.item_id}')}{middle}".encode(),
            f"{tail}{_LIST_ITEM_END}".encode(),
        )


def render_card(card: FeedCard, context: Mapping[str, Any]) -> Markup:
    """The card as the macro renders it in ``context`` (the page's template variables)."""
    return CardRenderer(lambda: context)(card)


def split_card(html: Markup) -> tuple[Markup, Markup, Markup]:
    """The card's text before its link, between its link and its slot, and after its slot."""
    head, found, rest = html.partition(_URL_MARK)
    middle, found_too, tail = rest.partition(_POSITION_MARK)
    if not found or not found_too or _MARK in head + middle + tail:
        raise ValueError("the feed card must show its link once, then its slot once")
    return head, middle, tail
