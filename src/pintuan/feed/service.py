"""The feed's use cases: a slate for a viewer (the API and the home page alike), its cursor,
and the operators' rules."""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from pintuan.config import Settings
from pintuan.domain.markets import currency_of_country
from pintuan.domain.roles import Principal
from pintuan.errors import InvalidInput
from pintuan.feed.rules import LiveConfig, arms_json, read_config, rules_json, save_config
from pintuan.feed.serving import FeedAsk, FeedRuntime, Slate
from pintuan.feed.snapshot import Market, Place
from pintuan.merchants.service import require_operator

MAX_SEEN = 200  # a feed continues for this many items, then ends
_ID = re.compile(r"^[a-z]+_[0-9A-Z]{26}$")


@dataclass(frozen=True, slots=True)
class FeedCursor:
    impression_id: str
    seen: tuple[str, ...]


def _invalid_cursor() -> InvalidInput:
    return InvalidInput(
        "The cursor is not one this API returned; start again without it.",
        code="invalid_cursor",
        extra={"errors": [{"field": "cursor", "message": "not a valid cursor"}]},
    )


def encode_feed_cursor(cursor: FeedCursor) -> str:
    """The cursor as the API gives it: its JSON (``{"i": ..., "s": [...]}``, compact) in
    URL-safe base64 without padding."""
    if _plain_json(cursor.impression_id + "".join(cursor.seen)):
        # The ids are written as they are, which is their JSON when nothing in them needs
        # escaping (always, for ids this API made): a fifth of encoding the object.
        listed = '"' + '","'.join(cursor.seen) + '"' if cursor.seen else ""
        text = f'{{"i":"{cursor.impression_id}","s":[{listed}]}}'
    else:
        text = json.dumps(
            {"i": cursor.impression_id, "s": list(cursor.seen)}, separators=(",", ":")
        )
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _plain_json(text: str) -> bool:
    """Whether ``text`` is its own JSON string's inside: printable ASCII with no quote or
    backslash (anything else ``json.dumps`` escapes)."""
    return text.isascii() and text.isprintable() and '"' not in text and "\\" not in text


def decode_feed_cursor(value: str) -> FeedCursor:
    """A cursor this API returned, or 422 ``invalid_cursor``."""
    try:
        padded = value + "=" * (-len(value) % 4)
        data = json.loads(base64.b64decode(padded.encode(), altchars=b"-_", validate=True))
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise _invalid_cursor() from exc
    if not isinstance(data, dict):
        raise _invalid_cursor()
    impression, seen = data.get("i"), data.get("s")
    if not isinstance(impression, str) or not _ID.match(impression):
        raise _invalid_cursor()
    if not isinstance(seen, list) or len(seen) > MAX_SEEN:
        raise _invalid_cursor()
    if not all(isinstance(i, str) and _ID.match(i) for i in seen):
        raise _invalid_cursor()
    return FeedCursor(impression, tuple(seen))


def market_of(country: str | None, live: frozenset[str]) -> Market:
    """The viewer's market: the country asked for, else their guessed one where it has
    something to show; its currency counts too (deals priced in it are theirs)."""
    if country is None or country not in live:
        return Market(None, None)
    return Market(country, currency_of_country(country))


def place_of(lat: float | None, lon: float | None) -> Place | None:
    """Where the viewer is, when they said (both or neither: 422 ``feed_location_incomplete``)."""
    if lat is None and lon is None:
        return None
    if lat is None or lon is None:
        raise InvalidInput(
            "Give both lat and lon, or neither.",
            code="feed_location_incomplete",
            extra={"errors": [{"field": "lat" if lat is None else "lon", "message": "missing"}]},
        )
    return Place(lat, lon)


@dataclass(frozen=True, slots=True)
class FeedPage:
    slate: Slate
    next_cursor: str | None


async def feed_page(
    runtime: FeedRuntime,
    *,
    viewer: str,
    country: str | None,
    vertical: str | None,
    place: Place | None,
    slots: int,
    cursor: str | None,
    now: datetime,
    first_visit: bool = False,
) -> FeedPage:
    """One slate of the feed for ``viewer``; a ``cursor`` continues an earlier one as a new
    impression whose pool leaves out everything shown before it."""
    earlier = decode_feed_cursor(cursor) if cursor else None
    await runtime.ensure_ready()
    # A viewer seen for the first time has no history to read.
    history = runtime.no_history if first_visit else await runtime.viewer_history(viewer)
    market = market_of(country, runtime.snapshot.countries)
    slate = runtime.serve(
        FeedAsk(
            pseudonym=viewer,
            market=market,
            vertical=vertical,
            place=place,
            slots=slots,
            exclude=frozenset(earlier.seen) if earlier else frozenset(),
            continues=earlier.impression_id if earlier else None,
        ),
        history,
        now,
    )
    seen = (*(earlier.seen if earlier else ()), *(s.item.item_id for s in slate.shown))
    more = len(slate.shown) == slots and len(seen) + slots <= MAX_SEEN
    return FeedPage(
        slate, encode_feed_cursor(FeedCursor(slate.impression_id, seen)) if more else None
    )


def read_feed_config(session: Session, principal: Principal, settings: Settings) -> LiveConfig:
    """The feed's rules and policies in force (operators only)."""
    require_operator(principal)
    return read_config(session, settings)


def change_feed_config(
    session: Session,
    principal: Principal,
    settings: Settings,
    rules: dict[str, object],
    arms: list[dict[str, object]],
    expected_version: int | None,
) -> LiveConfig:
    """Set the feed's rules and the policies serving, with their shares (operators only)."""
    require_operator(principal)
    return save_config(session, settings, rules, arms, principal.user_id, expected_version)


def config_json(config: LiveConfig) -> dict[str, object]:
    return {
        "rules": rules_json(config.rules, config.weights),
        "arms": arms_json(config.arms),
        "version": config.version,
        "updated_by": config.updated_by,
        "stored": config.stored,
    }
