"""Where a webhook may be sent: the SSRF guard, applied when an endpoint is registered and again
right before every request.

The host is resolved once and the request goes to the address that was checked (the original
host name kept in ``Host`` and in TLS's SNI and certificate check), so a name that resolves to a
public address at the check cannot turn private by the time of the request (DNS rebinding).
Production refuses private, loopback, link-local, multicast and reserved addresses and plain
``http``; development and tests allow them, since their receivers run on loopback.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from pintuan.config import Environment
from pintuan.domain.webhooks import is_public_address
from pintuan.errors import field_error

REFUSED = "webhook_url_not_allowed"


class AddressRefused(Exception):
    """The URL may not receive webhooks here; the message says why."""


@dataclass(frozen=True, slots=True)
class Target:
    """A checked destination: the URL with its host replaced by the checked address, and the
    host name the receiver expects (``Host`` header; SNI for https)."""

    url: str
    host_header: str
    sni_hostname: str | None


def check_url_shape(url: str, env: Environment) -> None:
    """Refuse, as invalid input naming the ``url`` field, a URL that is no absolute http(s)
    address with a host (https only in production), or that carries credentials."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError as exc:
        raise field_error("url", f"is not a valid URL ({exc})", code=REFUSED) from exc
    allowed = ("https",) if env is Environment.PROD else ("http", "https")
    if parts.scheme not in allowed or not parts.hostname:
        raise field_error(
            "url", f"must be an absolute {' or '.join(allowed)} URL with a host", code=REFUSED
        )
    if parts.username is not None or parts.password is not None:
        raise field_error("url", "must not carry a user name or password", code=REFUSED)


def check_url(url: str, env: Environment) -> None:
    """The registration check: the URL's shape, and in production that its host resolves to
    public addresses only (refused as invalid input on the ``url`` field)."""
    check_url_shape(url, env)
    if env is not Environment.PROD:
        return
    try:
        resolve_target(url, allow_private=False)
    except AddressRefused as exc:
        raise field_error("url", str(exc), code=REFUSED) from exc


def resolve_target(url: str, *, allow_private: bool) -> Target:
    """Resolve the URL's host and pick the address to connect to; without ``allow_private``
    every address the name resolves to must be public, else :class:`AddressRefused`."""
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        raise AddressRefused("the URL has no host")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise AddressRefused(f"its host {host!r} does not resolve ({exc})") from exc
    addresses = [str(info[4][0]) for info in found]
    if not addresses:
        raise AddressRefused(f"its host {host!r} does not resolve")
    if not allow_private:
        refused = [a for a in addresses if not is_public_address(a)]
        if refused:
            raise AddressRefused(
                f"its host {host!r} resolves to {refused[0]}, a private, loopback, link-local, "
                "multicast or reserved address"
            )
    address = addresses[0]
    literal = f"[{address}]" if ":" in address else address
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    host_header = parts.netloc.rsplit("@", 1)[-1]
    return Target(
        url=urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")),
        host_header=host_header,
        sni_hostname=host if parts.scheme == "https" else None,
    )
