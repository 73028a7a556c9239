"""``GET /v1/feed``'s answer: the plain model (``feed_out``) and the same JSON written from
parts kept per item (``FeedJson``), which is what the endpoint sends.

Validating and serialising twenty items and twenty cards through their models cost about as
much as drawing the slate. What an item's card says depends only on the item, so its JSON is
written once (by the model itself, so the format is the model's) and kept while the item is
equal to the snapshot's; each answer adds the slot's position, propensity, reason and click link.
The unit tests prove the two answers equal.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from pintuan.feed.schemas import FeedCardOut, FeedItemOut, FeedOut
from pintuan.feed.serving import Shown, Slate
from pintuan.feed.snapshot import Item
from pintuan.kit.jsontext import dumps, float_text
from pintuan.kit.schemas import MoneyOut

MAX_KEPT = 50_000
_PLAIN_ID = re.compile(r"^[A-Za-z0-9_]+$")
_NO_URL = '"url":""}'


def click_url(impression_id: str, shown: Shown) -> str:
    """The link a served card carries: it logs the click, then opens the deal or team."""
    return f"/feed/go/{impression_id}/{shown.placement.position}/{shown.item.item_id}"


def card_of(impression_id: str, shown: Shown) -> FeedCardOut:
    """What a client needs to draw a served item."""
    deal, team = shown.item.deal, shown.item.team
    own = [u for u in deal.image_urls if u.startswith("/") and not u.startswith("//")]
    return FeedCardOut(
        title=deal.title,
        deal_id=deal.id,
        merchant_id=deal.merchant_id,
        image_url=own[0] if own else None,
        group_price=MoneyOut.of(deal.group_price, deal.currency),
        list_price=MoneyOut.of(deal.list_price, deal.currency),
        team_size=deal.team_size,
        seats_left=team.seats_left if team else None,
        teams_forming=deal.forming,
        closes_at=team.expires_at if team else deal.ends_at,
        url=click_url(impression_id, shown),
    )


def feed_out(slate: Slate, next_cursor: str | None) -> FeedOut:
    """The answer as its model."""
    return FeedOut(
        impression_id=slate.impression_id,
        policy=slate.policy,
        items=[
            FeedItemOut(
                kind="team" if s.item.kind == "team" else "deal",
                id=s.item.item_id,
                vertical=s.item.deal.vertical,
                position=s.placement.position,
                propensity=s.placement.propensity,
                reason=s.placement.reason,
            )
            for s in slate.shown
        ],
        next_cursor=next_cursor,
        display=[card_of(slate.impression_id, s) for s in slate.shown],
    )


@dataclass(slots=True)
class _Kept:
    item: Item
    head: str  # the item's JSON up to its position
    card: str  # the card's JSON up to its link
    link_end: str  # the link's end after the slot's position: '/<item id>"}'


# The reasons a slot is served for, as JSON (another is written when it comes).
_REASONS = {
    reason: json.dumps(reason) for reason in ("best", "explore", "vertical_share", "pinned")
}


class FeedJson:
    """``feed_out``'s JSON, from parts kept per item (at most ``max_kept``; all dropped when
    full)."""

    def __init__(self, max_kept: int = MAX_KEPT) -> None:
        self.max_kept = max_kept
        self._kept: dict[str, _Kept] = {}

    def _parts(self, shown: Shown) -> _Kept:
        item = shown.item
        kept = self._kept.get(item.key)
        if kept is not None and (kept.item is item or kept.item == item):
            kept.item = item  # the next look-up compares by identity
            return kept
        head = json.dumps(
            {"kind": item.kind, "id": item.item_id, "vertical": item.deal.vertical},
            separators=(",", ":"),
        )[:-1]
        card = card_of("", shown).model_copy(update={"url": ""}).model_dump_json()
        if not card.endswith(_NO_URL):
            raise ValueError("the feed card's link must be its last field")
        # The link (``click_url``) is written around the slate's impression and the position.
        link_end = "/" + json.dumps(item.item_id)[1:] + "}"
        kept = _Kept(item, head, card[: -len(_NO_URL)] + '"url":"/feed/go/', link_end)
        if len(self._kept) >= self.max_kept:
            self._kept.clear()
        self._kept[item.key] = kept
        return kept

    def encode(self, slate: Slate, next_cursor: str | None) -> bytes:
        """``feed_out(slate, next_cursor)`` as JSON."""
        items: list[str] = []
        cards: list[str] = []
        impression = dumps(slate.impression_id)
        # The links' middle, '<impression id>/' (an id this process made: nothing to escape).
        plain = _PLAIN_ID.match(slate.impression_id) is not None
        link_from = (slate.impression_id if plain else impression[1:-1]) + "/"
        for shown in slate.shown:
            kept = self._parts(shown)
            placement = shown.placement
            position = placement.position
            reason = _REASONS.get(placement.reason) or dumps(placement.reason)
            items.append(
                f'{kept.head},"position":{position},'
                f'"propensity":{float_text(placement.propensity)},"reason":{reason}}}'
            )
            cards.append(f"{kept.card}{link_from}{position}{kept.link_end}")
        return (
            f'{{"impression_id":{impression},"policy":{dumps(slate.policy)},'
            f'"items":[{",".join(items)}],"next_cursor":{dumps(next_cursor)},'
            f'"display":[{",".join(cards)}]}}'
        ).encode()
