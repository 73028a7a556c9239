"""A deal's pictures: added one upload at a time, removed, put in order, at most twelve.

The pictures themselves are kept by ``media`` (``store_image``); a deal holds their addresses in
``image_urls``, in the order shoppers see them, the first one on its card. That list is changed
only here and only under the deal's row lock, so two uploads at once both land.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from pintuan.deals.models import Deal
from pintuan.deals.service import deal_to_change, update_deal
from pintuan.domain.roles import Principal
from pintuan.errors import Conflict, InvalidInput, NotFound
from pintuan.media.service import ImageRef, key_of_url, large_url

MAX_IMAGES = 12


def image_keys(deal: Deal) -> list[str]:
    """The keys of the deal's stored pictures, in order (addresses of other sites skipped)."""
    return [key for key in (key_of_url(url) for url in deal.image_urls) if key is not None]


def _locked(session: Session, principal: Principal, deal_id: str) -> Deal:
    # The row lock (PostgreSQL; SQLite's one writer excludes the others anyway) makes the
    # read-change-write of the list below safe against a second change at the same moment.
    session.execute(select(Deal.id).where(Deal.id == deal_id).with_for_update())
    return deal_to_change(session, principal, deal_id)


def _set_images(session: Session, principal: Principal, deal: Deal, keys: list[str]) -> Deal:
    urls = [large_url(key) for key in keys]
    return update_deal(session, principal, deal.id, {"image_urls": urls})


def add_deal_image(session: Session, principal: Principal, deal_id: str, image: ImageRef) -> Deal:
    """Put a stored picture last among the deal's; the same picture twice is kept once."""
    deal = _locked(session, principal, deal_id)
    keys = image_keys(deal)
    if image.key in keys:
        return deal
    if len(keys) >= MAX_IMAGES:
        raise Conflict(
            f"A deal shows at most {MAX_IMAGES} pictures; remove one first.",
            code="too_many_images",
            extra={"max_images": MAX_IMAGES},
        )
    return _set_images(session, principal, deal, [*keys, image.key])


def remove_deal_image(session: Session, principal: Principal, deal_id: str, image_id: str) -> Deal:
    """Take a picture off the deal (the stored file stays: another deal may show it too).

    Idempotent, as a DELETE is: a picture the deal does not show is gone already, and the
    answer is the deal as it is."""
    deal = _locked(session, principal, deal_id)
    keys = image_keys(deal)
    if image_id not in keys:
        return deal
    return _set_images(session, principal, deal, [key for key in keys if key != image_id])


def reorder_deal_images(
    session: Session, principal: Principal, deal_id: str, image_ids: list[str]
) -> Deal:
    """Show the deal's pictures in the order given, which must name each of them once."""
    deal = _locked(session, principal, deal_id)
    keys = image_keys(deal)
    if sorted(image_ids) != sorted(keys) or len(set(image_ids)) != len(image_ids):
        raise InvalidInput(
            "Name each of the deal's pictures exactly once, in the new order.",
            code="image_order_mismatch",
            extra={"image_ids": keys},
        )
    return _set_images(session, principal, deal, image_ids)


def move_deal_image(
    session: Session, principal: Principal, deal_id: str, image_id: str, step: int
) -> Deal:
    """Move one picture ``step`` places (negative: earlier); the consoles' arrows."""
    deal = _locked(session, principal, deal_id)
    keys = image_keys(deal)
    if image_id not in keys:
        raise NotFound(f"Deal {deal_id} has no picture {image_id}.", code="image_not_found")
    keys.remove(image_id)
    at = max(0, min(len(keys), image_keys(deal).index(image_id) + step))
    keys.insert(at, image_id)
    return _set_images(session, principal, deal, keys)
