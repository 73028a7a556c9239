"""Friend pays (代付): a link that lets someone else pay for a shopper's held seat.

The link is a capability, not a database row: it names the seat and the end of its hold and is
signed with the application's secret, so it cannot be forged or stretched, and it dies with the
hold.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

from pintuan.errors import Gone, NotFound
from pintuan.kit.secrets import same_secret


def _signature(secret: str, payload: str) -> str:
    mac = hmac.new(secret.encode(), f"pay-link:{payload}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()[:18]).decode().rstrip("=")


def issue_pay_link(secret: str, seat_id: str, expires_at: datetime) -> str:
    payload = f"{seat_id}.{int(expires_at.timestamp())}"
    encoded = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
    return f"{encoded}.{_signature(secret, payload)}"


def read_pay_link(
    secret: str, token: str, now: datetime, *, expired_ok: bool = False
) -> tuple[str, datetime]:
    """The seat a pay link names and when it expires; refused when forged or (unless
    ``expired_ok``, for saying why it no longer pays) expired."""
    try:
        encoded, signature = token.rsplit(".", 1)
        payload = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        seat_id, expires = payload.rsplit(".", 1)
        expires_at = datetime.fromtimestamp(int(expires), UTC)
    except (ValueError, UnicodeDecodeError) as exc:
        raise NotFound("No such pay link.", code="pay_link_not_found") from exc
    if not same_secret(signature, _signature(secret, payload)):
        raise NotFound("No such pay link.", code="pay_link_not_found")
    if expires_at <= now and not expired_ok:
        raise Gone("This pay link has expired with the seat's hold.", code="pay_link_expired")
    return seat_id, expires_at
